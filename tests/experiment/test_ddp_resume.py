"""Issue 18.7: a torchrun run (2 processes, sample-level) whose rank 1 is killed with SIGKILL
resumes under torchrun to exactly the uninterrupted run: every rank restores its own RNG
streams (train-time noise is drawn per rank), the sampler epoch and the plan."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from _helpers import torchrun
from _runs import strip_times
from mmcoop.experiment import read_metrics, verify_run_dir

WORKER = Path(__file__).with_name("ddp_resume_worker.py")


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    return torchrun(str(WORKER), *args, timeout=400)


@pytest.mark.slow
def test_a_killed_torchrun_run_resumes_exactly(tmp_path):
    killed = _torchrun("full", str(tmp_path))
    assert killed.returncode != 0, "rank 1 should have been killed"
    assert (tmp_path / "full" / "results.json").is_file(), killed.stderr[-3000:]
    done = [r["epoch"] for r in read_metrics(tmp_path / "killed")]
    assert done[:2] == [1, 2] and len(done) <= 3 and not (tmp_path / "killed" / "results.json").exists()
    state = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=True)
    assert len(state["rank_states"]) == 2  # one RNG state per rank
    resumed = _torchrun("resume", str(tmp_path))
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    a, b = tmp_path / "full", tmp_path / "killed"
    assert strip_times(read_metrics(b)) == strip_times(read_metrics(a))
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    ra.pop("seconds_per_epoch"), rb.pop("seconds_per_epoch")
    assert ra == rb
    wa, wb = (torch.load(d / "checkpoints" / "best.pt", weights_only=True) for d in (a, b))
    assert wa["epoch"] == wb["epoch"] and all(torch.equal(wa["model"][k], wb["model"][k]) for k in wa["model"])
    assert verify_run_dir(b, allow_pending=False) == []
