"""``modality-level``: options, only Z is valued, the plan follows the rule, a short run."""

from __future__ import annotations

import math

import pytest
import torch

import mmcoop.valuation
from mmcoop.enhance import modality_level_ratio
from mmcoop.errors import ConfigError
from mmcoop.methods import METHODS, MethodContext, build_method

from _helpers import ContextListener, run_epochs, tiny_data, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


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
    ctx.listener = ContextListener()
    method.setup(ctx)
    method.on_epoch_start(ctx)
    assert seen == [20] and ctx.log["valued_samples"] == 20
    table, plan = ctx.listener.last
    assert plan is method.plan  # the event carries the plan being executed
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
    ctx2.listener = ContextListener()
    other.setup(ctx2)
    other.on_epoch_start(ctx2)
    assert torch.equal(ctx2.listener.last[0].index, table.index)
    assert torch.equal(other.plan.rows, method.plan.rows)


@pytest.mark.parametrize("execution", ["duplicate", "weighted"])
def test_short_run(execution: str) -> None:
    data = tiny_data(90)
    method = build_method("modality-level", {"warmup": 1, "execution": execution, "alpha": 3.0})
    logs, _ = run_epochs(method, data, epochs=3)
    assert "contrib_a" not in logs[0] and logs[0]["train_size"] == 90
    for log in logs[1:]:
        for key in (
            "contrib_a",
            "contrib_b",
            "copies_a",
            "copies_b",
            "train_size",
            "valued_samples",
            "time_valuation_s",
            "resample_ratio_a",
            "resample_ratio_b",
            "valuation_table",
        ):
            assert key in log, key
        assert log["valued_samples"] == 18
        assert log["train_size"] == 90 + log["copies_a"] + log["copies_b"]
        assert min(log["copies_a"], log["copies_b"]) == 0  # M = 2: only the weaker modality is copied
        assert log["train_units"] == (log["train_size"] if execution == "duplicate" else 90)
