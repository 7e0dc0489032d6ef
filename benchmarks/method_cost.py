"""Per-epoch cost of every registered method relative to joint training, in one process.

    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/method_cost.py [--dataset avmnist] [--epochs 8]

Every method trains the same model on the same data (debiased avmnist, strength 0.8,
seed 0) for ``--epochs`` epochs with ``warmup`` 2 (so the median epoch of the re-sampling
methods includes their per-epoch valuation); the re-sampling methods run in both
executions. The allocator is tuned as the ``mmcoop`` command does (:func:`mmcoop.utils.memory.tune_malloc`:
without it, runs in one process differed by up to 1.6x per epoch for the same work) and a
discarded warm-up run comes first. Reported: the median
seconds per epoch (training, the method's hooks incl. valuation, validation) and its ratio
to joint's, training units and optimizer steps of the last epoch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, machine  # noqa: E402

from mmcoop.experiment import RunConfig, run_experiment  # noqa: E402
from mmcoop.methods import METHODS  # noqa: E402
from mmcoop.utils.memory import tune_malloc  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="avmnist")
    ap.add_argument("--strength", type=float, default=0.8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    tune_malloc()  # as the mmcoop command does: without it run-to-run allocator effects reach 1.6x
    specs = []
    for name in sorted(METHODS.names(), key=lambda n: (n != "joint", n)):
        if name == "unimodal":
            continue
        if METHODS.get(name).variant_option == "execution":
            specs += [(f"{name}:duplicate", name, {"execution": "duplicate"}),
                      (f"{name}:weighted", name, {"execution": "weighted"})]
        else:
            specs.append((name, name, {}))
    out = tempfile.mkdtemp(prefix="mmcoop-cost-")

    def run(label: str, name: str, opts: dict, epochs: int) -> list[dict]:
        if "warmup" in {f for f in METHODS.get(name).Options.__dataclass_fields__}:
            opts = {**opts, "warmup": 2}
        cfg = RunConfig.from_dict({
            "dataset": args.dataset, "debiased": {"strength": args.strength} if args.strength else None,
            "method": name, "method_options": opts, "name": label.replace(":", "-"), "out_dir": out,
            "train": {"epochs": epochs, "progress": False, "device": args.device},
        })
        return run_experiment(cfg).history

    run("warm-up", "joint", {}, 2)  # discarded
    rows = []
    for label, name, opts in specs:
        hist = run(label, name, opts, args.epochs)
        rows.append((label, statistics.median(h["seconds"] for h in hist), hist[-1]["train_units"], hist[-1]["epoch_steps"]))
        print(f"  {label}: {rows[-1][1]:.2f} s/epoch", flush=True)
    joint = next(s for label, s, _, _ in rows if label == "joint")
    print(f"\n{machine()}\n\nCommand: `{command_line()}`\n")
    print("| method | s/epoch (median) | ×joint | training units (last epoch) | optimizer steps (last epoch) |")
    print("|---|---:|---:|---:|---:|")
    for label, s, units, steps in sorted(rows, key=lambda r: r[1]):
        print(f"| {label} | {s:.2f} | {s / joint:.2f} | {units} | {steps} |")


if __name__ == "__main__":
    main()
