"""``mmcoop.media.workers.run_pool``: workers die with their parent; Ctrl-C gives one message, no worker tracebacks.

Each test runs a real parent process (a subprocess) with spawned workers, finds its
descendants in ``/proc`` and checks that none survive (Linux only).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> set[int]:
    """Live descendants of ``pid`` (a zombie counts as gone)."""
    procs = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                procs[int(d.name)] = int(ppid)
    out, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in procs.items() if pp in frontier} - out
        out |= frontier
    return out


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(p)
    return out


def _wait(cond, timeout: float, step: float = 0.1) -> bool:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


PARENT = """
import sys
sys.path[:0] = [{src!r}, {tests!r}]
from _pool_jobs import touch_then_sleep
from mmcoop.media.workers import run_pool
if __name__ == "__main__":
    run_pool(touch_then_sleep, [{a!r}, {b!r}], 2, lambda *a: None)
"""


def _start(tmp_path: Path) -> tuple[subprocess.Popen, list[Path]]:
    marks = [tmp_path / "a.started", tmp_path / "b.started"]
    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(src=str(SRC), tests=str(TESTS), a=str(marks[0]), b=str(marks[1])))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    return proc, marks


def test_workers_and_resource_tracker_exit_after_kill_9_of_the_parent(tmp_path: Path) -> None:
    proc, marks = _start(tmp_path)
    try:
        assert _wait(lambda: all(m.exists() for m in marks), 120), "workers did not start"
        kids = descendants(proc.pid)
        assert len(kids) >= 3, kids  # two workers and the resource tracker
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert _wait(lambda: not _alive(kids), 10), f"still alive 10 s after kill -9: {_alive(kids)}"
    finally:
        for p in _alive(descendants(proc.pid)) | ({proc.pid} if proc.poll() is None else set()):
            os.kill(p, signal.SIGKILL)


def test_ctrl_c_during_data_prepare_start_up_prints_one_message_and_no_traceback(tmp_path: Path) -> None:
    import numpy as np

    sys.path.insert(0, str(TESTS))
    from _video import mux_video

    (tmp_path / "raw" / "train").mkdir(parents=True)
    for i in range(3):
        frames = np.full((4, 16, 16, 3), 60 * i, np.uint8)
        mux_video(
            tmp_path / "raw" / "train" / f"c{i}.mkv", frames, 4, np.zeros(8000, np.int16), 8000, "mpeg4", "pcm_s16le"
        )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [
        sys.executable,
        "-m",
        "mmcoop",
        "data",
        "prepare",
        "--dataset",
        "kinetics-sounds",
        "--videos",
        str(tmp_path / "raw"),
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "2",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        assert _wait(lambda: len(descendants(proc.pid)) >= 3, 120), "workers were not spawned"
        kids = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground process group
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (out, err)
        text = " ".join(out.split())  # rich wraps long lines
        assert text.count("interrupted") == 1 and "run the same command again to resume" in text, out
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert _wait(lambda: not _alive(kids), 10), f"still alive after Ctrl-C: {_alive(kids)}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_results_arrive_for_every_item() -> None:
    from mmcoop.media.workers import run_pool

    got: dict[int, int | None] = {}
    run_pool(abs, [-3, 4, -5], 2, lambda item, res, err: got.update({item: res}))
    assert got == {-3: 3, 4: 4, -5: 5}
