"""``modality-level``: options, only Z is valued, the plan follows the rule, a short run."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import mmcoop.valuation
from mmcoop.data.base import ModalitySpec, MultimodalDataset, make_loader
from mmcoop.enhance import modality_level_ratio
from mmcoop.errors import ConfigError
from mmcoop.methods import METHODS, Method, MethodContext, build_method
from mmcoop.models import build_model


# -- tiny data, model and a manual copy of the training loop's per-epoch protocol --
NUM_CLASSES = 3


def tiny_data(n: int = 96, seed: int = 0) -> MultimodalDataset:
    """Two vector modalities: ``a`` clearly separable, ``b`` mostly noise (so ``b`` under-contributes)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_CLASSES
    onehot = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()
    a = torch.cat([3.0 * onehot, torch.randn(n, 3, generator=g)], 1) + 0.3 * torch.randn(n, 6, generator=g)
    b = torch.cat([0.4 * onehot[:, :1], torch.randn(n, 3, generator=g)], 1)
    specs = [ModalitySpec("a", "vector", (6,)), ModalitySpec("b", "vector", (4,))]
    return MultimodalDataset({"a": a, "b": b}, labels, NUM_CLASSES, specs)


def tiny_model(data: MultimodalDataset, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(data.specs, NUM_CLASSES, dim=8, fusion="concat")


def run_epochs(method: Method, data: MultimodalDataset, epochs: int, seed: int = 0, batch_size: int = 32) -> tuple[list[dict[str, Any]], MethodContext]:
    """A minimal copy of the training loop's per-epoch protocol (see ``mmcoop.methods.base``)."""
    model = tiny_model(data, seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ctx = MethodContext(model=model, train_data=data, device=torch.device("cpu"), seed=seed, batch_size=batch_size, optimizer=opt)
    method.setup(ctx)
    logs = []
    for epoch in range(epochs):
        ctx.epoch, ctx.log = epoch, {}
        model.train()
        method.on_epoch_start(ctx)
        assert model.training, "valuation must restore train mode"
        ds = method.train_set(ctx)
        ctx.log["_epoch_units"] = len(ds)
        for batch in make_loader(ds, batch_size, shuffle=True, seed=seed, epoch=epoch):
            keep = batch["keep"]
            keep_arg = None if bool(keep.all()) else keep
            feats = model.encode(batch["inputs"], keep_arg)
            logits = model.fuse(feats, keep_arg)
            loss = method.loss(ctx, batch, feats, logits)
            assert torch.isfinite(loss)
            opt.zero_grad()
            loss.backward()
            method.after_backward(ctx, batch, feats, logits)
            opt.step()
        logs.append(method.epoch_log(ctx))
    return logs, ctx


def test_registered_and_options_validated() -> None:
    assert "modality-level" in METHODS.names()
    m = build_method("modality-level", {"part_ratio": 0.5, "alpha": 2, "func": "tanh"})
    assert (m.options.part_ratio, m.options.alpha, m.options.func) == (0.5, 2.0, "tanh")
    with pytest.raises(ConfigError, match="linear, tanh, pow1.5"):
        build_method("modality-level", {"func": "cubic"})
    with pytest.raises(ConfigError, match="part_ratio"):
        build_method("modality-level", {"part_ratio": 0})
    with pytest.raises(ConfigError, match="alpha"):
        build_method("modality-level", {"alpha": -1})


def test_values_only_the_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_data(100)
    model = tiny_model(data)
    real = mmcoop.valuation.valuate_dataset
    seen: list[int] = []

    def spy(*args, **kwargs):
        table = real(*args, **kwargs)
        seen.append(len(table.index))
        return table

    monkeypatch.setattr(mmcoop.valuation, "valuate_dataset", spy)
    method = build_method("modality-level", {"warmup": 0, "part_ratio": 0.2})
    ctx = MethodContext(model=model, train_data=data, device=torch.device("cpu"), seed=7, epoch=3)
    method.setup(ctx)
    method.on_epoch_start(ctx)
    assert seen == [20] and ctx.log["valued_samples"] == 20
    table = ctx.log["valuation_table"]
    assert table.index.unique().numel() == 20
    # the plan follows the rule from Z's mean contribution
    mean_phi = table.phi.double().mean(0)
    p = modality_level_ratio(mean_phi)
    weaker = int(torch.argmax(1 - mean_phi))
    units = method.plan.units_per_modality()
    assert int(units[weaker]) == math.floor(float(p[weaker]) * 100 + 0.5) and int(units[1 - weaker]) == 0
    assert method.plan.rows.unique().numel() == len(method.plan)
    assert ctx.log[f"resample_ratio_{data.modalities[weaker]}"] == pytest.approx(float(p[weaker]))
    # same seed and epoch -> same subset and the same plan (every DDP rank agrees)
    other = build_method("modality-level", {"warmup": 0, "part_ratio": 0.2})
    ctx2 = MethodContext(model=model, train_data=data, device=torch.device("cpu"), seed=7, epoch=3)
    other.on_epoch_start(ctx2)
    assert torch.equal(ctx2.log["valuation_table"].index, table.index)
    assert torch.equal(other.plan.rows, method.plan.rows)


@pytest.mark.parametrize("execution", ["duplicate", "weighted"])
def test_short_run(execution: str) -> None:
    data = tiny_data(90)
    method = build_method("modality-level", {"warmup": 1, "execution": execution, "alpha": 3.0})
    logs, _ = run_epochs(method, data, epochs=3)
    assert "contrib_a" not in logs[0] and logs[0]["train_size"] == 90
    for log in logs[1:]:
        for key in ("contrib_a", "contrib_b", "copies_a", "copies_b", "train_size", "valued_samples",
                    "time_valuation_s", "resample_ratio_a", "resample_ratio_b", "valuation_table"):
            assert key in log, key
        assert log["valued_samples"] == 18
        assert log["train_size"] == 90 + log["copies_a"] + log["copies_b"]
        assert min(log["copies_a"], log["copies_b"]) == 0  # M = 2: only the weaker modality is copied
        assert log["_epoch_units"] == (log["train_size"] if execution == "duplicate" else 90)
