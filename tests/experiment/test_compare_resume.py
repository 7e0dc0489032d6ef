"""Issue 18.3 and 18.5: a killed ``compare`` continues with ``--resume`` (finished runs reused,
half-finished runs resumed from their last committed epoch) and ends exactly like an
uninterrupted comparison; two comparisons never write one folder at once."""

from __future__ import annotations

import json
import multiprocessing as mp
import socket

import pandas as pd
import pytest
from typer.testing import CliRunner

from _faults import fork_safe_tqdm, kill_at_call, run_forked
from _runs import TINY_ARGS, tiny_cfg
from mmcoop.cli.app import app
from mmcoop.errors import ConfigError, RunDirError
from mmcoop.experiment import parse_methods, read_metrics, verify_run_dir
from mmcoop.experiment.compare import run_compare

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
METHODS = "joint,modality-level"
#: compare options shared by the CLI runs (modality-level adds units: a matched joint run per seed)
ARGS = [*TINY_ARGS, "--methods", METHODS, "--seeds", "0,1", "--epochs", "2", "--set", "method_options.warmup=1"]
_VOLATILE = ("seconds_per_epoch", "run_dir")


def _table(cdir) -> pd.DataFrame:
    return pd.read_csv(cdir / "compare.csv").drop(columns=list(_VOLATILE))


def _compare(out, name, *extra):
    return runner.invoke(app, ["compare", *ARGS, "--out-dir", str(out), "--name", name, *extra])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    res = _compare(out, "d")
    assert res.exit_code == 0, res.output
    return out / "d"


def _killed_compare(out, name: str, at_append: int) -> None:
    """`mmcoop compare` killed with SIGKILL right after its ``at_append``-th metrics line (before that epoch's commit)."""
    import mmcoop.experiment.run as run_mod

    def work():
        kill_at_call(run_mod, "append_metrics", at_append)
        app(["compare", *ARGS, "--out-dir", str(out), "--name", name], standalone_mode=False)

    assert run_forked(work), "the comparison ended before the kill point"


@pytest.mark.parametrize("at_append", [1, 3, 6])  # inside the first run; in the second; in a later seed
def test_a_killed_compare_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, reference, at_append):
    fork_safe_tqdm(monkeypatch)
    _killed_compare(tmp_path, "d", at_append)
    cdir = tmp_path / "d"
    assert json.loads((cdir / "compare.json").read_text())["seeds"] == [0, 1]  # the request is recorded first
    again = _compare(tmp_path, "d")  # without --resume: refused, and the message says what to do
    text = " ".join(again.output.split())
    assert again.exit_code == 2 and "--resume" in text and "Traceback" not in again.output, again.output
    res = _compare(tmp_path, "d", "--resume")
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(_table(cdir), _table(reference))
    for run in sorted(p for p in cdir.iterdir() if (p / "config.yaml").is_file()):
        assert verify_run_dir(run, allow_pending=False) == [], run
        ref_metrics = read_metrics(reference / run.name)
        assert [r["val_acc"] for r in read_metrics(run)] == [r["val_acc"] for r in ref_metrics], run.name
    # a second --resume of the finished comparison trains nothing and writes the same table
    res = _compare(tmp_path, "d", "--resume")
    assert res.exit_code == 0 and "Traceback" not in res.output
    pd.testing.assert_frame_equal(_table(cdir), _table(reference))


def _slow_compare(out, seeds, ready, go) -> None:
    def hold(row):
        ready.set()
        go.wait(60)  # keep the comparison (and its lock) alive until the other process has tried

    run_compare(tiny_cfg(out, train={"epochs": 1}), parse_methods("joint"), seeds, name="f", matched=(), on_run=hold)


def test_two_compares_into_one_folder_are_refused_then_merged(tmp_path, monkeypatch):
    """Issue 18.5: the second of two concurrent compares (same name, other seeds) is refused naming the first;
    adding its seeds later with --resume leaves compare.csv with both."""
    fork_safe_tqdm(monkeypatch)
    ctx = mp.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    first = ctx.Process(target=_slow_compare, args=(tmp_path, [0], ready, go))
    first.start()
    try:
        assert ready.wait(60)
        with pytest.raises(RunDirError, match=f"pid {first.pid} on host {socket.gethostname()}"):
            run_compare(tiny_cfg(tmp_path, train={"epochs": 1}), parse_methods("joint"), [1], name="f", matched=())
        assert not (tmp_path / "f" / "joint_seed1").exists()  # refused before training
    finally:
        go.set()
        first.join(60)
    assert first.exitcode == 0
    assert _table(tmp_path / "f")["seed"].tolist() == [0]
    base = tiny_cfg(tmp_path, train={"epochs": 1})
    with pytest.raises(RunDirError, match="--resume"):  # later, without --resume: refused (it would drop seed 0)
        run_compare(base, parse_methods("joint"), [1], name="f", matched=())
    with pytest.raises(ConfigError, match="train.lr"):  # other shared settings: refused with a diff
        run_compare(
            tiny_cfg(tmp_path, train={"epochs": 1, "lr": 0.5}),
            parse_methods("joint"),
            [1],
            name="f",
            matched=(),
            resume=True,
        )
    _, df, _ = run_compare(base, parse_methods("joint"), [1], name="f", matched=(), resume=True)
    assert df["seed"].tolist() == [0, 1] and _table(tmp_path / "f")["seed"].tolist() == [0, 1]


def test_compare_resume_with_overwrite_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="only one"):
        run_compare(tiny_cfg(tmp_path), parse_methods("joint"), [0], name="g", resume=True, overwrite=True)
    assert not (tmp_path / "g").exists()
