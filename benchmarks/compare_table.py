"""Markdown table of one or more ``mmcoop compare`` folders run on disjoint seeds of one protocol.

Concatenates their ``compare.csv`` rows (each seed's joint run is paired with the methods of the
same seed, as ``compare`` pairs them); a folder whose comparison was stopped before it wrote
``compare.csv`` gives the rows of its finished runs (``<label>_seed<s>/results.json``, the gain
against that folder's joint run of the same seed). A (method, seed) present in several folders
(joint, run by each) is kept once, after checking the runs agree. Then it summarises with
``compare``'s own functions: test accuracy and each modality alone (mean ± std over seeds), the
paired gain over joint at equal epochs (mean [95% paired-t interval]), sample visits and optimizer
steps relative to joint and the time per epoch relative to joint (each the median over seeds of
each seed's ratio; times from the compare runs' own clocks, so only as quiet as the machine was).

    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/compare_table.py runs/a runs/b
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mmcoop.experiment.compare import add_gain_summary, summarize
from mmcoop.experiment.stats import paired_gains
from mmcoop.utils.rundir import COMPARE_CSV, RESULTS_FILE, read_metrics

_RUN_DIR = re.compile(r"^(?P<label>[^@]+)_seed(?P<seed>\d+)$")  # equal-epoch runs only, not joint@<E>ep


def finished_rows(folder: Path) -> pd.DataFrame:
    """compare.csv-like rows of the finished equal-epoch runs of a comparison that has no compare.csv.

    Args:
        folder: a compare folder.

    Returns:
        One row per finished run (method, seed, role, test metrics, seconds_per_epoch as the median
        epoch, sample_visits, gain_epochs against the folder's joint run of the same seed in points).
    """
    rows = []
    for run in sorted(folder.iterdir()):
        match = _RUN_DIR.match(run.name)
        if match is None or not (run / RESULTS_FILE).is_file():
            continue
        res = json.loads((run / RESULTS_FILE).read_text())
        hist = read_metrics(run, strict=False)
        row = {"method": match["label"], "seed": int(match["seed"]), "role": "method"}
        row.update({k: v for k, v in res.items() if k.startswith("test_acc")})  # test_acc, test_acc_<modality>
        row["seconds_per_epoch"] = float(np.median([r["seconds"] for r in hist]))
        row.update({k: hist[-1].get(k, math.nan) for k in ("sample_visits", "optimizer_steps")})
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["method", "seed", "role", "test_acc", "seconds_per_epoch", "sample_visits"])
    df = pd.DataFrame(rows)
    joint = df[df["method"] == "joint"].set_index("seed")["test_acc"].to_dict()
    df["gain_epochs"] = [
        paired_gains({s: a}, joint)[s] if m != "joint" and s in joint else math.nan
        for m, s, a in zip(df["method"], df["seed"], df["test_acc"])
    ]
    return df


def read_runs(folders: list[Path]) -> pd.DataFrame:
    """The method rows of every folder, each (method, seed) once.

    Raises:
        SystemExit: two folders hold the same (method, seed) with different test accuracies.
    """
    frames = [pd.read_csv(f / COMPARE_CSV) if (f / COMPARE_CSV).is_file() else finished_rows(f) for f in folders]
    runs = pd.concat(frames, ignore_index=True)
    runs = runs[runs["role"] == "method"]
    spread = runs.groupby(["method", "seed"])["test_acc"].agg(lambda a: a.max() - a.min())
    if (spread > 1e-9).any():
        raise SystemExit(f"runs of one (method, seed) disagree across folders:\n{spread[spread > 1e-9]}")
    return runs.drop_duplicates(["method", "seed"], keep="first")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="compare folders (each with compare.csv)")
    args = ap.parse_args()
    runs = read_runs(args.folders)
    summary = add_gain_summary(summarize(runs), runs)
    mods = [c[len("test_acc_") :] for c in runs.columns if c.startswith("test_acc_")]
    joint = runs[runs["method"] == "joint"].set_index("seed")["seconds_per_epoch"]
    totals = {"visits": "sample_visits", "steps": "optimizer_steps"}
    joint_totals = {k: runs[runs["method"] == "joint"].set_index("seed")[c] for k, c in totals.items()}
    head = ["method", "seeds", "test acc", *[f"{m} alone" for m in mods], "visits ×joint", "steps ×joint"]
    head.append("gain (equal epochs)")
    head.append("s/epoch ×joint")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for _, r in summary.iterrows():
        grp = runs[runs["method"] == r["method"]]
        ratio = (grp.set_index("seed")["seconds_per_epoch"] / joint).dropna()
        cells = [
            str(r["method"]),
            str(int(r["seeds"])),
            f"{100 * r['test_acc_mean']:.1f} ± {100 * r['test_acc_std']:.1f}",
        ]
        cells += [f"{100 * r[f'test_acc_{m}_mean']:.1f}" for m in mods]
        for k, c in totals.items():
            cells.append(f"{(grp.set_index('seed')[c] / joint_totals[k]).dropna().median():.2f}")
        mean = r.get("gain_epochs_mean", math.nan)
        if isinstance(mean, float) and math.isfinite(mean):
            cells.append(f"{mean:+.1f} [{r['gain_epochs_low']:+.1f}, {r['gain_epochs_high']:+.1f}]")
        else:
            cells.append("")
        cells.append(f"{ratio.median():.2f}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
