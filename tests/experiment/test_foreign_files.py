"""Issue 23, "loses or replaces the user's files": each case is run through the CLI in an empty folder.

1. ``train --resume`` on a folder that was never a run (a hand-written or copied ``config.yaml``,
   the user's ``metrics.jsonl``, no marker, no checkpoint) refuses and changes nothing;
2. ``--overwrite`` never deletes a user's file inside ``wandb/offline-run-*/``;
3. a user's ``metrics.csv`` in a run that never used the csv logger is neither deleted by
   ``--overwrite`` nor replaced by ``--resume --set train.loggers=[jsonl,csv]``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _runs import TINY_ARGS
from mmcoop.cli.app import app

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
DECOY = b"my own notes, no backup\n"


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry below ``folder`` (hidden ones and links too): file bytes, ``None`` for folders and links."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(folder.rglob("*"))
    }


def _train(*args: str):
    return runner.invoke(app, ["train", *TINY_ARGS, "--epochs", "1", "--out-dir", "runs", *args])


def _refused(res, *needles: str) -> str:
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    for needle in needles:
        assert needle in text, res.output
    assert "Traceback" not in res.output and "Warning" not in res.output, res.output
    return text


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- 1. a resume of a folder that was never a run ------------------------------------------------------
def test_resume_refuses_a_folder_that_was_never_a_run(here):
    exp = here / "myexp"
    exp.mkdir()
    (exp / "config.yaml").write_text(
        "# my experiment, tuned by hand\ndataset: synthetic\ndataset_options: {sizes: [48, 24, 24], dim: 4}\n"
        "model: {dim: 8}\ntrain: {epochs: 1, progress: false, device: cpu}\n"
    )
    (exp / "metrics.jsonl").write_text('{"epoch": 1, "my_loss": 0.5}\n')
    before = _tree(exp)
    _refused(runner.invoke(app, ["train", "--resume", "myexp"]), "myexp", "not a run directory")
    assert _tree(exp) == before  # no training, no marker, both files as they were


def test_resume_refuses_a_folder_holding_a_copied_config(here):
    real = _train("--name", "real")
    assert real.exit_code == 0, real.output
    exp = here / "copy"
    exp.mkdir()
    shutil.copy(here / "runs" / "real" / "config.yaml", exp / "config.yaml")
    (exp / "metrics.jsonl").write_text('{"epoch": 3, "note": "mine"}\n')
    before = _tree(exp)
    with _no_warning():
        res = runner.invoke(app, ["train", "--resume", "copy"])
    _refused(res, "not a run directory")
    assert _tree(exp) == before


class _no_warning:
    """No Python warning at all (a refused resume repairs nothing, so nothing is 'repaired')."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self.seen = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        assert not [str(w.message) for w in self.seen if issubclass(w.category, UserWarning)], self.seen
        return False


# -- 2. user files inside wandb's run folders -----------------------------------------------------------
@pytest.fixture
def wandb_run(here) -> Path:
    pytest.importorskip("wandb")
    res = _train("--name", "w", "--set", "train.loggers=[jsonl,wandb]")
    assert res.exit_code == 0, res.output
    return here / "runs" / "w"


@pytest.mark.parametrize("place", ["analysis.md", "files/mine/keep.txt", "logs/my-notes.log", "tmp/scratch.py"])
def test_overwrite_keeps_user_files_inside_wandb_run_folders(wandb_run, place):
    (offline,) = (wandb_run / "wandb").glob("offline-run-*")
    target = offline / place
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(DECOY)
    before = _tree(wandb_run)
    before.pop(".mmcoop.lock", None)
    text = _refused(
        _train("--name", "w", "--set", "train.loggers=[jsonl,wandb]", "--overwrite"), "did not write", place
    )
    assert f"wandb/{offline.name}/{place}" in text  # the file is named, its folder path included
    after = _tree(wandb_run)
    after.pop(".mmcoop.lock", None)
    assert after == before and target.read_bytes() == DECOY


def test_overwrite_replaces_a_wandb_run_holding_only_wandbs_files(wandb_run):
    (old,) = (wandb_run / "wandb").glob("offline-run-*")
    res = _train("--name", "w", "--set", "train.loggers=[jsonl,wandb]", "--overwrite")
    assert res.exit_code == 0, res.output
    assert not old.exists() and len(list((wandb_run / "wandb").glob("offline-run-*"))) == 1


# -- 3. a user's metrics.csv ------------------------------------------------------------------------------
@pytest.fixture
def run_with_own_csv(here) -> Path:
    res = _train("--name", "r")
    assert res.exit_code == 0, res.output
    run = here / "runs" / "r"
    (run / "metrics.csv").write_bytes(b"step,my_metric\n1,0.25\n")
    return run


def test_overwrite_lists_a_user_metrics_csv_as_foreign(run_with_own_csv):
    before = _tree(run_with_own_csv)
    _refused(_train("--name", "r", "--overwrite"), "did not write", "metrics.csv")
    after = _tree(run_with_own_csv)
    before.pop(".mmcoop.lock", None), after.pop(".mmcoop.lock", None)
    assert after == before


def test_resume_with_the_csv_logger_does_not_replace_a_user_metrics_csv(run_with_own_csv):
    before = _tree(run_with_own_csv)
    res = runner.invoke(
        app, ["train", "--resume", str(run_with_own_csv), "--epochs", "2", "--set", "train.loggers=[jsonl,csv]"]
    )
    _refused(res, "metrics.csv")
    assert _tree(run_with_own_csv) == before


def test_the_csv_loggers_own_file_is_mmcoops(here):
    res = _train("--name", "c", "--set", "train.loggers=[jsonl,csv]")
    assert res.exit_code == 0, res.output
    csv = here / "runs" / "c" / "metrics.csv"
    assert csv.read_text().startswith("epoch,")
    resumed = runner.invoke(app, ["train", "--resume", "runs/c", "--epochs", "2"])
    assert resumed.exit_code == 0, resumed.output
    assert len(csv.read_text().splitlines()) == 3  # header + the two epochs: resumed, not replaced
    again = _train("--name", "c", "--overwrite")  # its own csv is deleted by --overwrite
    assert again.exit_code == 0, again.output
    assert not csv.exists()


# -- the --top CSV: mmcoop's, with provenance -------------------------------------------------------------
def test_the_top_csv_is_mmcoops_and_flagged_when_stale(here):
    """`value --top K` writes valuation/test_lowest.csv with a provenance record: --overwrite may delete it,
    a resume that changes best.pt flags it, and a user's CSV beside it (or an edited one) is foreign."""
    from mmcoop.utils.runfiles import split_run_entries, stale_derived

    args = ["--set", "dataset_options.noise=[2.0,3.0]", "--lr", "0.003", "--name", "t"]
    assert _train(*args).exit_code == 0
    run = here / "runs" / "t"
    res = runner.invoke(app, ["value", str(run), "--top", "2"])
    assert res.exit_code == 0, res.output
    csv = run / "valuation" / "test_lowest.csv"
    assert csv.is_file() and split_run_entries(run)[1] == []  # all mmcoop's
    assert stale_derived(run) == []
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "3"])
    assert resumed.exit_code == 0, resumed.output
    stale = [m for m in stale_derived(run) if "test_lowest.csv" in m]
    assert len(stale) == 1 and "--top" in stale[0], stale_derived(run)
    csv.write_text(csv.read_text() + "my,own,row\n")  # edited by the user: now theirs
    assert split_run_entries(run)[1] == ["valuation/test_lowest.csv"]
    _refused(_train(*args, "--overwrite"), "valuation/test_lowest.csv")
    csv.unlink()
    (run / "valuation" / "mine.csv").write_text("a,b\n")
    assert split_run_entries(run)[1] == ["valuation/mine.csv"]
    (run / "valuation" / "mine.csv").unlink()
    assert runner.invoke(app, ["value", str(run), "--top", "2"]).exit_code == 0
    assert _train(*args, "--overwrite").exit_code == 0  # its own CSV and record are deleted with the run
    assert not (run / "valuation").exists() or not any((run / "valuation").iterdir())
