"""Per-seed summaries of a comparison: mean and sample std over seeds of each method's metrics.

One function for the table ``compare`` writes (``summary.csv``) and for the report, which
recomputes it from the run directories when ``summary.csv`` is missing; it lives below both
layers (report < experiment).
"""

from __future__ import annotations

import pandas as pd

#: Columns summarised besides every ``test_*`` metric (when present).
SUMMARY_EXTRA: tuple[str, ...] = (
    "seconds_per_epoch",
    "best_val_acc",
    "epochs_run",
    "sample_visits",
    "optimizer_steps",
    "parameters",
    "step_flops_per_unit",
    "train_flops_per_epoch",
    "train_flops_total",
)
#: Column prefixes summarised: the test metrics and the linear probes (``compare --probe``).
SUMMARY_PREFIXES: tuple[str, ...] = ("test_", "probe_")


def summarize_over_seeds(df: pd.DataFrame, by: str = "method") -> pd.DataFrame:
    """Mean and sample std (``ddof=1``; 0 for one seed) over seeds, per ``by`` group.

    Args:
        df: one row per (method, seed) with numeric metric columns (``test_*`` and
            `SUMMARY_EXTRA`); other columns are ignored.
        by: the grouping column (groups keep their first-seen order).

    Returns:
        ``[by, seeds, <metric>_mean..., <metric>_std...]``, one row per group; an empty
            DataFrame when ``df`` is empty or has no ``by`` column.

    Example:
        >>> df = pd.DataFrame({"method": ["joint", "joint"], "seed": [0, 1], "test_acc": [0.5, 0.7]})
        >>> summarize_over_seeds(df)[["seeds", "test_acc_mean"]].values.tolist()
        [[2.0, 0.6]]
    """
    if df.empty or by not in df.columns:
        return pd.DataFrame()
    metrics = [
        c
        for c in df.columns
        if (c.startswith(SUMMARY_PREFIXES) or c in SUMMARY_EXTRA) and pd.api.types.is_numeric_dtype(df[c])
    ]
    g = df.groupby(by, sort=False)[metrics]
    mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
    out = pd.concat({"mean": mean, "std": std}, axis=1)
    out.columns = [f"{m}_{stat}" for stat, m in out.columns]
    out.insert(0, "seeds", g.size())
    return out.reset_index()
