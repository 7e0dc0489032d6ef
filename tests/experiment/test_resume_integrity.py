"""Resume integrity: the stored config is checked, and every file agrees with the per-epoch commit.

Interruptions are simulated in-process by stopping a run at an exact write (the
files are left as a kill there would leave them); ``test_fault_injection.py`` kills
real processes at random moments.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import mmcoop.experiment.run as run_mod
from _runs import strip_times, tiny_cfg
from mmcoop.cli.app import app
from mmcoop.errors import ConfigError, DataError, RunDirError
from mmcoop.experiment import (
    RUN_MARKER,
    load_run,
    read_metrics,
    resume_experiment,
    run_experiment,
    verify_run_dir,
)

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the raising write runs (no cleanup that a kill would skip)."""


def _stop_at(monkeypatch, name: str, epoch: int) -> None:
    """Make the run die at the write of ``checkpoints/<name>`` for ``epoch`` (before the file changes)."""
    real = run_mod.atomic_torch_save

    def save(obj, path):
        if Path(path).name == name and int(obj["epoch"]) == epoch:
            raise Killed
        return real(obj, path)

    monkeypatch.setattr(run_mod, "atomic_torch_save", save)


def _results(run_dir: Path) -> dict:
    res = json.loads((run_dir / "results.json").read_text())
    res.pop("seconds_per_epoch")
    return res


def _same_run(a: Path, b: Path) -> None:
    assert strip_times(read_metrics(a)) == strip_times(read_metrics(b))
    assert _results(a) == _results(b)
    wa = torch.load(a / "checkpoints" / "best.pt", weights_only=False)
    wb = torch.load(b / "checkpoints" / "best.pt", weights_only=False)
    assert wa["epoch"] == wb["epoch"]
    assert all(torch.equal(wa["model"][k], wb["model"][k]) for k in wa["model"])
    assert verify_run_dir(a, allow_pending=False) == [] and verify_run_dir(b, allow_pending=False) == []


#: noisy views and a small lr: validation accuracy still improves at every one of 3 epochs
DATA = {"sizes": [48, 24, 24], "dim": 4, "noise": [2.0, 3.0]}
LR = 0.003


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted 3-epoch run whose best epoch is the last (so the final best.pt write matters)."""
    out = tmp_path_factory.mktemp("ref")
    r = run_experiment(tiny_cfg(out, "ref", dataset_options=DATA, train={"epochs": 3, "lr": LR}))
    assert [x["is_best"] for x in r.history] == [True, True, True], r.history  # precondition of the kill tests
    return r.run_dir


def _cfg(out: Path, **train):
    return tiny_cfg(out, "k", dataset_options=DATA, train={"epochs": 3, "lr": LR, **train})


# -- the commit point ---------------------------------------------------------------------------------
def test_kill_between_best_and_last_of_the_final_epoch(tmp_path, monkeypatch, reference):
    """The reported bug: a stale best.pt while results.json names the newer best epoch."""
    _stop_at(monkeypatch, "last.pt", 3)  # best.pt of epoch 3 written, its commit not
    with pytest.raises(Killed):
        run_experiment(_cfg(tmp_path))
    run_dir = tmp_path / "k"
    assert torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)["epoch"] == 3
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["epoch"] == 2
    assert verify_run_dir(run_dir, allow_pending=True) == []  # best.pt is pending, nothing else disagrees
    assert any("best.pt holds epoch 3" in p for p in verify_run_dir(run_dir, allow_pending=False))
    # a reader uses the committed best weights (epoch 2), not the uncommitted best.pt
    _, model, _ = load_run(run_dir)
    committed = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["best_state"]["model"]
    assert all(torch.equal(v, committed[k]) for k, v in model.state_dict().items())
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="best.pt: rewritten for the committed best epoch 2"):
        resume_experiment(run_dir)
    _same_run(run_dir, reference)


def test_kill_before_results_json(tmp_path, monkeypatch, reference):
    real = run_mod.atomic_write_text

    def write(path, text):
        if Path(path).name == "results.json":
            raise Killed
        return real(path, text)

    monkeypatch.setattr(run_mod, "atomic_write_text", write)
    with pytest.raises(Killed):
        run_experiment(_cfg(tmp_path))
    monkeypatch.undo()
    assert verify_run_dir(tmp_path / "k", allow_pending=False) == []
    resume_experiment(tmp_path / "k")
    _same_run(tmp_path / "k", reference)


def test_half_written_metrics_line_and_stale_temp_files(tmp_path, monkeypatch, reference):
    _stop_at(monkeypatch, "best.pt", 2)
    with pytest.raises(Killed):
        run_experiment(_cfg(tmp_path))
    monkeypatch.undo()
    run_dir = tmp_path / "k"
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "lr": 0.003, "train_lo')  # a kill in the middle of the append
    stale = [run_dir / "checkpoints" / ".last.pt.a1b2c3.mmcoop.tmp", run_dir / ".metrics.jsonl.x9.mmcoop.tmp"]
    for p in stale:
        p.write_bytes(b"partial")
    (run_dir / ".notes.tmp").write_text("the user's own")  # not mmcoop's pattern: kept
    assert [r["epoch"] for r in read_metrics(run_dir)] == [1]  # the cut line is skipped, not an error
    with pytest.raises(DataError, match="line 2"):
        read_metrics(run_dir, strict=True)
    with pytest.warns(UserWarning, match="kept the 1 committed epoch"):
        resume_experiment(run_dir)
    assert not any(p.exists() for p in stale)
    assert (run_dir / ".notes.tmp").read_text() == "the user's own"
    (run_dir / ".notes.tmp").unlink()
    _same_run(run_dir, reference)


def test_a_damaged_middle_metrics_line_is_named(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(DataError, match="metrics.jsonl line 2"):
        read_metrics(tmp_path)


def test_kill_before_the_first_commit_starts_over(tmp_path, monkeypatch, reference):
    _stop_at(monkeypatch, "last.pt", 1)
    with pytest.raises(Killed):
        run_experiment(_cfg(tmp_path))
    monkeypatch.undo()
    run_dir = tmp_path / "k"
    assert not (run_dir / "checkpoints" / "last.pt").exists() and (run_dir / "metrics.jsonl").exists()
    with pytest.raises(RunDirError, match="--resume"):  # a plain restart is refused, nothing lost
        run_experiment(_cfg(tmp_path))
    with pytest.warns(UserWarning, match="best.pt: removed"):
        resume_experiment(run_dir)
    _same_run(run_dir, reference)


def test_a_run_made_before_markers_resumes(tmp_path, monkeypatch, reference):
    _stop_at(monkeypatch, "last.pt", 2)
    with pytest.raises(Killed):
        run_experiment(_cfg(tmp_path))
    monkeypatch.undo()
    run_dir = tmp_path / "k"
    (run_dir / RUN_MARKER).unlink()
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    for key in ("config", "history", "format"):  # what an older mmcoop's last.pt lacked
        state.pop(key)
    torch.save(state, run_dir / "checkpoints" / "last.pt")
    with pytest.warns(UserWarning, match="best.pt: rewritten for the committed best epoch 1"):
        resume_experiment(run_dir)
    assert (run_dir / RUN_MARKER).is_file()
    _same_run(run_dir, reference)


# -- what a resume may change ----------------------------------------------------------------------------
@pytest.fixture
def half(tmp_path) -> Path:
    """A run of 3 epochs stopped (cleanly) after 2."""
    r = run_experiment(tiny_cfg(tmp_path, "h", dataset_options=DATA, train={"epochs": 2, "lr": LR}))
    return r.run_dir


def _edit_yaml(run_dir: Path, **changes) -> None:
    path = run_dir / "config.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = data
        *head, last = dotted.split(".")
        for h in head:
            node = node[h]
        node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    "key,value,why",
    [
        ("seed", 1, "defines the run"),
        ("train.lr", 0.5, "changes the optimisation"),
        ("model.dim", 16, "defines the run"),
        ("dataset_options.sizes", [48, 24, 20], "defines the run"),
    ],
)
def test_an_edited_config_yaml_is_refused_with_a_diff(half, key, value, why):
    before = (half / "metrics.jsonl").read_text()
    _edit_yaml(half, **{key: value})
    with pytest.raises(ConfigError) as e:
        resume_experiment(half, {"train": {"epochs": 3}})
    msg = str(e.value)
    assert f"{key}:" in msg and repr(value) in msg and "edited config.yaml" in msg and why in msg
    assert (half / "metrics.jsonl").read_text() == before  # nothing trained, nothing rewritten


def test_options_given_with_resume_are_applied_recorded_or_refused(half):
    res = runner.invoke(app, ["train", "--resume", str(half), "--lr", "0.5", "--seed", "3"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "train.lr: 0.003 -> 0.5" in text and "seed: 0 -> 3" in text, res.output
    res = runner.invoke(app, ["train", "--resume", str(half), "--epochs", "1"])
    assert res.exit_code == 2 and "already trained 2 epochs" in res.output
    res = runner.invoke(app, ["train", "--resume", str(half), "--epochs", "3", "--set", "train.eval_batch_size=7"])
    assert res.exit_code == 0, res.output
    assert [r["epoch"] for r in read_metrics(half)] == [1, 2, 3]
    saved = yaml.safe_load((half / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 3 and saved["train"]["eval_batch_size"] == 7
    log = [json.loads(x) for x in (half / "resumes.jsonl").read_text().splitlines()]
    assert log[-1]["after_epoch"] == 2
    assert log[-1]["changes"] == {"train.epochs": [2, 3], "train.eval_batch_size": [128, 7]}
    assert torch.load(half / "checkpoints" / "last.pt", weights_only=False)["config"]["train"]["epochs"] == 3


def test_resume_with_the_same_options_is_not_a_change(half):
    res = runner.invoke(app, ["train", "--resume", str(half), "--seed", "0", "--lr", "0.003"])
    assert res.exit_code == 0, res.output
    assert not (half / "resumes.jsonl").exists()


def test_resume_with_name_or_overwrite_is_refused(half):
    for extra in (["--name", "x"], ["--overwrite"]):
        res = runner.invoke(app, ["train", "--resume", str(half), *extra])
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
