"""``cggm`` through the real loop: classifiers trained on detached features (own modules, in the
checkpoint), encoder gradients scaled by ``rho * B``, the direction term, three modalities."""

from __future__ import annotations

import pytest
import torch

from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, run_experiment
from mmcoop.experiment.run import build_for, load_splits
from mmcoop.methods import MethodContext, build_method
from mmcoop.methods.functional import cggm_coefficients, cggm_direction_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(out, epochs: int = 2, m: int = 2, fusion: str = "concat", **options) -> RunConfig:
    return RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"num_modalities": m, "sizes": [96, 48, 48]},
            "method": "cggm",
            "method_options": options,
            "model": {"dim": 16, "fusion": fusion},
            "train": {"epochs": epochs, "batch_size": 32, "progress": False, "device": "cpu"},
            "out_dir": str(out),
        }
    )


def _changed(before: dict, after: dict, prefix: str) -> bool:
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point() and "running_" not in k]
    assert keys, prefix
    return any(not torch.equal(before[k], after[k]) for k in keys)


def test_options_validated(tmp_path) -> None:
    o = build_method("cggm").options
    assert (o.rho, o.lam) == (1.3, 0.2)
    for bad in ({"rho": -1}, {"lam": -0.1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("cggm", bad)
    with pytest.raises(ConfigError, match="lam: 0"):  # the direction term needs per-modality head weights
        run_experiment(_cfg(tmp_path, fusion="gated"))
    run_experiment(_cfg(tmp_path / "g", epochs=1, fusion="gated", lam=0.0))


@pytest.mark.parametrize("m", [2, 3])
def test_classifiers_on_detached_features_and_encoder_scaling(tmp_path, m: int) -> None:
    # rho = 0 zeroes every encoder gradient: encoders stay exactly at their initial weights although
    # the classifiers train on their features (detached) and the fusion head trains
    cfg = _cfg(tmp_path / "frozen", m=m, rho=0.0)
    initial = build_for(cfg, load_splits(cfg)).state_dict()
    r = run_experiment(cfg)
    state = torch.load(r.run_dir / "checkpoints" / "last.pt", weights_only=False)
    for k in range(m):
        assert not _changed(initial, state["model"], f"encoders.m{k}.")
        assert f"classifiers.{k}.weight" in state["method_modules"]
    assert _changed(initial, state["model"], "head.")
    assert state["method"]["acc_prev"].shape == (m,)
    for x in r.history:
        for k in range(m):
            assert 0.0 <= x[f"classifier_acc_m{k}"] <= 1.0 and torch.isfinite(torch.tensor(x[f"coeff_m{k}"]))
        assert x["direction_loss"] >= 0.0
    # the default rho moves them
    r2 = run_experiment(_cfg(tmp_path / "free", m=m))
    state2 = torch.load(r2.run_dir / "checkpoints" / "last.pt", weights_only=False)
    assert all(_changed(initial, state2["model"], f"encoders.m{k}.") for k in range(m))


def test_one_step_wiring(tmp_path) -> None:
    """One loss call: ``B`` from the batch accuracies, the feature-gradient hook, ``L_gm`` from the
    previous ``B`` against the concat head's per-modality columns."""
    cfg = _cfg(tmp_path)
    splits = load_splits(cfg)
    model = build_for(cfg, splits)
    method = build_method("cggm", {"rho": 1.3, "lam": 0.5})
    ctx = MethodContext(model=model, train_data=splits.train, device=torch.device("cpu"))
    method.setup(ctx)
    method.on_epoch_start(ctx)
    batch = splits.train.__getitems__(list(range(16)))
    prev_acc = torch.tensor([0.25, 0.5], dtype=torch.float64)
    prev_b = torch.tensor([2.0, -1.0], dtype=torch.float64)
    method.acc_prev, method.coeff_prev = prev_acc.clone(), prev_b.clone()
    model.eval()  # no dropout: the reference pass below sees the same function
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    loss = method.loss(ctx, batch, feats, logits)
    y = batch["label"]
    with torch.no_grad():
        acc = torch.stack(
            [(clf(feats[:, k]).argmax(-1) == y).double().mean() for k, clf in enumerate(method.classifiers)]
        )
    b = cggm_coefficients(acc, prev_acc)
    torch.testing.assert_close(method.coeff_prev, b)
    w = model.head.fc.weight.view(4, 2, 16)
    l_gm = (
        cggm_direction_loss(prev_b[:1], [method.classifiers[0].weight], w[:, 0])
        + cggm_direction_loss(prev_b[1:], [method.classifiers[1].weight], w[:, 1])
    ) / 2
    cls = sum(torch.nn.functional.cross_entropy(clf(feats[:, k]), y) for k, clf in enumerate(method.classifiers))
    want = torch.nn.functional.cross_entropy(logits, y) + 0.5 * l_gm + cls
    torch.testing.assert_close(loss, want)
    # after the backward pass encoder m's gradient is rho * B_m times the plain fused cross-entropy's
    # (the classifiers see detached features, L_gm involves only head and classifier weights)
    plain_loss = torch.nn.functional.cross_entropy(model(batch["inputs"]), y)  # a fresh graph
    model.zero_grad()
    loss.backward()
    method.after_backward(ctx, batch, feats, logits)
    for k in range(2):
        params = list(model.encoders[f"m{k}"].parameters())
        plain = torch.autograd.grad(plain_loss, params, retain_graph=True)
        for p, p0 in zip(params, plain):
            torch.testing.assert_close(p.grad, p0 * float(1.3 * b[k]))


def test_mfeat_six_modalities(tmp_path) -> None:
    cfg = RunConfig.from_dict(
        {
            "dataset": "mfeat",
            "method": "cggm",
            "train": {"epochs": 1, "progress": False, "device": "cpu"},
            "out_dir": str(tmp_path),
        }
    )
    r = run_experiment(cfg)
    assert all(f"coeff_{m}" in r.history[0] for m in ("fou", "fac", "kar", "pix", "zer", "mor"))
    assert r.test["acc"] > 0.5
