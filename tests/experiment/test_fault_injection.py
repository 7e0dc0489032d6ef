"""Fault injection: SIGKILL at random moments of training, resuming, valuation and report writing.

Each victim is a forked process (the parent has imported and warmed everything, so a
child spends its life in mmcoop's own work, not in imports) killed with ``kill -9``
after a random delay drawn across the uninterrupted duration. After every kill:

- every file in the run directory is complete (parses/loads; only the last line of
  ``metrics.jsonl`` may be cut, and it is then an uncommitted epoch);
- every file agrees with the commit record ``last.pt``, except files written for the
  one epoch after it (:func:`mmcoop.experiment.verify_run_dir` with ``allow_pending``);
- ``--resume`` (itself killed again at random) finally reproduces the uninterrupted
  run exactly: metrics, results, best weights, and a directory with nothing pending.

The random delays are seeded, but where each kill lands depends on the machine's
speed, so the test repeats until enough kills hit a live process (>= 22 in all:
>= 16 in training/resuming, >= 3 in valuation, >= 3 in report writing).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
import torch
import yaml

from _runs import TINY_ARGS, strip_times, tiny_cfg
from mmcoop.cli.app import app
from mmcoop.experiment import (
    RUN_MARKER,
    is_marked_run_dir,
    read_metrics,
    resume_experiment,
    run_experiment,
    verify_run_dir,
)
from mmcoop.report import write_report

pytestmark = pytest.mark.usefixtures("one_thread")
CTX = mp.get_context("fork")


def _cfg(out: Path, name: str):
    # sample-level re-sampling values the training set every epoch from epoch 1: valuation files are written too
    return tiny_cfg(out, name, method="sample-level", method_options={"warmup": 1}, train={"epochs": 3})


def _child(work: Callable[[], object]) -> None:
    try:
        warnings.simplefilter("ignore")
        work()
    except BaseException:  # noqa: BLE001 - report and fail the child
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


@pytest.fixture
def fork_safe(monkeypatch):
    """No helper threads that hold locks a forked child would inherit locked (tqdm's monitor thread)."""
    import tqdm

    if tqdm.tqdm.monitor is not None:  # started by an earlier test's progress bar
        tqdm.tqdm.monitor.exit()
        tqdm.tqdm.monitor = None
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)


def _run(work: Callable[[], object], kill_after: float | None) -> bool:
    """Run ``work`` in a forked child; SIGKILL it after ``kill_after`` s. Returns whether a live child was killed."""
    p = CTX.Process(target=_child, args=(work,))
    p.start()
    killed = False
    if kill_after is not None:
        p.join(kill_after)
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
            killed = True
    p.join(120)
    if p.is_alive():  # never leave a stuck child behind
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        pytest.fail("a child did not finish within 120 s")
    assert killed or p.exitcode == 0, f"the child failed (exit {p.exitcode}); its traceback is in the captured output"
    return killed


def _timed(work: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    _run(work, None)
    return time.perf_counter() - t0


def _complete(run_dir: Path, seen: dict[str, int]) -> None:
    """Every file present can be read whole and agrees with the commit; ``seen`` counts the states met."""
    if not run_dir.exists():
        seen["no directory yet"] += 1
        return
    assert (run_dir / RUN_MARKER).is_file() and (run_dir / "config.yaml").is_file()  # the directory is born complete
    yaml.safe_load((run_dir / "config.yaml").read_text())
    json.loads((run_dir / RUN_MARKER).read_text())
    for name in ("dataset.json", "results.json"):
        if (run_dir / name).exists():
            json.loads((run_dir / name).read_text())
    for ckpt in (run_dir / "checkpoints").glob("*.pt"):
        torch.load(ckpt, weights_only=True)
    for table in (run_dir / "valuation").glob("*.parquet"):
        pd.read_parquet(table)
    read_metrics(run_dir)  # tolerates only a cut last line
    problems = verify_run_dir(run_dir, allow_pending=True)
    assert problems == [], problems
    if not (run_dir / "checkpoints" / "last.pt").exists():
        seen["nothing committed"] += 1
    elif verify_run_dir(run_dir, allow_pending=False):
        seen["files pending after the commit"] += 1
    else:
        seen["clean"] += 1


def _same_as(run_dir: Path, ref: Path) -> None:
    assert strip_times(read_metrics(run_dir, strict=True)) == strip_times(read_metrics(ref, strict=True))
    a, b = (json.loads((d / "results.json").read_text()) for d in (run_dir, ref))
    a.pop("seconds_per_epoch"), b.pop("seconds_per_epoch")
    assert a == b
    wa, wb = (torch.load(d / "checkpoints" / "best.pt", weights_only=False) for d in (run_dir, ref))
    assert wa["epoch"] == wb["epoch"] and all(torch.equal(wa["model"][k], wb["model"][k]) for k in wb["model"])
    for table in (ref / "valuation").glob("epoch_*.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "valuation" / table.name), pd.read_parquet(table))
    assert verify_run_dir(run_dir, allow_pending=False) == []
    assert not list(run_dir.rglob("*.tmp"))


def test_kill_9_at_random_moments(tmp_path, fork_safe):
    rng = random.Random(9)
    # warm every lazy import and first-call cost in the parent, so children start hot
    warm = run_experiment(_cfg(tmp_path / "warm", "w"))
    app(["value", str(warm.run_dir)], standalone_mode=False)
    write_report(warm.run_dir)

    ref_cfg = _cfg(tmp_path, "ref")
    span = _timed(lambda: run_experiment(ref_cfg))
    ref = ref_cfg.run_dir
    kills = {"train": 0, "resume": 0, "value": 0, "report": 0}
    seen = dict.fromkeys(["no directory yet", "nothing committed", "files pending after the commit", "clean"], 0)

    for trial in range(40):  # until >= 16 kills hit training or resuming (most trials take 2-3)
        if kills["train"] + kills["resume"] >= 16:
            break
        cfg = _cfg(tmp_path, f"t{trial}")
        kills["train"] += _run(lambda: run_experiment(cfg), rng.uniform(0.0, span))
        _complete(cfg.run_dir, seen)
        for attempt in range(20):  # resume (or start again, if killed before the directory appeared) until done
            if cfg.run_dir.exists():
                work = lambda: resume_experiment(cfg.run_dir)  # noqa: E731
            else:
                work = lambda: run_experiment(cfg)  # noqa: E731
            delay = rng.uniform(0.0, span) if attempt < 2 else None  # killed again, at most twice
            if not _run(work, delay):
                break
            kills["resume"] += 1
            _complete(cfg.run_dir, seen)
        _same_as(cfg.run_dir, ref)
        # a kill while the directory was being assembled leaves a marked temporary folder; the next start removes it
        assert not [p for p in tmp_path.glob(f".t{trial}.*.mmcoop-new") if is_marked_run_dir(p)]

    # valuation and report writing: the output is absent or complete after a kill, then written in full
    value_span = _timed(lambda: app(["value", str(ref)], standalone_mode=False))
    full_table = pd.read_parquet(ref / "valuation" / "test.parquet")
    for _ in range(30):
        if kills["value"] >= 3:
            break
        (ref / "valuation" / "test.parquet").unlink(missing_ok=True)
        kills["value"] += _run(lambda: app(["value", str(ref)], standalone_mode=False), rng.uniform(0, value_span))
        if (ref / "valuation" / "test.parquet").exists():
            pd.testing.assert_frame_equal(pd.read_parquet(ref / "valuation" / "test.parquet"), full_table)
    report_span = _timed(lambda: write_report(ref))
    full_report = (ref / "report.html").read_text()
    for _ in range(30):
        if kills["report"] >= 3:
            break
        (ref / "report.html").unlink(missing_ok=True)
        kills["report"] += _run(lambda: write_report(ref), rng.uniform(0, report_span))
        if (ref / "report.html").exists():
            assert (ref / "report.html").read_text() == full_report
    _run(lambda: app(["value", str(ref)], standalone_mode=False), None)
    pd.testing.assert_frame_equal(pd.read_parquet(ref / "valuation" / "test.parquet"), full_table)
    assert verify_run_dir(ref, allow_pending=False) == []

    print("kills", kills, "states after a kill", seen)
    assert kills["train"] + kills["resume"] >= 16 and kills["value"] >= 3 and kills["report"] >= 3, kills
    assert sum(kills.values()) >= 22, kills


# -- every class of fault of issue 18, with counts ---------------------------------------------------
def _tree(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(folder.rglob("*"))
    }


def test_every_fault_class_keeps_user_files_and_resumes_exactly(tmp_path, monkeypatch):
    """User files inside run folders, failed resumes of foreign folders, crafted checkpoints, a
    comparison killed at exact points (after a metrics line, before a commit) and stale valuations.
    Prints the counts (kills, cases, all resumed identically) quoted in BENCHMARKS.md."""
    from _faults import fork_safe_tqdm, kill_at_call, run_forked
    from typer.testing import CliRunner

    import mmcoop.experiment.run as run_mod
    from mmcoop.errors import RunDirError
    from mmcoop.utils.runfiles import stale_derived

    fork_safe_tqdm(monkeypatch)
    runner = CliRunner()
    counts = dict.fromkeys(
        [
            "user files kept",
            "failed resumes left as found",
            "crafted checkpoints refused",
            "compare kills",
            "compare kills resumed identically",
            "stale files flagged",
            "failed commands left nothing",
            "damaged checkpoints worked around",
        ],
        0,
    )
    decoy = b"the user's own, no backup"

    # 1. --overwrite never deletes what mmcoop did not write: a decoy in every kind of place
    run = run_experiment(tiny_cfg(tmp_path / "own", "r", train={"epochs": 1})).run_dir
    places = [
        "NOTES.md",
        "analysis/fig.tex",
        "checkpoints/mine.pt",
        "valuation/mine.parquet",
        "plots/notes.txt",
        ".notes.tmp",
        "link",
        "metrics.csv",  # issue 23: a user's, in a run that never used the csv logger
        "valuation/test_lowest.csv",  # named like value --top's, but without its record
    ]
    for place in places:
        target = run / place
        target.parent.mkdir(parents=True, exist_ok=True)
        if place == "link":
            (tmp_path / "elsewhere.txt").write_bytes(decoy)
            target.symlink_to(tmp_path / "elsewhere.txt")
        else:
            target.write_bytes(decoy)
        before = _tree(run)
        with pytest.raises(RunDirError, match="did not write"):
            run_experiment(tiny_cfg(tmp_path / "own", "r", train={"epochs": 1}), overwrite=True)
        after = _tree(run)
        before.pop(".mmcoop.lock", None), after.pop(".mmcoop.lock", None)
        assert after == before, place
        target.unlink()
        counts["user files kept"] += 1
    assert (tmp_path / "elsewhere.txt").read_bytes() == decoy

    # 2. a failed resume leaves a folder exactly as it found it
    foreign = {
        "bad config": {"config.yaml": b"lr: 0.1\n", "metrics.jsonl": b'{"loss":1}\n', ".notes.tmp": b"t"},
        "garbage checkpoint": {"config.yaml": b"dataset: synthetic\n", "checkpoints/last.pt": b"not a checkpoint"},
        "no run": {"thesis.tex": decoy, ".x.mmcoop.tmp": b"looks like mmcoop's, but no marker"},
        # issue 23: a valid config and the user's metrics, never a run (no marker, no checkpoint)
        "never a run": {"config.yaml": (run / "config.yaml").read_bytes(), "metrics.jsonl": b'{"epoch": 1}\n'},
    }
    for label, files in foreign.items():
        folder = tmp_path / "foreign" / label.replace(" ", "_")
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        before = _tree(folder)
        res = runner.invoke(app, ["train", "--resume", str(folder)])
        assert res.exit_code == 2 and "Traceback" not in res.output, (label, res.output)
        assert _tree(folder) == before, label
        counts["failed resumes left as found"] += 1
    refused = runner.invoke(app, ["train", "--resume", str(run), "--seed", "5"])  # a refused config change
    assert refused.exit_code == 2
    counts["failed resumes left as found"] += 1

    # 3. crafted checkpoints are refused, never unpickled
    flag = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {flag}",))

    for which in ("last", "best"):
        victim = run_experiment(tiny_cfg(tmp_path / "crafted", which, train={"epochs": 1})).run_dir
        path = victim / "checkpoints" / f"{which}.pt"
        state = torch.load(path, weights_only=True)
        state["x"] = Payload()
        torch.save(state, path)
        commands = [["value", str(victim), "--checkpoint", which]] + (
            [["train", "--resume", str(victim)]] if which == "last" else []
        )
        for cmd in commands:
            res = runner.invoke(app, cmd)
            assert res.exit_code == 2 and "--trust-run" in " ".join(res.output.split()), res.output
            counts["crafted checkpoints refused"] += 1
    assert not flag.exists()

    # 4. a comparison killed at exact points resumes to the uninterrupted result
    args = [*TINY_ARGS_COMPARE, "--out-dir"]
    ref = runner.invoke(app, ["compare", *args, str(tmp_path / "cmp"), "--name", "ref"])
    assert ref.exit_code == 0, ref.output
    drop = ["seconds_per_epoch", "run_dir"]
    want = pd.read_csv(tmp_path / "cmp" / "ref" / "compare.csv").drop(columns=drop)
    points = [
        ("append_metrics", 1, True),
        ("append_metrics", 4, True),
        ("atomic_torch_save", 3, False),
        ("atomic_torch_save", 8, False),
        ("append_metrics", 7, True),
        ("atomic_write_text", 4, False),
    ]
    for i, (fn, n, after) in enumerate(points):
        name = f"k{i}"

        def work(fn=fn, n=n, after=after, name=name):
            kill_at_call(run_mod, fn, n, after)
            app(["compare", *args, str(tmp_path / "cmp"), "--name", name], standalone_mode=False)

        counts["compare kills"] += run_forked(work)
        res = runner.invoke(app, ["compare", *args, str(tmp_path / "cmp"), "--name", name, "--resume"])
        assert res.exit_code == 0, res.output
        got = pd.read_csv(tmp_path / "cmp" / name / "compare.csv").drop(columns=drop)
        pd.testing.assert_frame_equal(got, want)
        for r in (tmp_path / "cmp" / name).iterdir():
            if (r / "config.yaml").is_file():
                assert verify_run_dir(r, allow_pending=False) == [], r
                assert strip_times(read_metrics(r)) == strip_times(read_metrics(tmp_path / "cmp" / "ref" / r.name))
        counts["compare kills resumed identically"] += 1

    # 5. a valuation made before a resume that changed best.pt is flagged
    cfg = tiny_cfg(
        tmp_path / "stale",
        "s",
        dataset_options={"sizes": [48, 24, 24], "dim": 4, "noise": [2.0, 3.0]},
        train={"epochs": 2, "lr": 0.003},
    )
    run_experiment(cfg)
    assert runner.invoke(app, ["value", str(cfg.run_dir)]).exit_code == 0
    with pytest.warns(UserWarning, match="is stale"):
        run_experiment(
            tiny_cfg(
                tmp_path / "stale",
                "s",
                dataset_options={"sizes": [48, 24, 24], "dim": 4, "noise": [2.0, 3.0]},
                train={"epochs": 3, "lr": 0.003},
            ),
            resume=True,
        )
    counts["stale files flagged"] += len(stale_derived(cfg.run_dir))

    # 6. issue 23: a report failing on a full disk leaves nothing new; a damaged last.pt keeps best.pt usable
    import mmcoop.utils.io as io_mod
    from _faults import FullDisk

    before = _tree(run)
    with monkeypatch.context() as m:
        m.setattr(io_mod, "os", FullDisk(limit=1 << 16))  # plots fit, the page embedding them does not
        res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 2 and "disk is full" in " ".join(res.output.split()), res.output
    assert _tree(run) == before  # no plots/*.png without a report.html, no temporary file
    counts["failed commands left nothing"] += 1
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:64])
    res = runner.invoke(app, ["value", str(run), "--checkpoint", "best"])
    assert res.exit_code == 0, res.output
    counts["damaged checkpoints worked around"] += 1

    print("fault classes", counts)
    assert counts["compare kills"] == len(points) == counts["compare kills resumed identically"], counts
    assert counts["stale files flagged"] == 1 and counts["user files kept"] == len(places), counts


TINY_ARGS_COMPARE = [
    *TINY_ARGS,
    "--methods",
    "joint,modality-level",
    "--seeds",
    "0,1",
    "--epochs",
    "2",
    "--set",
    "method_options.warmup=1",
]
