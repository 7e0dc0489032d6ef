"""BalanceBenchmark's six methods (issue 25) through the real loop: two epochs on mfeat (M = 6) each,
and an interrupted-then-resumed run equal to the uninterrupted one (exact resume of the method state)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from _runs import strip_times
from mmcoop.experiment import RunConfig, read_metrics, run_experiment

pytestmark = pytest.mark.usefixtures("one_thread")

#: method -> options that make a 2-epoch run act in both epochs
SIX: dict[str, dict[str, Any]] = {
    "mmcosine": {},
    "cml": {},
    "umt": {"teacher_epochs": 1},
    "lfm": {},
    "amco": {},
    "mbsd": {},
}


def _cfg(out, method: str, epochs: int, dataset: str = "mfeat", **over: Any) -> RunConfig:
    d: dict[str, Any] = {
        "dataset": dataset,
        "dataset_options": {"val_fraction": 0.1, "test_fraction": 0.8}
        if dataset == "mfeat"
        else {"sizes": [64, 32, 32]},
        "method": method,
        "method_options": dict(SIX[method]),
        "model": {"dim": 16},
        "train": {"epochs": epochs, "batch_size": 32, "progress": False, "device": "cpu"},
        "out_dir": str(out),
        "name": method,
    }
    d.update(over)
    return RunConfig.from_dict(d)


@pytest.mark.parametrize("method", sorted(SIX))
def test_two_epochs_on_mfeat(tmp_path, method: str) -> None:
    r = run_experiment(_cfg(tmp_path, method, 2))
    assert len(r.history) == 2
    assert all(torch.isfinite(torch.tensor(x["train_loss"])) for x in r.history)
    assert r.test["acc"] > 0.3, r.test  # 10 classes: chance is 0.1
    assert {f"acc_{v}" for v in ("fou", "fac", "kar", "pix", "zer", "mor")} <= set(r.test)


@pytest.mark.parametrize("method", sorted(SIX))
def test_resume_equals_the_uninterrupted_run(tmp_path, method: str) -> None:
    full = run_experiment(_cfg(tmp_path / "a", method, 2, dataset="synthetic"))
    run_experiment(_cfg(tmp_path / "b", method, 1, dataset="synthetic"))
    resumed = run_experiment(_cfg(tmp_path / "b", method, 2, dataset="synthetic"), resume=True)
    assert strip_times(read_metrics(resumed.run_dir)) == strip_times(read_metrics(full.run_dir))
    a = torch.load(full.run_dir / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(resumed.run_dir / "checkpoints" / "last.pt", weights_only=False)
    for part in ("model", "method_modules"):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), (part, k)
