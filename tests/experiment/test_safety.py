"""Run-directory safety: --overwrite only replaces marked runs inside out_dir, and one writer per run.

Every overwrite case keeps a decoy file where a careless delete would hit it, and
checks that the decoy survives byte for byte.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _helpers import write_png
from _runs import TINY_ARGS, tiny_cfg
from mmcoop.cli.app import app
from mmcoop.errors import RunDirError
from mmcoop.experiment import RUN_MARKER, check_run_path, is_marked_run_dir, run_experiment
from mmcoop.utils.lock import FolderLock

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
DECOY = b"\\documentclass{article} my thesis, no backup"


def _decoy(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(DECOY)
    return path


def _train(out_dir: Path, *args: str):
    return runner.invoke(app, ["train", *TINY_ARGS, "--epochs", "1", "--out-dir", str(out_dir), *args])


def _one_message(res, needle: str) -> str:
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert needle in text, res.output
    assert "Traceback" not in res.output
    return text


def test_overwrite_refuses_a_folder_mmcoop_did_not_create(tmp_path, monkeypatch):
    import mmcoop.experiment.run as run_mod

    monkeypatch.setattr(run_mod, "load_splits", lambda cfg: pytest.fail("refuse before loading data"))
    runs = tmp_path / "runs"
    thesis = _decoy(runs / "mydata" / "thesis.tex")
    res = _train(runs, "--name", "mydata", "--overwrite")
    _one_message(res, "did not mark as a run")
    assert thesis.read_bytes() == DECOY
    assert sorted(p.name for p in thesis.parent.iterdir()) == ["thesis.tex"]  # nothing written into it either


def test_without_overwrite_an_unmarked_folder_is_not_written_into(tmp_path):
    runs = tmp_path / "runs"
    own = _decoy(runs / "mydata" / "config.yaml")  # a user's file with a name mmcoop also writes
    _one_message(_train(runs, "--name", "mydata"), "refusing to write into")
    assert own.read_bytes() == DECOY


@pytest.mark.parametrize("name", ["..", ".", "../runs2", "a/../..", "/tmp/abs"])
def test_overwrite_refuses_names_that_leave_out_dir(tmp_path, name):
    project = tmp_path / "project"
    runs = project / "runs"
    runs.mkdir(parents=True)
    thesis = _decoy(project / "thesis.tex")
    sibling = _decoy(tmp_path / "runs2" / "notes.txt")
    _one_message(_train(runs, "--name", name, "--overwrite"), "--out-dir")
    assert thesis.read_bytes() == DECOY and sibling.read_bytes() == DECOY


def test_a_symlink_leading_out_of_out_dir_is_refused(tmp_path):
    elsewhere = _decoy(tmp_path / "elsewhere" / "data.csv")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "link").symlink_to(tmp_path / "elsewhere")
    _one_message(_train(runs, "--name", "link", "--overwrite"), "outside --out-dir")
    assert elsewhere.read_bytes() == DECOY


def test_working_and_home_directories_are_refused(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    work = runs / "work" / "sub"
    keep = _decoy(work / "keep.txt")
    monkeypatch.chdir(work)
    with pytest.raises(RunDirError, match="working directory"):
        check_run_path(runs, "work")  # contains the working directory
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(runs / "home"))
    home_file = _decoy(runs / "home" / ".bashrc")
    with pytest.raises(RunDirError, match="home directory"):
        check_run_path(runs, "home")
    assert keep.read_bytes() == DECOY and home_file.read_bytes() == DECOY


def test_overwrite_replaces_a_marked_run_and_nothing_beside_it(tmp_path):
    runs = tmp_path / "runs"
    sibling = _decoy(runs / "notes.txt")
    first = run_experiment(tiny_cfg(runs, train={"epochs": 2}))
    assert is_marked_run_dir(first.run_dir) and (first.run_dir / RUN_MARKER).is_file()
    assert runner.invoke(app, ["value", str(first.run_dir)]).exit_code == 0  # valuation/test.parquet: mmcoop's
    write_png(first.run_dir / "plots" / "old.png", mmcoop_plot=True)  # a plot the report wrote
    with pytest.raises(RunDirError, match="--overwrite"):  # refused without the flag
        run_experiment(tiny_cfg(runs, train={"epochs": 1}))
    second = run_experiment(tiny_cfg(runs, train={"epochs": 1}), overwrite=True)
    assert len(second.history) == 1
    assert not (second.run_dir / "valuation").exists() and not (second.run_dir / "plots").exists()  # gone ...
    assert is_marked_run_dir(second.run_dir)  # ... the new one is marked ...
    assert sibling.read_bytes() == DECOY  # ... and the folder beside it untouched


def test_an_empty_existing_folder_is_used(tmp_path):
    (tmp_path / "runs" / "r").mkdir(parents=True)
    r = run_experiment(tiny_cfg(tmp_path / "runs", train={"epochs": 1}))
    assert is_marked_run_dir(r.run_dir) and (r.run_dir / "results.json").is_file()


def _hold_lock(folder: str, ready, release) -> None:
    lock = FolderLock(folder).acquire()
    ready.set()
    release.wait(30)
    lock.release()


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    runs = tmp_path / "runs"
    first = run_experiment(tiny_cfg(runs, train={"epochs": 1}))
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(first.run_dir), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        msg = f"pid {holder.pid} on host {socket.gethostname()}"
        with pytest.raises(RunDirError, match=msg):
            run_experiment(tiny_cfg(runs, train={"epochs": 1}), overwrite=True)
        with pytest.raises(RunDirError, match=msg):
            run_experiment(tiny_cfg(runs, train={"epochs": 2}), resume=True)
        res = runner.invoke(app, ["train", "--resume", str(first.run_dir), "--epochs", "2"])
        _one_message(res, msg)
        assert (first.run_dir / "results.json").is_file()  # the held run was not touched
    finally:
        release.set()
        holder.join(30)
    # once the holder exits, the run can be continued
    again = run_experiment(tiny_cfg(runs, train={"epochs": 2}), resume=True)
    assert len(again.history) == 2


def test_the_lock_is_held_for_the_run_and_released_after(tmp_path, monkeypatch):
    seen = []
    import mmcoop.experiment.run as run_mod

    original = run_mod._train

    def spy(cfg, run_dir, *args):
        with pytest.raises(RunDirError, match=f"pid {os.getpid()}"):
            FolderLock(run_dir).acquire()  # another open of the lock file: refused while training
        seen.append(run_dir)
        return original(cfg, run_dir, *args)

    monkeypatch.setattr(run_mod, "_train", spy)
    r = run_experiment(tiny_cfg(tmp_path, train={"epochs": 1}))
    assert seen == [r.run_dir]
    FolderLock(r.run_dir).acquire().release()  # free again afterwards


def test_a_new_run_directory_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        r = run_experiment(tiny_cfg(tmp_path, train={"epochs": 1}))
    finally:
        os.umask(umask)
    assert r.run_dir.stat().st_mode & 0o777 == 0o755
    assert not [p for p in tmp_path.iterdir() if p.name != "r"]  # no temporary folder left beside it


def test_half_assembled_run_folders_left_by_a_kill_are_removed(tmp_path):
    from mmcoop.experiment.safety import remove_stale_new_dirs, write_marker

    stale = tmp_path / ".r.k1ll3d.mmcoop-new"  # killed after its marker was written
    stale.mkdir()
    write_marker(stale)
    (stale / "config.yaml").write_text("dataset: synthetic\n")
    fresh = tmp_path / ".r.b0rn.mmcoop-new"  # no marker yet, seconds old: may be a live creator's
    fresh.mkdir()
    held = tmp_path / ".r.l1ve.mmcoop-new"
    held.mkdir()
    write_marker(held)
    other = _decoy(tmp_path / ".other.x.mmcoop-new" / "keep.txt")  # another run's name
    with FolderLock(held):
        r = run_experiment(tiny_cfg(tmp_path, train={"epochs": 1}))
        assert not stale.exists() and fresh.is_dir() and held.is_dir() and other.read_bytes() == DECOY
    assert remove_stale_new_dirs(r.run_dir) == [held]
    assert remove_stale_new_dirs(r.run_dir, min_age_s=0.0) == [fresh]


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry below ``folder`` (hidden ones too): file bytes, ``None`` for folders."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def test_overwrite_refuses_to_delete_user_files_inside_a_run(tmp_path, monkeypatch):
    """Issue 18.1: NOTES.md and analysis/ put into a run folder survive --overwrite (it refuses, naming them)."""
    runs = tmp_path / "runs"
    first = run_experiment(tiny_cfg(runs, "userfile", train={"epochs": 1}))
    notes = _decoy(first.run_dir / "NOTES.md")
    analysis = _decoy(first.run_dir / "analysis" / "fig.tex")
    mine = _decoy(first.run_dir / "valuation" / "mine.parquet")  # a valuation-like name, not mmcoop's table
    before = _snapshot(first.run_dir)
    import mmcoop.experiment.run as run_mod

    with monkeypatch.context() as m:  # refused before any data is loaded
        m.setattr(run_mod, "load_splits", lambda cfg: pytest.fail("refuse before loading data"))
        text = _one_message(_train(runs, "--name", "userfile", "--overwrite"), "did not write")
    assert "NOTES.md" in text and "analysis/" in text and "valuation/mine.parquet" in text and "Move" in text
    before.pop(".mmcoop.lock", None)
    after = _snapshot(first.run_dir)
    after.pop(".mmcoop.lock", None)
    assert after == before  # nothing deleted, nothing written
    with pytest.raises(RunDirError, match="NOTES.md"):  # the library refuses the same way
        run_experiment(tiny_cfg(runs, "userfile", train={"epochs": 1}), overwrite=True)
    for p in (notes, analysis, mine):
        assert p.read_bytes() == DECOY
    notes.unlink(), mine.unlink()
    analysis.unlink(), analysis.parent.rmdir()
    again = run_experiment(tiny_cfg(runs, "userfile", train={"epochs": 1}), overwrite=True)  # only mmcoop's files left
    assert len(again.history) == 1


def test_a_failed_resume_leaves_a_foreign_folder_exactly_as_it_was(tmp_path):
    """Issue 18.2: a resume that fails writes no marker, removes no temp file, creates no lock file."""
    proj = tmp_path / "proj"
    exp = proj / "myexp"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text("lr: 0.1\n")
    (exp / "metrics.jsonl").write_text('{"loss":1}\n')
    thesis = _decoy(exp / "thesis.tex")
    (exp / ".notes.tmp").write_text("t\n")
    before = _snapshot(exp)
    res = runner.invoke(app, ["train", "--resume", str(exp)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert _snapshot(exp) == before  # exactly as found: no .mmcoop-run, no .mmcoop.lock, .notes.tmp kept
    _one_message(_train(proj, "--name", "myexp", "--overwrite"), "did not mark as a run")
    assert thesis.read_bytes() == DECOY and _snapshot(exp) == before


def test_a_failed_resume_of_a_real_run_changes_nothing(tmp_path):
    """A refused resume (a config change) of a marked run leaves every file as it was, temp files included."""
    first = run_experiment(tiny_cfg(tmp_path, train={"epochs": 1}))
    (first.run_dir / ".notes.tmp").write_text("the user's")
    (first.run_dir / ".metrics.jsonl.k1ll.mmcoop.tmp").write_text("partial")  # mmcoop's, left by a kill
    before = _snapshot(first.run_dir)
    res = runner.invoke(app, ["train", "--resume", str(first.run_dir), "--seed", "3"])
    _one_message(res, "seed")
    assert _snapshot(first.run_dir) == before
    run_experiment(tiny_cfg(tmp_path, train={"epochs": 2}), resume=True)
    assert (first.run_dir / ".notes.tmp").read_text() == "the user's"
    assert not (first.run_dir / ".metrics.jsonl.k1ll.mmcoop.tmp").exists()
