"""Printing a comparison: the summary over seeds and the paired gains, as strings for the console.

Re-exported by `mmcoop.experiment.compare` (``format_summary``, ``format_gains``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

#: Gain protocols of a comparison: equal epochs, and joint given the same sample visits / optimizer steps /
#: training FLOPs (``gain_<p>`` columns).
PROTOCOLS: tuple[str, ...] = ("epochs", "visits", "steps", "flops")


def _fmt_gain(mean: float, low: float, high: float, n: float) -> str:
    """``+2.0 [-0.5, +4.5]``; ``+2.0 (1 seed: no CI)`` when the interval is undefined."""
    if not math.isfinite(mean):
        return "–"
    if math.isfinite(low):
        return f"{mean:+.1f} [{low:+.1f}, {high:+.1f}]"
    return f"{mean:+.1f} (1 seed: no CI)" if n == 1 else f"{mean:+.1f} (no CI)"


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """``mean ± std`` strings, accuracies in percent, for printing (plain means when every method has one seed)."""
    rows = []
    single = bool((summary["seeds"] <= 1).all()) if len(summary) else False
    for _, r in summary.iterrows():
        row: dict[str, Any] = {"method": r["method"], "seeds": int(r["seeds"])}
        for col in summary.columns:
            base = col[: -len("_mean")]
            shown = base in ("test_acc", "test_f1", "seconds_per_epoch") or base.startswith("test_acc_")
            if not col.endswith("_mean") or not shown:  # accuracies and time (imbalance / cost: compare.csv)
                continue
            if base == "seconds_per_epoch":
                row["s/epoch"] = f"{r[col]:.1f}"
            else:
                mean = f"{100 * r[col]:.1f}"
                row[base.replace("test_", "")] = mean if single else f"{mean} ± {100 * r[base + '_std']:.1f}"
        rows.append(row)
    return pd.DataFrame(rows)


def format_gains(summary: pd.DataFrame, runs: pd.DataFrame | None = None, baseline: str = "joint") -> pd.DataFrame:
    """Gain table for printing, one row per compared method (baseline and matched runs left out).

    Columns: ``visits ×joint`` / ``steps ×joint`` / ``s/epoch ×joint`` (mean sample visits,
    optimizer steps and seconds per epoch relative to the baseline), and per protocol ``gain`` (equal epochs) / ``gain@visits``
    / ``gain@steps`` (same sample visits / optimizer steps): one cell of lines, the mean
    gain in points with its 95% paired-t interval (``+2.0 [-0.5, +4.5]``, or ``+2.0 (1
    seed: no CI)``), then ``boot [lo, hi]`` when a bootstrap was run, then for matched
    protocols the baseline epochs matched (``vs joint 30 ep``, a range when seeds differ).
    """
    protos = [p for p in PROTOCOLS if f"gain_{p}_mean" in summary.columns]
    if not protos:
        return pd.DataFrame()
    by = summary.set_index("method")
    rows = []
    for _, r in summary.iterrows():
        if not math.isfinite(float(r.get("gain_epochs_mean", math.nan))):
            continue
        row: dict[str, Any] = {"method": r["method"], "seeds": int(r["seeds"])}
        for key, name in (("sample_visits", "visits"), ("optimizer_steps", "steps"), ("seconds_per_epoch", "s/epoch")):
            col = f"{key}_mean"
            if col in by.columns and baseline in by.index and by.loc[baseline, col] > 0:
                ratio = float(r[col]) / float(by.loc[baseline, col])
                row[f"{name} ×{baseline}"] = f"{ratio:.2f}" if math.isfinite(ratio) else "–"
        for p in protos:
            lines = [
                _fmt_gain(
                    float(r[f"gain_{p}_mean"]),
                    float(r[f"gain_{p}_low"]),
                    float(r[f"gain_{p}_high"]),
                    float(r[f"gain_{p}_n"]),
                )
            ]
            if f"gain_{p}_boot_low" in summary.columns:
                lo, hi = float(r[f"gain_{p}_boot_low"]), float(r[f"gain_{p}_boot_high"])
                lines.append(f"boot [{lo:+.1f}, {hi:+.1f}]" if math.isfinite(lo) else "boot n/a")
            ecol = f"baseline_epochs_{p}"
            if p != "epochs" and runs is not None and ecol in runs.columns:
                e = pd.to_numeric(runs.loc[runs["method"] == r["method"], ecol], errors="coerce").dropna()
                if len(e):
                    lo_e, hi_e = int(e.min()), int(e.max())
                    lines.append(f"vs {baseline} {lo_e if lo_e == hi_e else f'{lo_e}-{hi_e}'} ep")
            row["gain" if p == "epochs" else f"gain@{p}"] = "\n".join(lines)
        rows.append(row)
    return pd.DataFrame(rows)
