"""Paired accuracy of ``valuation: online`` against the paper's pass, from a ``mmcoop compare`` folder.

    mmcoop compare --dataset mfeat --debiased-strength 0.8 --epochs 30 --seeds 0,1,2,3,4 --matched none \\
        --methods joint,sample-level:weighted,sample-level:weighted+online,sample-level:duplicate,sample-level:duplicate+online \\
        --set method_options.warmup=5 --name online_mfeat_debiased
    .venv/bin/python benchmarks/online_accuracy.py runs/online_mfeat_debiased

For every method label ``X`` with a partner ``X+online`` in ``compare.csv``: per seed, the
test accuracy of ``X+online`` minus that of ``X`` (same seed: same data, initialisation and
degradation draw), their mean and 95% paired-t interval (:func:`mmcoop.experiment.stats.summarize_gains`),
beside each one's gain over joint as ``mmcoop compare`` reports it. Only seeds where both
runs finished are paired; the table says how many. Without ``compare.csv`` (a comparison
still running or stopped) the finished runs' ``results.json`` (``<label>_seed<k>/``) are read.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

from mmcoop.experiment.stats import paired_gains, summarize_gains


def fmt(s) -> str:  # GainSummary -> "+0.3 [-0.2, +0.8]"
    return f"{s.mean:+.2f} [{s.low:+.2f}, {s.high:+.2f}]" if s.n > 1 else f"{s.mean:+.2f} (n = 1)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("compare_dir")
    args = ap.parse_args()
    cdir = Path(args.compare_dir)
    acc: dict[str, dict[int, float]] = {}
    if (cdir / "compare.csv").is_file():
        df = pd.read_csv(cdir / "compare.csv")
        df = df[df["role"] == "method"]
        acc = {m: dict(zip(g["seed"], g["test_acc"])) for m, g in df.groupby("method")}
    else:  # finished runs of an unfinished comparison; labels as compare names them (':' -> '-')
        for res in sorted(cdir.glob("*_seed*/results.json")):
            m = re.fullmatch(r"(.+)_seed(\d+)", res.parent.name)
            if m and "@" not in m.group(1):
                label = (
                    m.group(1).replace("sample-level-", "sample-level:").replace("modality-level-", "modality-level:")
                )
                acc.setdefault(label, {})[int(m.group(2))] = json.loads(res.read_text())["test_acc"]
        print(f"(no compare.csv: read {sum(map(len, acc.values()))} finished runs)\n")
    pairs = [(m, f"{m}+online") for m in sorted(acc) if f"{m}+online" in acc]
    if not pairs:
        sys.exit(f"no 'X' and 'X+online' pair of methods in {args.compare_dir}/compare.csv")
    print(
        "| pass | online | seeds | test acc pass | test acc online | online - pass (points) | "
        "pass - joint | online - joint |"
    )
    print("|---|---|---:|---:|---:|---|---|---|")
    for base, online in pairs:
        seeds = sorted(set(acc[base]) & set(acc[online]))
        diff = paired_gains({s: acc[online][s] for s in seeds}, {s: acc[base][s] for s in seeds})
        joint = acc.get("joint", {})
        js = [s for s in seeds if s in joint]
        g_base = paired_gains({s: acc[base][s] for s in js}, {s: joint[s] for s in js})
        g_on = paired_gains({s: acc[online][s] for s in js}, {s: joint[s] for s in js})

        def mean(d: dict[int, float], seeds: list[int] = seeds) -> float:
            return 100 * sum(d[s] for s in seeds) / len(seeds)

        print(
            f"| {base} | {online} | {len(seeds)} | {mean(acc[base]):.2f} | {mean(acc[online]):.2f} | "
            f"{fmt(summarize_gains(list(diff.values())))} | {fmt(summarize_gains(list(g_base.values())))} | "
            f"{fmt(summarize_gains(list(g_on.values())))} |"
        )


if __name__ == "__main__":
    main()
