"""Compare report, first section: the gain over joint training (the paper's Figure 1) and its table."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from mmcoop.report import plots
from mmcoop.report.format import interval, is_missing, table
from mmcoop.report.loaders import CompareData
from mmcoop.report.page import Page


def gain_rows(cmp: CompareData, methods: Sequence[str]) -> list[dict[str, Any]]:
    """One row per compared method: cost relative to joint, and per protocol gain and 95% interval."""
    s = cmp.summary.assign(method=cmp.summary["method"].astype(str)).set_index("method")
    runs = cmp.runs
    joint = s.loc["joint"] if "joint" in s.index else None
    rows = []
    for m in methods:
        r = s.loc[m]
        row: dict[str, Any] = {"method": m, "seeds": r.get("seeds")}
        for key, name in (("sample_visits", "visits"), ("optimizer_steps", "steps"), ("seconds_per_epoch", "s/epoch")):
            v = r.get(f"{key}_mean")
            if (
                joint is not None
                and not is_missing(v)
                and not is_missing(joint.get(f"{key}_mean"))
                and float(joint[f"{key}_mean"]) > 0
            ):
                row[f"{name} × joint"] = f"{float(v) / float(joint[f'{key}_mean']):.2f}"
        for p in plots.GAIN_PROTOCOLS:
            if f"gain_{p}_mean" not in s.columns:
                continue
            head = "equal epochs" if p == "epochs" else f"same {p}"
            mean = r.get(f"gain_{p}_mean")
            row[f"gain, {head}"] = "–" if is_missing(mean) else f"{float(mean):+.2f}"
            row[f"95% CI, {head}"] = interval(r.get(f"gain_{p}_low"), r.get(f"gain_{p}_high"), r.get(f"gain_{p}_n"))
            if not is_missing(r.get(f"gain_{p}_boot_low")):
                row[f"bootstrap CI, {head}"] = interval(r.get(f"gain_{p}_boot_low"), r.get(f"gain_{p}_boot_high"), 2)
            ecol = f"baseline_epochs_{p}"
            if p != "epochs" and ecol in runs.columns and "method" in runs.columns:
                e = pd.to_numeric(runs.loc[runs["method"].astype(str) == m, ecol], errors="coerce").dropna()
                if len(e):
                    row[f"joint epochs, {head}"] = (
                        str(int(e.min())) if e.min() == e.max() else f"{int(e.min())}–{int(e.max())}"
                    )
        rows.append(row)
    return rows


def gain_section(page: Page, cmp: CompareData, missing: list[str]) -> None:
    methods = plots.gain_methods(cmp.summary)
    if not methods:
        missing.append(
            "Gain over joint training (Figure 1): No paired gains in summary.csv (a comparison without "
            "joint training, or written before gains were recorded): rerun `mmcoop compare` with joint "
            "among the methods."
        )
        return
    page.h2("gain", "Gain over joint training (Figure 1)")
    page.image(
        "figure1_gain",
        plots.gain_figure(cmp.summary, cmp.runs),
        "Figure 1: test-accuracy gain over joint training per method (points), at equal epochs and against "
        "joint training given the same compute; bars = mean over seeds, error bars = 95% paired-t interval, "
        "dots = seeds",
    )
    page.add(table(gain_rows(cmp, methods), pct=[], left=["method"]))
    page.add(
        '<p class="sub">gain: test accuracy of the method minus that of joint training with the same seed (same '
        "splits, initialisation and shuffles), in points, averaged over seeds; 95% CI: mean ± t<sub>0.975, n−1"
        "</sub> · sd / √n over the n paired seeds (undefined for one seed). Equal epochs is the paper's protocol; "
        "same visits / same steps compare with joint training run for as many epochs as give it the method's "
        "total training-sample visits / optimizer steps (joint epochs column); visits / steps / s/epoch × joint: "
        "the method's training units seen, optimizer steps taken and time per epoch relative to joint training."
        "</p>"
    )
