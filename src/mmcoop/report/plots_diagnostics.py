"""Figures of the diagnostics sections: imbalance measures per epoch (and the feature maps).

Same conventions as `mmcoop.report.plots`: plain pandas/numpy in, PNG bytes (or
``None`` when the data is absent) out.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mmcoop.report.plots import _colors, _epoch_axis, figure_png
from mmcoop.utils.metric_keys import RATIO, SHARE, UNI_GAP, VAL, modality_key, split_key


def imbalance_figure(metrics: pd.DataFrame, modalities: Sequence[str]) -> bytes | None:
    """Per epoch on validation: OGM-GE's discrepancy ratio, the Shapley share of each modality,
    and the best-minus-worst unimodal accuracy (panels whose columns are absent are left out)."""
    if metrics.empty or "epoch" not in metrics.columns:
        return None
    colors = dict(zip(modalities, _colors(len(modalities))))
    panels: list[tuple[list[tuple[str, str]], str, str, float | None]] = []
    for prefix, title, ylabel, ref in (
        (RATIO, "discrepancy ratio (OGM-GE)", "ratio", 1.0),
        (SHARE, "Shapley share", "share", 1.0 / max(len(modalities), 1)),
    ):
        cols = [(m, split_key(VAL, modality_key(prefix, m))) for m in modalities]
        cols = [(m, c) for m, c in cols if c in metrics.columns and metrics[c].notna().any()]
        if cols:
            panels.append((cols, title, ylabel, ref))
    gap = split_key(VAL, UNI_GAP)
    if gap in metrics.columns and metrics[gap].notna().any():
        panels.append(([("best − worst", gap)], "unimodal accuracy gap", "points", None))
    if not panels:
        return None
    fig = Figure(figsize=(4.6 * len(panels), 3.5))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (cols, title, ylabel, line) in zip(axes, panels):
        for m, c in cols:
            sel = metrics[["epoch", c]].dropna()
            y = 100 * sel[c] if c == gap else sel[c]
            ax.plot(sel["epoch"], y, marker="o" if len(sel) <= 30 else None, ms=3, color=colors.get(m, "k"), label=m)
        if line is not None:
            ax.axhline(line, color="grey", ls=":", lw=1)
        _epoch_axis(ax, ylabel, title)
    return figure_png(fig)


def feature_map_figure(
    coords: Mapping[str, Sequence[Sequence[float]]],
    labels: Sequence[int],
    phi: Mapping[str, Sequence[float]] | None = None,
    class_names: Sequence[str] | None = None,
) -> bytes | None:
    """t-SNE maps, one row per modality: points coloured by class, and (when ``phi`` has the
    modality) by the sample's Shapley value of that modality."""
    if not coords:
        return None
    mods = list(coords)
    ncols = 2 if phi else 1
    fig = Figure(figsize=(4.4 * ncols + 1.2, 3.8 * len(mods)))
    axes = fig.subplots(len(mods), ncols, squeeze=False)
    y = np.asarray(labels)
    classes = sorted(set(y.tolist()))
    colors = _colors(len(classes))
    for row, m in zip(axes, mods):
        xy = np.asarray(coords[m], dtype=float).reshape(-1, 2)
        ax = row[0]
        for k, c in enumerate(classes):
            sel = y == c
            name = class_names[c] if class_names and 0 <= c < len(class_names) else str(c)
            ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=colors[k], label=name, alpha=0.8, linewidths=0)
        ax.set_title(f"{m}: t-SNE, coloured by class")
        ax.set_xticks([])
        ax.set_yticks([])
        if len(classes) <= 12:
            ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
        if phi and m in phi:
            ax = row[1]
            v = np.asarray(phi[m], dtype=float)
            ok = np.isfinite(v)
            ax.scatter(xy[~ok, 0], xy[~ok, 1], s=6, color="lightgrey", linewidths=0)
            sc = ax.scatter(xy[ok, 0], xy[ok, 1], s=6, c=v[ok], cmap="coolwarm_r", linewidths=0)
            fig.colorbar(sc, ax=ax, label=f"phi_{m}")
            ax.set_title(f"{m}: coloured by Shapley value")
            ax.set_xticks([])
            ax.set_yticks([])
        elif ncols == 2:
            row[1].set_axis_off()
    return figure_png(fig)
