"""``valuation: online`` of the re-sampling methods: options and variants, equality with the
paper's pass where the two must agree (learning rate 0, no dropout/BatchNorm/augmentation),
AMP, user models, and exact resume of the records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from _helpers import ValuationEvents, tiny_data
from _online import frozen_trainer
from _runs import strip_times, tiny_cfg

import mmcoop.experiment.run as run_mod
from mmcoop.data.base import MultimodalDataset
from mmcoop.errors import ConfigError
from mmcoop.experiment import read_metrics, resume_experiment, run_experiment
from mmcoop.experiment.config import RunConfig, default_run_name
from mmcoop.methods import build_method, variant_of, variant_options
from mmcoop.train import Trainer
from mmcoop.valuation import VALUE_FUNCTIONS

pytestmark = pytest.mark.usefixtures("one_thread")


def train_frozen(
    name: str,
    options: dict[str, Any],
    data: MultimodalDataset,
    epochs: int = 4,
    amp: str = "none",
    batch_size: int = 16,
) -> list[dict[str, Any]]:
    """Train :func:`_online.plain_model` through the real loop with the optimizer's learning rate set
    to 0 (same weights every epoch); returns the epoch records (``valuation_table`` included)."""
    valuations = ValuationEvents()  # the tables travel as after_valuation events
    trainer = frozen_trainer(name, options, data, epochs, batch_size, amp, callbacks=[valuations])
    records: list[dict[str, Any]] = []

    def on_epoch_end(record: dict[str, Any], t: Trainer) -> None:
        if t.epoch in valuations.tables:
            record["valuation_table"] = valuations.tables.pop(t.epoch)[0]
        records.append(record)

    trainer.fit(on_epoch_end)
    return records


def _tables(records: list[dict[str, Any]]) -> list[Any]:
    return [r.get("valuation_table") for r in records]


# -- options and variants ---------------------------------------------------------------------
def test_option_validated_and_variants_name_the_mode() -> None:
    assert build_method("sample-level").options.valuation == "pass"
    assert build_method("modality-level", {"valuation": "online"}).options.valuation == "online"
    with pytest.raises(ConfigError, match="pass, online"):
        build_method("sample-level", {"valuation": "live"})
    assert variant_options("sample-level", "weighted+online") == {"execution": "weighted", "valuation": "online"}
    assert variant_options("modality-level", "online") == {"valuation": "online"}
    assert variant_options("sample-level", "duplicate") == {"execution": "duplicate"}
    for bad in ("fast", "online+pass", "weighted+duplicate", "weighted+"):
        with pytest.raises(ConfigError, match=r"weighted\+online"):
            variant_options("sample-level", bad)
    assert variant_of("sample-level", {"execution": "weighted", "valuation": "online"}) == "weighted+online"
    assert variant_of("sample-level", {"valuation": "online"}) == "online"
    assert variant_of("sample-level", {"execution": "duplicate"}) == "duplicate"
    assert variant_of("joint", {}) is None
    cfg = RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "method": "sample-level",
            "method_options": {"execution": "weighted", "valuation": "online"},
        }
    )
    assert default_run_name(cfg) == "synthetic_sample-level-weighted+online_seed0"


# -- equality with the pass ---------------------------------------------------------------------
@pytest.mark.parametrize("value", sorted(VALUE_FUNCTIONS.names()))
@pytest.mark.parametrize("execution", ["weighted", "duplicate"])
def test_online_equals_pass_with_frozen_weights(value: str, execution: str) -> None:
    """Same weights (lr 0), same features (no dropout/BatchNorm/augmentation): every planned
    epoch's table and plan equal the pass's, for every value function: bit for bit for the
    discrete ones (``paper``, ``correct``); to float rounding for the continuous ones (a
    row's matrix product may differ in the last bit with its position in a batch, and the
    training batches are shuffled while the pass's are not: 1.2e-7 seen for ``logprob``).
    """
    data = tiny_data(60)
    opts = {"warmup": 1, "execution": execution, "value": value}
    ref = train_frozen("sample-level", opts, data)
    got = train_frozen("sample-level", {**opts, "valuation": "online"}, data)
    exact = value in ("paper", "correct")
    planned = 0
    for r_ref, r_got in zip(ref, got):
        a, b = r_ref.get("valuation_table"), r_got.get("valuation_table")
        assert (a is None) == (b is None)
        if a is None:
            continue
        planned += 1
        assert b.info["valuation"] == "online" and b.info["recorded_epoch"] == r_got["epoch"] - 2
        assert torch.equal(a.index, b.index) and torch.equal(a.label, b.label)
        assert torch.equal(a.coalition_preds, b.coalition_preds)
        if exact:
            assert torch.equal(a.values.float(), b.values) and torch.equal(a.phi.float(), b.phi)
        else:
            torch.testing.assert_close(b.values, a.values.float(), atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(b.phi, a.phi.float(), atol=1e-6, rtol=1e-6)
        assert b.value == a.value and b.empty == a.empty
        copies = [k for k in r_ref if k.startswith("copies_")]
        assert copies and all(r_ref[k] == r_got[k] for k in copies)
        assert r_ref["train_units"] == r_got["train_units"]
    assert planned == 3


def test_modality_level_values_its_subset_from_the_records() -> None:
    data = tiny_data(60)
    opts = {"warmup": 1, "part_ratio": 0.5}
    ref = train_frozen("modality-level", opts, data, epochs=3)
    got = train_frozen("modality-level", {**opts, "valuation": "online"}, data, epochs=3)
    for r_ref, r_got in zip(ref[1:], got[1:]):
        a, b = r_ref["valuation_table"], r_got["valuation_table"]
        assert len(b) == 30 and torch.equal(a.index, b.index) and torch.equal(a.phi.float(), b.phi)
        assert r_ref["resample_ratio_a"] == r_got["resample_ratio_a"]
        assert r_ref["train_size"] == r_got["train_size"]


def test_online_under_bf16_autocast_matches_the_pass_under_it() -> None:
    data = tiny_data(60)
    opts = {"warmup": 1, "execution": "weighted"}
    ref = train_frozen("sample-level", opts, data, epochs=3, amp="bf16")
    got = train_frozen("sample-level", {**opts, "valuation": "online"}, data, epochs=3, amp="bf16")
    for a, b in zip(_tables(ref)[1:], _tables(got)[1:]):
        assert torch.equal(a.coalition_preds, b.coalition_preds) and torch.equal(a.phi.float(), b.phi)


def test_warmup_zero_plans_the_first_epoch_with_a_pass() -> None:
    data = tiny_data(60)
    ref = train_frozen("sample-level", {"warmup": 0}, data, epochs=2)
    got = train_frozen("sample-level", {"warmup": 0, "valuation": "online"}, data, epochs=2)
    assert "valuation" not in got[0]["valuation_table"].info  # no previous epoch: the pass
    assert got[1]["valuation_table"].info["valuation"] == "online"
    assert torch.equal(ref[1]["valuation_table"].phi.float(), got[1]["valuation_table"].phi)


def test_no_recording_between_plans_with_valuation_every() -> None:
    data = tiny_data(60)
    got = train_frozen("sample-level", {"warmup": 1, "valuation_every": 2, "valuation": "online"}, data, epochs=5)
    fresh = [r["epoch"] for r in got if r.get("valuation_table") is not None]
    assert fresh == [2, 4]  # epochs (1-based) that plan anew; 3 and 5 execute the last plan
    assert [t.info["recorded_epoch"] for t in _tables(got) if t is not None] == [0, 2]


# -- resume ----------------------------------------------------------------------------------------
class Killed(BaseException):
    """Stands for SIGKILL at a checkpoint write."""


@pytest.mark.parametrize("execution", ["weighted", "duplicate"])
def test_records_survive_kill_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, execution: str) -> None:
    """Killed at the commit of epoch 3: epoch 3's plan comes from epoch 2's records, restored
    from the checkpoint; the resumed run repeats the uninterrupted one exactly."""
    opts = {"warmup": 1, "execution": execution, "valuation": "online"}
    full = run_experiment(tiny_cfg(tmp_path, "full", method="sample-level", method_options=opts, train={"epochs": 4}))
    real = run_mod.atomic_torch_save

    def save(obj: Any, path: Any) -> Any:
        if Path(path).name == "last.pt" and int(obj["epoch"]) == 3:
            raise Killed
        return real(obj, path)

    monkeypatch.setattr(run_mod, "atomic_torch_save", save)
    with pytest.raises(Killed):
        run_experiment(tiny_cfg(tmp_path, "k", method="sample-level", method_options=opts, train={"epochs": 4}))
    last = torch.load(tmp_path / "k" / "checkpoints" / "last.pt", weights_only=False)
    assert last["epoch"] == 2 and last["method"]["online"]["epoch"] == 1  # epoch 2's records (0-based 1)
    monkeypatch.undo()
    resume_experiment(tmp_path / "k")
    a, b = strip_times(read_metrics(full.run_dir)), strip_times(read_metrics(tmp_path / "k"))
    assert a == b
    assert sum(v for r in a for k, v in r.items() if k.startswith("copies_")) > 0  # plans were executed
