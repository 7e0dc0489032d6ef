"""How far online valuation is from the paper's pass on the same weights trajectory (issue 19).

    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/online_vs_pass.py --dataset avmnist --strength 0.8 \\
        --epochs 15 --warmup 5 --execution weighted --seed 0

Trains ``sample-level`` with ``valuation: online`` (or, ``--drive pass``, with the pass) and, at
every planned epoch, computes *both* valuations of the training set for the plan of that
epoch: the online records (made during the previous epoch, from the training pass's
features: train-mode encoders, training transforms, weights moving during the epoch) and the
paper's pass (eval mode, eval transforms, the weights at the epoch boundary). The plan that
``--drive`` names is executed; the other is only compared. Per planned epoch it prints:

- ``copies differ``: the share of training samples whose planned copies (any modality) differ
  between the two plans;
- ``spearman <m>``: Spearman's rank correlation of phi (ties averaged, ``scipy.stats.spearmanr``)
  between online and pass, per modality;
- ``phi equal``: the share of samples whose phi vector is identical;
- ``fused agree``: the share whose fused prediction agrees;
- the units each plan adds.

The table is printed as markdown and the per-epoch records are in the run's metrics.jsonl.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, machine

from mmcoop.enhance.plans import sample_level_plan
from mmcoop.experiment import RunConfig, run_experiment
from mmcoop.methods import METHODS, MethodContext
from mmcoop.methods.sample_level import SampleLevel
from mmcoop.utils.memory import tune_malloc

NAME = "sample-level-online-check"


class OnlineCheck(SampleLevel):
    """``sample-level`` that, at every planned epoch, also values with the other mode and logs the differences."""

    name = NAME
    drive = "online"

    def build_plan(self, ctx: MethodContext) -> tuple[Any, Any, dict[str, Any]]:
        plan, table, extra = super().build_plan(ctx)  # online when the previous epoch's records exist
        if table.info.get("valuation") != "online":  # no records (first planned epoch of warmup 0)
            return plan, table, extra
        online, saved = self._online, self._online
        self._online = None  # the pass, on the same (current) weights
        try:
            ref, seconds = self.valuate(ctx, table.index)
        finally:
            self._online = saved
        assert online is not None and torch.equal(ref.index, table.index)
        o = self.options
        mods = list(ctx.train_data.modalities)
        ref_plan = sample_level_plan(ref.phi.cpu(), ref.index.cpu(), o.thresholds, o.max_copies, modalities=mods)
        n = ctx.train_data.num_samples
        c_on = plan.copies_per_sample(n)[table.index]
        c_pass = ref_plan.copies_per_sample(n)[table.index]
        phi_on, phi_pass = table.phi.double(), ref.phi.double()
        stats: dict[str, Any] = {
            "check_copies_differ": float((c_on != c_pass).any(1).double().mean()),
            "check_phi_equal": float((phi_on == phi_pass).all(1).double().mean()),
            "check_fused_agree": float((table.fused_pred == ref.fused_pred).double().mean()),
            "check_units_online": len(plan),
            "check_units_pass": len(ref_plan),
            "check_pass_seconds": seconds,
        }
        for k, m in enumerate(mods):
            rho = spearmanr(phi_on[:, k].numpy(), phi_pass[:, k].numpy()).statistic
            stats[f"check_spearman_{m}"] = float(rho)
        extra.update(stats)
        if self.drive == "pass":
            return ref_plan, ref, extra
        return plan, table, extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="avmnist")
    ap.add_argument("--strength", type=float, default=0.8, help="debiased strength (0 = not debiased)")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--execution", default="weighted", choices=["weighted", "duplicate"])
    ap.add_argument("--drive", default="online", choices=["online", "pass"], help="the plan that is executed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default="")
    args = ap.parse_args()
    METHODS.register(NAME)(OnlineCheck)  # here, not on import: importing the script changes no registry
    tune_malloc()
    OnlineCheck.drive = args.drive
    out = args.out_dir or tempfile.mkdtemp(prefix="mmcoop-online-check-")
    cfg = RunConfig.from_dict(
        {
            "dataset": args.dataset,
            "debiased": {"strength": args.strength} if args.strength else None,
            "method": NAME,
            "method_options": {"warmup": args.warmup, "execution": args.execution, "valuation": "online"},
            "name": f"online_check_{args.dataset}_{args.execution}_{args.drive}_seed{args.seed}",
            "out_dir": out,
            "seed": args.seed,
            "train": {"epochs": args.epochs, "progress": False},
        }
    )
    hist = run_experiment(cfg).history
    rows = [h for h in hist if "check_copies_differ" in h]
    mods = [k[len("check_spearman_") :] for k in rows[0] if k.startswith("check_spearman_")] if rows else []
    print(f"\n{machine()}\n\nCommand: `{command_line()}`\n")
    print(
        f"{args.dataset}{' debiased ' + str(args.strength) if args.strength else ''}, execution {args.execution}, "
        f"plan executed: {args.drive}, seed {args.seed}\n"
    )
    head = "| epoch | copies differ | phi equal | fused agree | " + " | ".join(f"spearman {m}" for m in mods)
    print(head + " | units online | units pass |")
    print("|---:|---:|---:|---:|" + "---:|" * len(mods) + "---:|---:|")
    for h in rows:
        sp = " | ".join(f"{h[f'check_spearman_{m}']:.3f}" for m in mods)
        print(
            f"| {h['epoch']} | {100 * h['check_copies_differ']:.1f}% | {100 * h['check_phi_equal']:.1f}% | "
            f"{100 * h['check_fused_agree']:.1f}% | {sp} | {h['check_units_online']} | {h['check_units_pass']} |"
        )
    if rows:
        mean = sum(h["check_copies_differ"] for h in rows) / len(rows)
        print(
            f"\nmean share of samples with different planned copies: {100 * mean:.1f}%; "
            f"final val acc {hist[-1]['val_acc']:.4f}"
        )


if __name__ == "__main__":
    main()
