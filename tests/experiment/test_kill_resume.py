"""A run killed with SIGKILL mid-training and resumed ends exactly like an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

from mmcoop.experiment import read_metrics

ARGS = [
    "--dataset",
    "synthetic",
    "--epochs",
    "6",
    "--set",
    "train.progress=false",
    "--set",
    "dataset_options.sizes=[6000,300,300]",
    "--set",
    "dataset_options.dim=32",
]


def _cli(*args, **kw):
    return [sys.executable, "-m", "mmcoop", "train", *ARGS, *args]


def _strip(records):
    return [{k: v for k, v in r.items() if "time" not in k and k != "seconds"} for r in records]


def test_killed_run_resumes_to_identical_results(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    full = subprocess.run(
        _cli("--out-dir", str(tmp_path), "--name", "full"), capture_output=True, text=True, timeout=300, env=env
    )
    assert full.returncode == 0, full.stderr[-2000:]

    proc = subprocess.Popen(
        _cli("--out-dir", str(tmp_path), "--name", "killed"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make epochs longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(read_metrics(tmp_path / "killed"))
    assert 2 <= done < 6
    assert not (tmp_path / "killed" / "results.json").exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "mmcoop", "train", "--resume", str(tmp_path / "killed")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _strip(read_metrics(tmp_path / "killed")) == _strip(read_metrics(tmp_path / "full"))
    a = json.loads((tmp_path / "full" / "results.json").read_text())
    b = json.loads((tmp_path / "killed" / "results.json").read_text())
    a.pop("seconds_per_epoch"), b.pop("seconds_per_epoch")
    assert a == b
