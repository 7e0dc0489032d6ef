"""Issue 18.6: loading a run folder never executes code from its checkpoints.

Checkpoints load with ``torch.load(weights_only=True)``; everything mmcoop saves (model,
optimizer, scheduler, scaler, RNG states, method states and plans) loads that way, and a
crafted checkpoint (an object whose ``__reduce__`` runs a command) is refused by
``mmcoop value`` and ``--resume`` with a message, unless ``--trust-run`` is given.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from _runs import tiny_cfg
from mmcoop.cli.app import app
from mmcoop.errors import RunDirError
from mmcoop.experiment import load_run, resume_experiment, run_experiment
from mmcoop.methods import METHODS
from mmcoop.utils.io import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


class Payload:
    """What an attacker would put into a shared run folder: unpickling it runs a command."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def __reduce__(self):
        return (os.system, (f"touch {self.flag}",))


@pytest.mark.parametrize("name", sorted(METHODS.names()))
def test_every_method_checkpoint_loads_weights_only(tmp_path, name):
    opts = {"modality": "m0"} if name == "unimodal" else {}
    if name in ("sample-level", "modality-level"):
        opts["warmup"] = 1  # the plan is in the state from epoch 1 on
    if name == "opm":
        opts["modulation_starts"] = 0  # active within the 2 epochs (else refused as a no-op)
    if name == "relearning":  # first re-initialisation at the start of (0-based) epoch 2: in the resumed epoch
        opts.update(reinit_epoch=1, allow_noop=True)
    r = run_experiment(tiny_cfg(tmp_path, method=name, method_options=opts, train={"epochs": 2}))
    for which in ("last", "best"):
        state = torch.load(r.run_dir / "checkpoints" / f"{which}.pt", weights_only=True)
        assert int(state["epoch"]) >= 1
    resumed = run_experiment(tiny_cfg(tmp_path, method=name, method_options=opts, train={"epochs": 3}), resume=True)
    assert len(resumed.history) == 3


def _crafted(run_dir: Path, which: str, flag: Path) -> None:
    path = run_dir / "checkpoints" / f"{which}.pt"
    state = torch.load(path, weights_only=True)
    state["note"] = Payload(flag)
    torch.save(state, path)


@pytest.mark.parametrize("which", ["last", "best"])
def test_a_crafted_checkpoint_is_refused_not_executed(tmp_path, which):
    r = run_experiment(tiny_cfg(tmp_path / "runs", train={"epochs": 1}))
    flag = tmp_path / "PWNED"
    _crafted(r.run_dir, which, flag)
    res = runner.invoke(app, ["value", str(r.run_dir), "--checkpoint", which])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "--trust-run" in text and ("posix.system" in text or "os.system" in text), res.output
    assert "Traceback" not in res.output
    if which == "last":  # the commit record: the resume refuses it
        res = runner.invoke(app, ["train", "--resume", str(r.run_dir), "--epochs", "2"])
        assert res.exit_code == 2 and "--trust-run" in " ".join(res.output.split()), res.output
    with pytest.raises(RunDirError, match="refuses to load"):
        load_run(r.run_dir, which)
    with pytest.raises(RunDirError, match="refuses to load"):
        load_checkpoint(r.run_dir / "checkpoints" / f"{which}.pt")
    assert not flag.exists()  # nothing ran
    # the owner of the file may vouch for it
    res = runner.invoke(app, ["value", str(r.run_dir), "--checkpoint", which, "--trust-run"])
    assert res.exit_code == 0, res.output
    assert flag.exists()  # ... and then unpickling did run it: that is what --trust-run means


def test_a_crafted_best_checkpoint_is_replaced_on_resume_without_running_it(tmp_path):
    """best.pt is not the commit record: a resume rewrites an unloadable one from last.pt (never unpickling it)."""
    r = run_experiment(tiny_cfg(tmp_path / "runs", train={"epochs": 1}))
    flag = tmp_path / "PWNED"
    _crafted(r.run_dir, "best", flag)
    with pytest.warns(UserWarning, match="best.pt: rewritten"):
        run_experiment(tiny_cfg(tmp_path / "runs", train={"epochs": 2}), resume=True)
    assert not flag.exists()
    assert "note" not in torch.load(r.run_dir / "checkpoints" / "best.pt", weights_only=True)


def test_a_checkpoint_of_an_older_mmcoop_resumes_with_trust(tmp_path):
    """Before weights_only, the NumPy RNG state was saved as a NumPy array: refused, then accepted with trust."""
    import numpy as np

    cfg = tiny_cfg(tmp_path, train={"epochs": 1})
    run_experiment(cfg)
    path = cfg.run_dir / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    state["rng"]["numpy"] = np.random.get_state()  # the old format
    torch.save(state, path)
    with pytest.raises(RunDirError, match="--trust-run"):
        resume_experiment(cfg.run_dir, {"train": {"epochs": 2}})
    r = resume_experiment(cfg.run_dir, {"train": {"epochs": 2}}, trust=True)
    assert len(r.history) == 2
    torch.load(path, weights_only=True)  # rewritten in the new format
