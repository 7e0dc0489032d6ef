"""``reconboost`` through the real loop: one learner per stage, the correction phase, the ensemble
prediction, three modalities."""

from __future__ import annotations

import pytest
import torch

from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, read_metrics, run_experiment
from mmcoop.experiment.run import build_for, load_splits
from mmcoop.methods import build_method
from mmcoop.methods.functional import reconboost_loss
from mmcoop.train import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(out, epochs: int, m: int = 2, **options) -> RunConfig:
    return RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"num_modalities": m, "sizes": [96, 48, 48]},
            "method": "reconboost",
            "method_options": {"epochs_per_stage": 1, "correct_epochs": 0, **options},
            "model": {"dim": 16},
            "train": {"epochs": epochs, "batch_size": 32, "progress": False, "device": "cpu"},
            "out_dir": str(out),
        }
    )


def _states(cfg: RunConfig, epochs: int) -> list[dict]:
    """Model and method-module state before training and after each of ``epochs`` epochs
    (one epoch per run, resumed: the same as one uninterrupted run)."""
    splits = load_splits(cfg)
    states = [{"model": {k: v.clone() for k, v in build_for(cfg, splits).state_dict().items()}, "method_modules": None}]
    for e in range(1, epochs + 1):
        cfg.train.epochs = e
        run_experiment(cfg, resume=e > 1)
        states.append(torch.load(cfg.run_dir / "checkpoints" / "last.pt", weights_only=False))
    return states


def _changed(before: dict, after: dict, prefix: str) -> bool:
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point() and "running_" not in k]
    assert keys, prefix
    return any(not torch.equal(before[k], after[k]) for k in keys)


def test_options_validated() -> None:
    o = build_method("reconboost").options
    assert (o.epochs_per_stage, o.correct_epochs, o.weight1, o.weight2, o.boost_rate) == (4, 4, 5.0, 1.0, 1.0)
    bad_options = (
        {"epochs_per_stage": 0},
        {"correct_epochs": -1},
        {"weight1": -1},
        {"boost_rate": 0},
        {"head_hidden": 1.5},
    )
    for bad in bad_options:
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("reconboost", bad)


@pytest.mark.parametrize("m", [2, 3])
def test_only_the_stage_modality_learns(tmp_path, m: int) -> None:
    states = _states(_cfg(tmp_path, 2, m=m), 2)
    for stage in (0, 1):  # epoch e is stage e: it trains modality e only (M = 3: m2 never)
        before, after = states[stage]["model"], states[stage + 1]["model"]
        for k in range(m):
            assert _changed(before, after, f"encoders.m{k}.") == (k == stage), (stage, k)
        assert not _changed(before, after, "head.")  # the model's own fusion head is not a learner
    # the shared learner head is the method's module: it trains in both stages
    assert _changed(states[1]["method_modules"], states[2]["method_modules"], "ensemble.head.")
    # phase 1 leaves the ensemble scale alone (no gradient reaches it)
    assert float(states[2]["method_modules"]["ensemble.boost_rate"]) == 1.0


def test_correction_phase_trains_the_ensemble(tmp_path) -> None:
    # stage 0 = epoch 1 (boost m0) + epoch 2 (correct the ensemble, which holds m0 only)
    cfg = _cfg(tmp_path, 2, correct_epochs=1)
    states = _states(cfg, 2)
    before, after = states[1]["model"], states[2]["model"]
    assert _changed(before, after, "encoders.m0.") and not _changed(before, after, "encoders.m1.")
    assert float(states[2]["method_modules"]["ensemble.boost_rate"]) != 1.0
    logs = read_metrics(cfg.run_dir)
    assert [(r["reconboost_stage"], r["reconboost_boosting"]) for r in logs] == [(0, 1), (0, 0)]
    assert logs[1]["boost_rate"] == pytest.approx(float(states[2]["method_modules"]["ensemble.boost_rate"]))


def test_predicts_with_the_ensemble(tmp_path) -> None:
    r = run_experiment(_cfg(tmp_path, 4, epochs_per_stage=1, correct_epochs=1))
    assert r.test["acc"] > 0.6  # the ensemble predicts (the untrained fusion head is near chance 0.25)
    # per-modality accuracies are each learner alone (the untrained fusion head gives about 0.1-0.2)
    assert r.test["acc_m0"] > 0.7 and r.test["acc_m1"] > 0.3


def test_boosting_step_loss(tmp_path) -> None:
    """A phase-1 step of stage 1 (modality m1; m0 already in the ensemble) returns the boosting loss
    of learner m1 against ``boost_rate *`` learner m0, and the ensemble logits."""
    cfg = _cfg(tmp_path, 2)
    splits = load_splits(cfg)
    method = build_method("reconboost", cfg.method_options)
    trainer = Trainer(build_for(cfg, splits), method, splits, cfg.train)
    trainer.ctx.epoch = 1
    method.on_epoch_start(trainer.ctx)
    model = trainer.model.eval()  # no dropout: the reference below sees the same function
    batch = splits.train.__getitems__(list(range(16)))
    y = batch["label"]
    with torch.no_grad():
        f = model.encode(batch["inputs"])
        mine, other = method.ensemble.head(f[:, 1]), method.ensemble.head(f[:, 0])
    want = reconboost_loss(mine, 1.0 * other, y, 5.0, 1.0)
    with torch.no_grad():  # evaluation predicts with the whole ensemble
        torch.testing.assert_close(method.predict(model, f, batch), mine + other)
    loss, fused = method.train_step(trainer.ctx, batch)
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(fused, mine + other)
    assert float(want) != pytest.approx(float(reconboost_loss(mine, None, y, 5.0, 1.0)))  # the others matter


def test_mfeat_six_modalities(tmp_path) -> None:
    cfg = RunConfig.from_dict(
        {
            "dataset": "mfeat",
            "method": "reconboost",
            "method_options": {"epochs_per_stage": 1, "correct_epochs": 0},
            "train": {"epochs": 2, "progress": False, "device": "cpu"},
            "out_dir": str(tmp_path),
        }
    )
    r = run_experiment(cfg)
    assert [x["reconboost_modality"] for x in r.history] == [0, 1] and r.test["acc"] > 0.5
