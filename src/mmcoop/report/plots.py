"""Figures of the report, drawn with matplotlib (Agg backend) and returned as PNG bytes.

Every function takes plain pandas data read from a run directory and returns the
PNG bytes of one figure, or ``None`` when the data it needs is absent. Figures are
built as ``matplotlib.figure.Figure`` objects (no pyplot state), so drawing many
reports in one process leaks nothing.
"""

from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from mmcoop.utils.metric_keys import CONTRIB, COPIES, modality_key  # noqa: E402
from mmcoop.utils.rundir import PLOT_PNG_KEY, PLOT_PNG_TEXT  # noqa: E402

DPI = 100
_GRID_STEPS = (1.0, 0.5, 1 / 3, 0.25, 1 / 6, 1 / 12)  # value grids of the paper value function (largest first)
_MAX_GRID_BINS = 40


def figure_png(fig: Figure) -> bytes:
    """The PNG bytes of ``fig``."""
    buf = io.BytesIO()
    # no version in the file (same plot, same bytes); the text chunk marks it as the report's
    fig.savefig(
        buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None, PLOT_PNG_KEY: PLOT_PNG_TEXT}
    )
    return buf.getvalue()


def _colors(n: int) -> list:
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def phi_bins(values: np.ndarray, bins: int = 20) -> tuple[np.ndarray, bool]:
    """Histogram bin edges for Shapley values: ``(edges, on_grid)``.

    Values on a regular grid (the paper value function gives multiples of 1/2 for two
    modalities, e.g. {-0.5, 0, 0.5, 1, 1.5}) get one bin centred on every grid point
    from the smallest to the largest value; other values get ``bins`` equal bins.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.linspace(-0.75, 1.75, 6), True
    lo, hi = float(x.min()), float(x.max())
    for step in _GRID_STEPS:
        q = x / step
        if np.allclose(q, np.round(q), atol=1e-4):
            a, b = int(round(lo / step)), int(round(hi / step))
            if b - a + 1 <= _MAX_GRID_BINS:
                return (np.arange(a, b + 2) - 0.5) * step, True
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1), False


def _epoch_axis(ax: Any, ylabel: str, title: str, **legend: Any) -> None:
    """Label a per-epoch panel: integer epoch ticks, y label, title, grid, legend (``fontsize=8`` unless given)."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(**({"fontsize": 8} | legend))


def accuracy_figure(metrics: pd.DataFrame, modalities: Sequence[str], best_epoch: int | None = None) -> bytes | None:
    """Accuracy per epoch (validation, validation per modality, training) and the losses."""
    if metrics.empty or "epoch" not in metrics.columns:
        return None
    acc_cols = [c for c in ["val_acc", *[f"val_acc_{m}" for m in modalities], "train_acc"] if c in metrics.columns]
    loss_cols = [c for c in ("train_loss", "val_loss") if c in metrics.columns]
    if not acc_cols and not loss_cols:
        return None
    ep = metrics["epoch"].to_numpy()
    panels = int(bool(acc_cols)) + int(bool(loss_cols))
    fig = Figure(figsize=(5.2 * panels, 3.6))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    i = 0
    marker = "o" if len(ep) <= 30 else None
    if acc_cols:
        ax = axes[i]
        i += 1
        colors = _colors(len(acc_cols))
        for c, col in zip(acc_cols, colors):
            style = "--" if c == "train_acc" else "-"
            lw = 2.2 if c == "val_acc" else 1.4
            label = {"val_acc": "val (fused)", "train_acc": "train"}.get(c, c.replace("val_acc_", "val ") + " alone")
            ax.plot(
                ep,
                100 * pd.to_numeric(metrics[c], errors="coerce"),
                style,
                color=col,
                lw=lw,
                marker=marker,
                ms=3,
                label=label,
            )
        _epoch_axis(ax, "accuracy (%)", "accuracy")
    if loss_cols:
        ax = axes[i]
        for c, col in zip(loss_cols, _colors(len(loss_cols))):
            ax.plot(
                ep,
                pd.to_numeric(metrics[c], errors="coerce"),
                color=col,
                marker=marker,
                ms=3,
                label=c.replace("_loss", ""),
            )
        _epoch_axis(ax, "loss", "loss")
    if best_epoch is not None:
        for ax in axes:
            ax.axvline(best_epoch, color="grey", ls=":", lw=1)
    return figure_png(fig)


def contribution_figure(metrics: pd.DataFrame, modalities: Sequence[str]) -> bytes | None:
    """Dataset-level mean contribution (``contrib_<m>``) and planned copies (``copies_<m>``) per epoch."""
    if metrics.empty or "epoch" not in metrics.columns:
        return None
    groups = []
    for prefix, title, ylabel in (
        (CONTRIB, "dataset-level contribution (mean phi)", "mean phi"),
        (COPIES, "planned re-sampling copies", "copies"),
    ):
        cols = [(m, modality_key(prefix, m)) for m in modalities if modality_key(prefix, m) in metrics.columns]
        cols = [(m, c) for m, c in cols if metrics[c].notna().any()]
        if cols:
            groups.append((cols, title, ylabel))
    if not groups:
        return None
    fig = Figure(figsize=(5.2 * len(groups), 3.6))
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    colors = dict(zip(modalities, _colors(len(modalities))))
    for ax, (cols, title, ylabel) in zip(axes, groups):
        for m, c in cols:
            sel = metrics[["epoch", c]].dropna()
            ax.plot(sel["epoch"], sel[c], marker="o" if len(sel) <= 30 else None, ms=3, color=colors[m], label=m)
        if title.startswith("dataset"):
            ax.axhline(1.0, color="grey", ls=":", lw=1)
        _epoch_axis(ax, ylabel, title)
    return figure_png(fig)


def phi_histogram_figure(
    sources: Mapping[str, pd.DataFrame], modalities: Sequence[str], title: str | None = None
) -> bytes | None:
    """Distribution of the per-sample Shapley values, one panel per modality (paper, Fig. 2).

    Each source (e.g. an epoch or a split) is one bar colour inside every panel; bars
    show the share of that source's samples, so sources of different sizes compare.
    With two modalities a last panel shows the difference ``phi_0 - phi_1``.
    """
    mods = [m for m in modalities if all(f"phi_{m}" in df.columns for df in sources.values())]
    if not sources or not mods:
        return None
    panels: list[tuple[str, dict[str, np.ndarray]]] = []
    for m in mods:
        panels.append((f"phi[{m}]", {k: df[f"phi_{m}"].to_numpy(dtype=np.float64) for k, df in sources.items()}))
    if len(mods) == 2:
        a, b = mods
        panels.append(
            (
                f"phi[{a}] - phi[{b}]",
                {
                    k: df[f"phi_{a}"].to_numpy(dtype=np.float64) - df[f"phi_{b}"].to_numpy(dtype=np.float64)
                    for k, df in sources.items()
                },
            )
        )
    ncols = min(len(panels), 4)
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.0 * ncols, 3.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
    colors = _colors(len(sources))
    for ax, (name, data) in zip(axes, panels):
        edges, on_grid = phi_bins(np.concatenate(list(data.values())) if data else np.empty(0))
        width = np.diff(edges)
        centres = edges[:-1] + width / 2
        n_src = len(data)
        bar_w = width * 0.8 / n_src
        for j, ((label, x), col) in enumerate(zip(data.items(), colors)):
            x = x[np.isfinite(x)]
            counts = np.histogram(x, bins=edges)[0]
            share = counts / max(x.size, 1)
            offset = (j - (n_src - 1) / 2) * bar_w
            ax.bar(centres + offset, share, width=bar_w, color=col, label=f"{label} (n={x.size})", edgecolor="none")
        if on_grid and len(centres) <= 12:
            ax.set_xticks(centres)
            ax.set_xticklabels([f"{c:g}" for c in np.round(centres, 3)], fontsize=8)
        ax.set_title(name)
        ax.set_xlabel("Shapley value" if "-" not in name else "difference")
        ax.set_ylabel("share of samples")
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    # one legend for all panels, below them, so it never covers bars
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=min(len(labels), 3), frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * ((len(labels) - 1) // 3), 1, 1))
    return figure_png(fig)


def per_class_figure(tables: Mapping[str, pd.DataFrame], class_names: Sequence[str] | None = None) -> bytes | None:
    """Heatmaps of the mean Shapley value per class (rows) and modality (columns), one per source."""
    tables = {k: v for k, v in tables.items() if not v.empty}
    if not tables:
        return None
    n_cls = max(len(t) for t in tables.values())
    n_mod = max(t.shape[1] for t in tables.values())
    vals = np.concatenate([t.to_numpy(dtype=np.float64).reshape(-1) for t in tables.values()])
    vals = vals[np.isfinite(vals)]
    vmin = float(min(vals.min(), 0.0)) if vals.size else 0.0
    vmax = float(max(vals.max(), 1.0)) if vals.size else 1.0
    h = min(max(2.6, 0.28 * n_cls + 1.4), 24)
    w = max(2.2, 0.9 * n_mod + 1.6)
    fig = Figure(figsize=(w * len(tables) + 1.0, h))
    axes = fig.subplots(1, len(tables), squeeze=False)[0]
    im = None
    for ax, (label, t) in zip(axes, tables.items()):
        im = ax.imshow(t.to_numpy(dtype=np.float64), aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_xticks(range(t.shape[1]))
        ax.set_xticklabels([str(c) for c in t.columns], rotation=30 if t.shape[1] > 3 else 0, fontsize=8)
        step = max(1, -(-len(t) // 40))
        ticks = list(range(0, len(t), step))
        ax.set_yticks(ticks)
        names = [str(i) for i in t.index]
        if class_names is not None:
            names = [str(class_names[int(i)]) if 0 <= int(i) < len(class_names) else str(i) for i in t.index]
        ax.set_yticklabels([names[i] for i in ticks], fontsize=7)
        ax.set_ylabel("class")
        ax.set_title(label, fontsize=10)
        if t.size <= 150:
            arr = t.to_numpy(dtype=np.float64)
            mid = (vmin + vmax) / 2
            for r in range(arr.shape[0]):
                for c in range(arr.shape[1]):
                    v = arr[r, c]
                    if np.isfinite(v):
                        ax.text(
                            c,
                            r,
                            f"{v:.2f}",
                            ha="center",
                            va="center",
                            fontsize=7,
                            color="black" if v > mid else "white",
                        )
    if im is not None:
        fig.colorbar(im, ax=list(axes), label="mean phi", shrink=0.8)
    return figure_png(fig)


def degraded_epochs_figure(table: pd.DataFrame, modalities: Sequence[str]) -> bytes | None:
    """AUC of ``-phi_m`` for the degraded modality and the lowest-phi hit rate, per epoch."""
    if table.empty or "epoch" not in table.columns or len(table) < 2:
        return None
    fig = Figure(figsize=(5.6, 3.6))
    ax = fig.subplots()
    ep = table["epoch"].to_numpy()
    for m, col in zip(modalities, _colors(len(modalities) + 2)):
        if f"auc_{m}" in table.columns:
            ax.plot(ep, table[f"auc_{m}"], color=col, marker="o", ms=3, lw=1.2, label=f"AUC {m}")
    if "lowest_is_degraded" in table.columns:
        ax.plot(ep, table["lowest_is_degraded"], "k--", marker="s", ms=3, lw=1.6, label="lowest phi = degraded")
    if "chance" in table.columns:
        ax.axhline(float(table["chance"].iloc[0]), color="grey", ls=":", lw=1, label="chance (share)")
    ax.axhline(0.5, color="grey", ls="-.", lw=0.8)
    ax.set_ylim(0, 1.02)
    _epoch_axis(
        ax,
        "AUC / share",
        "finding the degraded modality from phi (train set)",
        fontsize=7,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
    )
    return figure_png(fig)


def compare_figure(summary: pd.DataFrame, runs: pd.DataFrame, modalities: Sequence[str]) -> bytes | None:
    """Test accuracy (fused and per modality) per method: mean over seeds, std error bars, seed dots."""
    if summary.empty or "method" not in summary.columns:
        return None
    metrics = [m for m in ["test_acc", *[f"test_acc_{x}" for x in modalities]] if f"{m}_mean" in summary.columns]
    if not metrics:
        return None
    methods = summary["method"].astype(str).tolist()
    x = np.arange(len(methods))
    width = 0.8 / len(metrics)
    fig = Figure(figsize=(max(5.0, 1.1 * len(methods) * max(1, len(metrics) / 2) + 2.0), 4.0))
    ax = fig.subplots()
    for j, (metric, col) in enumerate(zip(metrics, _colors(len(metrics)))):
        mean = 100 * pd.to_numeric(summary[f"{metric}_mean"], errors="coerce").to_numpy()
        std = summary.get(f"{metric}_std")
        err = 100 * pd.to_numeric(std, errors="coerce").fillna(0).to_numpy() if std is not None else None
        pos = x + (j - (len(metrics) - 1) / 2) * width
        label = "fused" if metric == "test_acc" else metric.replace("test_acc_", "") + " alone"
        ax.bar(pos, mean, width=width * 0.95, yerr=err, capsize=3, color=col, label=label, alpha=0.9)
        if not runs.empty and metric in runs.columns and "method" in runs.columns:
            for i, meth in enumerate(methods):
                pts = 100 * pd.to_numeric(runs.loc[runs["method"].astype(str) == meth, metric], errors="coerce")
                pts = pts.dropna().to_numpy()
                if pts.size > 1:
                    ax.scatter(np.full(pts.size, pos[i]), pts, s=8, color="black", zorder=3)
    ax.set_xticks(x)
    ax.set_xticklabels(methods, rotation=20 if len(methods) > 3 else 0, ha="right" if len(methods) > 3 else "center")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("test accuracy per method (mean ± std over seeds)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return figure_png(fig)


#: Gain protocols of a comparison (``gain_<p>_*`` columns of summary.csv) and their legend labels.
GAIN_PROTOCOLS: dict[str, str] = {
    "epochs": "equal epochs",
    "visits": "joint given the same sample visits",
    "steps": "joint given the same optimizer steps",
    "flops": "joint given the same training FLOPs",
}


def gain_methods(summary: pd.DataFrame) -> list[str]:
    """Methods of ``summary`` with a paired gain (the compared methods; not the baseline or matched runs)."""
    if summary.empty or "gain_epochs_mean" not in summary.columns or "method" not in summary.columns:
        return []
    ok = pd.to_numeric(summary["gain_epochs_mean"], errors="coerce").notna()
    return summary.loc[ok, "method"].astype(str).tolist()


def gain_bars(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The bars of `gain_figure`: per protocol present, a frame indexed by method with
    ``mean``, ``low``, ``high`` (the 95% interval, NaN where undefined) and ``n`` (seeds)."""
    methods = gain_methods(summary)
    if not methods:
        return {}
    s = summary.assign(method=summary["method"].astype(str)).set_index("method").loc[methods]
    out = {}
    for p in GAIN_PROTOCOLS:
        if f"gain_{p}_mean" not in s.columns:
            continue
        cols = {
            k: pd.to_numeric(s[f"gain_{p}_{k}"], errors="coerce")
            if f"gain_{p}_{k}" in s.columns
            else pd.Series(np.nan, index=s.index)
            for k in ("mean", "low", "high", "n")
        }
        out[p] = pd.DataFrame(cols, index=pd.Index(methods, name="method"))
    return out


def gain_figure(summary: pd.DataFrame, runs: pd.DataFrame | None = None) -> bytes | None:
    """Figure 1 of the paper for a comparison: mean gain over joint training per method (points).

    Grouped bars per method, one per protocol present (``gain_<p>_mean`` columns of
    summary.csv: equal epochs, and joint given the same sample visits / optimizer steps;
    see `gain_bars`), error bars over the 95% interval (none where it is undefined,
    i.e. one seed), and the per-seed gains (``gain_<p>`` columns of ``runs``) as dots.
    """
    bars = gain_bars(summary)
    if not bars:
        return None
    methods = list(next(iter(bars.values())).index)
    x = np.arange(len(methods))
    width = 0.8 / len(bars)
    # about 0.35 inch per bar, capped so a 14-method comparison stays a readable page width
    fig = Figure(figsize=(min(16.0, max(5.0, 0.35 * len(methods) * len(bars) + 2.5)), 4.5))
    ax = fig.subplots()
    for j, ((p, b), col) in enumerate(zip(bars.items(), _colors(len(bars)))):
        mean, low, high = (b[k].to_numpy(dtype=np.float64) for k in ("mean", "low", "high"))
        ok = np.isfinite(low) & np.isfinite(high)
        pos = x + (j - (len(bars) - 1) / 2) * width
        ax.bar(pos, mean, width=width * 0.95, color=col, alpha=0.9, label=GAIN_PROTOCOLS[p])
        if ok.any():
            err = np.stack([mean[ok] - low[ok], high[ok] - mean[ok]])
            ax.errorbar(pos[ok], mean[ok], yerr=err, fmt="none", ecolor="black", capsize=4, lw=1.2)
        if runs is not None and not runs.empty and f"gain_{p}" in runs.columns and "method" in runs.columns:
            for i, meth in enumerate(methods):
                pts = pd.to_numeric(runs.loc[runs["method"].astype(str) == meth, f"gain_{p}"], errors="coerce")
                pts = pts.dropna().to_numpy()
                if pts.size > 1:
                    ax.scatter(np.full(pts.size, pos[i]), pts, s=9, color="black", zorder=3)
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xticks(x)
    ax.set_xticklabels(methods, rotation=20 if len(methods) > 3 else 0, ha="right" if len(methods) > 3 else "center")
    ax.set_ylabel("gain over joint (points)")
    n = bars["epochs"]["n"] if "epochs" in bars else pd.Series(dtype=float)
    single = bool(len(n)) and bool((n <= 1).all())
    # the legend sits right above the axes (under the title): no gap whatever the tick labels' height
    ax.set_title(
        "test-accuracy gain over joint training"
        + (" (one seed: no interval)" if single else ": mean, 95% interval, seeds"),
        pad=24,
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(
        fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(bars), frameon=False, borderaxespad=0.2
    )
    return figure_png(fig)
