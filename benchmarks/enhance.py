"""Enhancement benchmark: joint vs sample-level vs modality-level (both executions), over seeds.

Prints, from ONE run on the same data and machine:
  * test accuracy / macro-F1 / each modality alone, mean ± std over seeds, per method;
  * seconds per epoch after warm-up (training + valuation) of weighted vs duplicate vs joint;
  * valuation seconds per epoch of modality-level vs sample-level (goal <= 0.3x).

Usage:
    python benchmarks/enhance.py --dataset avmnist --strength 0.8 --epochs 15 --seeds 0,1,2
    python benchmarks/enhance.py --dataset mfeat --epochs 40 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, machine  # noqa: E402

from mmcoop.experiment import RunConfig, parse_methods, parse_seeds, read_metrics, run_compare  # noqa: E402

METHODS = "joint,sample-level:duplicate,sample-level:weighted,modality-level:duplicate,modality-level:weighted"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="avmnist")
    ap.add_argument("--strength", type=float, default=None, help="debiasing strength (omit: no debiasing)")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default=METHODS)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--step-size", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out-dir", default="runs/bench")
    args = ap.parse_args()

    base = RunConfig.from_dict(
        {
            "dataset": args.dataset,
            "out_dir": args.out_dir,
            "debiased": None if args.strength is None else {"strength": args.strength},
            "train": {
                "epochs": args.epochs,
                "lr": args.lr,
                "step_size": args.step_size,
                "device": args.device,
                "progress": False,
            },
        }
    )
    specs = parse_methods(args.methods)
    label = args.dataset + (f"-debiased{args.strength:g}" if args.strength is not None else "")
    cdir, df, summary = run_compare(
        base,
        specs,
        parse_seeds(args.seeds),
        name=f"enhance_{label}",
        overwrite=True,
        shared_options={"warmup": args.warmup},
        on_run=lambda r: print(
            f"  {r['method']:<26} seed {r['seed']}: test acc {100 * r['test_acc']:.2f}%", flush=True
        ),
    )

    # accuracy table
    mods = [c[len("test_acc_") :] for c in df.columns if c.startswith("test_acc_")]
    print(f"\n### {label}: test metrics (%), mean ± std over seeds {args.seeds}, {args.epochs} epochs\n")
    cols = ["acc", "f1"] + [f"acc_{m}" for m in mods]
    print("| method | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for _, r in summary.iterrows():
        cells = [f"{100 * r[f'test_{c}_mean']:.2f} ± {100 * r[f'test_{c}_std']:.2f}" for c in cols]
        print(f"| {r['method']} | " + " | ".join(cells) + " |")

    # timing after warm-up, from metrics.jsonl of every run
    rows = []
    for _, r in df.iterrows():
        for rec in read_metrics(r["run_dir"]):
            if rec["epoch"] <= args.warmup:
                continue
            rows.append(
                {
                    "method": r["method"],
                    "train_s": rec["time_train_s"],
                    "valuation_s": rec.get("time_valuation_s", 0.0) or 0.0,
                    "units": rec.get("train_size", rec["train_units"]),
                }
            )
    t = pd.DataFrame(rows).groupby("method", sort=False).mean()
    t["epoch_s"] = t["train_s"] + t["valuation_s"]
    joint = t.loc["joint", "epoch_s"] if "joint" in t.index else float("nan")
    print(f"\n### {label}: seconds per epoch after warm-up (mean over epochs > {args.warmup} and seeds)\n")
    print("| method | training units | train s | valuation s | epoch s | x joint |")
    print("|---|---|---|---|---|---|")
    for m, r in t.iterrows():
        print(
            f"| {m} | {r['units']:.0f} | {r['train_s']:.2f} | {r['valuation_s']:.3f} | {r['epoch_s']:.2f} | {r['epoch_s'] / joint:.2f} |"
        )
    for ex in ("sample-level", "modality-level"):
        w, d = f"{ex}:weighted", f"{ex}:duplicate"
        if w in t.index:
            ratio = t.loc[w, "epoch_s"] / joint
            print(f"{w} / joint = {ratio:.2f} (goal <= 1.3: {'PASS' if ratio <= 1.3 else 'MISS'})")
        if w in t.index and d in t.index:
            print(f"{d} / {w} = {t.loc[d, 'epoch_s'] / t.loc[w, 'epoch_s']:.2f}")
    sl = [m for m in t.index if m.startswith("sample-level")]
    ml = [m for m in t.index if m.startswith("modality-level")]
    if sl and ml:
        ratio = t.loc[ml, "valuation_s"].mean() / t.loc[sl, "valuation_s"].mean()
        print(
            f"valuation cost modality-level / sample-level = {ratio:.3f} (goal <= 0.3: {'PASS' if ratio <= 0.3 else 'MISS'})"
        )
    print(f"\nmachine: {machine(args.device)}\ncommand: {command_line()}\ncompare dir: {cdir}")


if __name__ == "__main__":
    main()
