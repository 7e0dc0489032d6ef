"""Markdown table of one or more ``mmcoop compare`` folders run on disjoint seeds of one protocol.

Concatenates their ``compare.csv`` rows (each seed's joint run is paired with the methods of the
same seed, as ``compare`` pairs them), then summarises with ``compare``'s own functions: test
accuracy and each modality alone (mean ± std over seeds), the paired gain over joint at equal
epochs (mean [95% paired-t interval]) and the time per epoch relative to joint (median over seeds
of each seed's ratio; the compare runs' own clocks, so only as quiet as the machine was).

    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/compare_table.py runs/a runs/b
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from mmcoop.experiment.compare import add_gain_summary, summarize
from mmcoop.utils.rundir import COMPARE_CSV


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="compare folders (each with compare.csv)")
    args = ap.parse_args()
    runs = pd.concat([pd.read_csv(f / COMPARE_CSV) for f in args.folders], ignore_index=True)
    runs = runs[runs["role"] == "method"]
    summary = add_gain_summary(summarize(runs), runs)
    mods = [c[len("test_acc_") :] for c in runs.columns if c.startswith("test_acc_")]
    joint = runs[runs["method"] == "joint"].set_index("seed")["seconds_per_epoch"]
    head = ["method", "seeds", "test acc", *[f"{m} alone" for m in mods], "gain (equal epochs)", "s/epoch ×joint"]
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
        mean = r.get("gain_epochs_mean", math.nan)
        if isinstance(mean, float) and math.isfinite(mean):
            cells.append(f"{mean:+.1f} [{r['gain_epochs_low']:+.1f}, {r['gain_epochs_high']:+.1f}]")
        else:
            cells.append("")
        cells.append(f"{ratio.median():.2f}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
