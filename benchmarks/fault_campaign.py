"""Fault campaign: a comparison of every method over five seeds, killed with SIGKILL at random
moments and continued with ``mmcoop compare --resume`` until it finishes; the result must equal
an uninterrupted comparison (compare.csv, every run's metrics, a consistent run directory).

Usage (from the project root, with the package importable)::

    python benchmarks/fault_campaign.py                       # all methods x 5 seeds, 12 kills
    python benchmarks/fault_campaign.py hostile               # issue 23's hostile inputs (block at the end)
    python benchmarks/fault_campaign.py --kills 4 --seeds 0,1 --methods joint,sample-level
    python benchmarks/fault_campaign.py --cases --kills 0     # only the hostile cases of issue 23

With ``--cases`` it also runs the hostile cases of issue 23 (``_fault_cases.py``), each a real
``mmcoop`` process in a fresh empty folder: resumes of folders that were never runs, user files
inside ``wandb/`` run folders and a user's ``metrics.csv`` against ``--overwrite``/``--resume``, a
report on a full disk, a run whose ``last.pt`` names code its ``config.yaml`` hides, the ``--top``
CSV, a damaged ``last.pt`` or ``best.pt``; it prints how many passed.

Each attempt is a real ``python -m mmcoop compare`` process killed with ``kill -9`` after a
random delay drawn over the uninterrupted duration (seeded); a kill counts when it hit a live
process. Prints the counts and whether every run resumed identically. Data: the built-in
``synthetic`` dataset (tiny, deterministic), so the campaign measures the machinery, not models.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _args(methods: str, seeds: str, epochs: int) -> list[str]:
    return [
        "--dataset",
        "synthetic",
        "--set",
        "dataset_options.sizes=[96,48,48]",
        "--set",
        "dataset_options.dim=4",
        "--set",
        "model.dim=8",
        "--set",
        "train.batch_size=16",
        "--set",
        "train.progress=false",
        "--device",
        "cpu",
        "--methods",
        methods,
        "--seeds",
        seeds,
        "--epochs",
        str(epochs),
        "--set",
        "method_options.warmup=1",
    ]


def _strip(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if "time" not in k and k != "seconds"} for r in records]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="all")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--kills", type=int, default=12, help="kills that must hit a live compare")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument(
        "--max-delay",
        type=float,
        default=None,
        help="kill delays are drawn from [0, MAX] s (default: the uninterrupted duration)",
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--reuse-ref",
        type=float,
        default=None,
        metavar="SECONDS",
        help="reuse <out>/ref from an earlier campaign, whose uninterrupted run took SECONDS",
    )
    ap.add_argument("--cases", action="store_true", help="also run the hostile cases of issue 23")
    a = ap.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="mmcoop-faults-"))
    cases = _run_cases(out / "cases") if a.cases else None
    if a.kills == 0:
        return 0 if cases is None or all(ok for ok, _ in cases.values()) else 1
    env = dict(
        os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    base = [sys.executable, "-m", "mmcoop", "compare", *_args(a.methods, a.seeds, a.epochs), "--out-dir", str(out)]
    rng = random.Random(a.seed)

    if a.reuse_ref is not None and (out / "ref" / "compare.csv").is_file():
        span = a.reuse_ref
    else:
        t0 = time.perf_counter()
        ref = subprocess.run([*base, "--name", "ref"], env=env, capture_output=True, text=True)
        span = time.perf_counter() - t0
        if ref.returncode != 0:
            print(ref.stdout[-3000:], ref.stderr[-3000:])
            return 1
    print(f"uninterrupted comparison: {span:.0f} s", flush=True)

    if (out / "killed").exists():
        print(f"{out / 'killed'} exists: remove it, or pass another --out", file=sys.stderr)
        return 2
    kills = attempts = 0
    t1 = time.perf_counter()
    while True:
        attempts += 1
        cmd = [*base, "--name", "killed"] + (["--resume"] if attempts > 1 else [])
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kills < a.kills:
            try:
                proc.wait(rng.uniform(0.0, a.max_delay or span))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                done = len(list((out / "killed").glob("*/results.json")))
                print(f"attempt {attempts}: killed with {done} runs finished", flush=True)
                continue
        _, err = proc.communicate()
        if proc.returncode == 0:
            break
        if attempts > a.kills * 3 + 5:
            print("the comparison did not finish:", err[-3000:])
            return 1
    killed_wall = time.perf_counter() - t1

    from mmcoop.experiment import read_metrics, verify_run_dir

    drop = ["seconds_per_epoch", "run_dir"]
    tab_ref = pd.read_csv(out / "ref" / "compare.csv").drop(columns=drop)
    tab = pd.read_csv(out / "killed" / "compare.csv").drop(columns=drop)
    same_table = tab.equals(tab_ref)
    runs = sorted(p.name for p in (out / "ref").iterdir() if (p / "config.yaml").is_file())
    differ = [r for r in runs if _strip(read_metrics(out / "killed" / r)) != _strip(read_metrics(out / "ref" / r))]
    broken = [r for r in runs if verify_run_dir(out / "killed" / r, allow_pending=False)]
    result = {
        "methods": a.methods,
        "seeds": a.seeds,
        "epochs": a.epochs,
        "runs": len(runs),
        "kills": kills,
        "attempts": attempts,
        "uninterrupted_s": round(span, 1),
        "killed_and_resumed_s": round(killed_wall, 1),
        "compare_csv_identical": bool(same_table),
        "runs_with_different_metrics": differ,
        "inconsistent_run_dirs": broken,
    }
    print(json.dumps(result, indent=2))
    cases_ok = cases is None or all(ok for ok, _ in cases.values())
    return 0 if same_table and not differ and not broken and cases_ok else 1


def _run_cases(out: Path) -> dict[str, tuple[bool, str]]:
    """The hostile cases of issue 23, each in a fresh folder under ``out``; prints one line per case."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _fault_cases import run_cases

    t0 = time.perf_counter()
    results = run_cases(out)
    for name, (ok, detail) in results.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + ("" if ok else f"\n      {detail}"), flush=True)
    passed = sum(ok for ok, _ in results.values())
    print(f"hostile cases: {passed}/{len(results)} passed in {time.perf_counter() - t0:.0f} s", flush=True)
    return results


# --- issue 23 block (names, plugins, values; kept apart from the kill campaign above) -----------------
# `python benchmarks/fault_campaign.py hostile [--out DIR] [--src DIR]` runs the hostile-input classes
# of benchmarks/hostile_inputs.py (sample ids as markup/HTML, broken plugins, NaN/inf and stray labels,
# console output) instead of the kills.
def hostile(argv: list[str]) -> int:
    """The hostile-input campaign (`hostile_inputs`), each case a real ``mmcoop`` process."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hostile_inputs import main as hostile_main

    return hostile_main(argv)


# --- end of the issue 23 block ------------------------------------------------------------------------


if __name__ == "__main__":
    sys.exit(hostile(sys.argv[2:]) if sys.argv[1:2] == ["hostile"] else main())
