"""Read run and compare directories (files only) and summarise valuation tables.

Nothing here imports the training stack: a run directory is read through its files
(``config.yaml``, ``dataset.json``, ``metrics.jsonl``, ``results.json``,
``valuation/*.parquet``) with PyYAML, pandas and pyarrow, so a report can be drawn
on a machine without a GPU, or long after the code that wrote the run has changed.

File names and layouts come from `mmcoop.utils.rundir` (the one owner of the
run-directory schema). Valuation parquet layout (written by
``ValuationTable.to_parquet``): one row per sample with ``index``, ``label``,
``fused_pred``, ``pred_<coalition>``, ``phi_<modality>`` (modality order = model
order), optionally ``value_<coalition>``, ``stderr_<modality>`` and extras such as
``degraded`` (index of the degraded modality, debiased datasets) or ``copies_<modality>``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from mmcoop.enhance.plans import DEFAULT_THRESHOLDS
from mmcoop.utils.metric_keys import ACC, COPIES, TEST, VAL, modalities_in, modality_key, split_key
from mmcoop.utils.rundir import (
    COMPARE_CSV,
    SUMMARY_CSV,
    RunPaths,
    decode_valuation_meta,
    is_compare_dir,
    is_run_dir,
    list_valuations,
    modalities_from_columns,
    phi_column,
    read_metrics_file,
)
from mmcoop.utils.summaries import summarize_over_seeds

__all__ = [  # list_valuations, is_run_dir, is_compare_dir: re-exported from mmcoop.utils.rundir
    "read_json",
    "read_config",
    "metrics_frame",
    "modalities_from_metrics",
    "modalities_from_results",
    "phi_columns",
    "modalities_of",
    "read_valuation",
    "list_valuations",
    "is_run_dir",
    "is_compare_dir",
    "child_run_dirs",
    "RunData",
    "load_run_dir",
    "CompareData",
    "summarize_runs",
    "load_compare_dir",
    "rank_auc",
    "degraded_auc",
    "summarize_contributions",
    "per_class_contributions",
]


# -- small readers ----------------------------------------------------------------------
def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` when the file is absent or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The resolved ``config.yaml`` of a run as a plain dict (``{}`` when absent or invalid)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def metrics_frame(path: str | os.PathLike) -> pd.DataFrame:
    """``metrics.jsonl`` as a DataFrame, one row per epoch, sorted by ``epoch`` (the records of
    `mmcoop.utils.rundir.read_metrics_file`, the one reader of metrics files).

    Read with `mmcoop.utils.rundir.read_metrics_file` in its lenient mode: lines
    that are not JSON objects (e.g. a half-written last line of a run in progress) are
    skipped with a ``RuntimeWarning``. A repeated epoch (a resumed run) keeps its last
    record. Returns an empty DataFrame when the file is absent or unreadable.
    """
    df = pd.DataFrame(read_metrics_file(path, strict=False))
    if df.empty:
        return df
    if "epoch" in df.columns:
        df = df.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)
    return df


def modalities_from_metrics(metrics: pd.DataFrame) -> list[str]:
    """Modality names from the ``val_acc_<m>`` columns (in column order)."""
    return modalities_in(split_key(VAL, ACC), metrics.columns)


def modalities_from_results(results: dict[str, Any]) -> list[str]:
    """Modality names from the ``test_acc_<m>`` keys of ``results.json``."""
    return modalities_in(split_key(TEST, ACC), results)


def phi_columns(df: pd.DataFrame) -> list[str]:
    """The ``phi_<modality>`` columns of a valuation table, in table (model) order."""
    return [phi_column(m) for m in modalities_from_columns(df.columns)]


def modalities_of(df: pd.DataFrame) -> list[str]:
    """Modality names of a valuation table: ``df.attrs["modalities"]`` if set, else the ``phi_`` columns."""
    mods = df.attrs.get("modalities")
    if mods and all(phi_column(m) in df.columns for m in mods):
        return list(mods)
    return modalities_from_columns(df.columns)


def read_valuation(path: str | os.PathLike) -> pd.DataFrame:
    """One valuation parquet as a DataFrame.

    The table's settings (modality order, value function, split, epoch, ...) from the
    parquet metadata, when present, go to ``df.attrs["meta"]`` and the modality order
    to ``df.attrs["modalities"]``.
    """
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    df = table.to_pandas()
    meta = decode_valuation_meta(table.schema.metadata) or {}
    df.attrs["meta"] = meta
    mods = meta.get("modalities")
    if isinstance(mods, list) and all(phi_column(str(m)) in df.columns for m in mods):
        df.attrs["modalities"] = [str(m) for m in mods]
    else:
        df.attrs["modalities"] = modalities_from_columns(df.columns)
    return df


def child_run_dirs(path: str | os.PathLike) -> list[Path]:
    """Run directories directly inside ``path`` (sorted by name)."""
    p = Path(path)
    if not p.is_dir():
        return []
    return sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".") and is_run_dir(c))


# -- run and compare directories ----------------------------------------------------------
@dataclass
class RunData:
    """Everything a report needs from one run directory (missing files give empty values)."""

    path: Path
    config: dict[str, Any]
    dataset: dict[str, Any]
    metrics: pd.DataFrame
    results: dict[str, Any]
    epoch_valuations: dict[int, Path]
    split_valuations: dict[str, Path]
    modalities: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.path.name)

    @property
    def dataset_name(self) -> str:
        name = self.dataset.get("name") or self.config.get("dataset") or "?"
        if self.config.get("debiased") and not str(name).endswith("-debiased"):
            name = f"{name}-debiased"
        return str(name)

    @property
    def method(self) -> str:
        return str(self.config.get("method") or "?")

    def latest_valuation(self, prefer_split: str | None = None) -> tuple[str, Path] | None:
        """``(label, path)`` of the split file ``prefer_split`` if present, else the last epoch file."""
        if prefer_split and prefer_split in self.split_valuations:
            return f"{prefer_split} split", self.split_valuations[prefer_split]
        if self.epoch_valuations:
            ep = max(self.epoch_valuations)
            return f"epoch {ep} (train)", self.epoch_valuations[ep]
        if self.split_valuations:
            name, path = next(iter(self.split_valuations.items()))
            return f"{name} split", path
        return None


def load_run_dir(path: str | os.PathLike) -> RunData:
    """Read a run directory (see `RunData`); never raises for missing files."""
    p = Path(path)
    files = RunPaths(p)
    metrics = metrics_frame(files.metrics)
    results = read_json(files.results)
    epochs, splits = list_valuations(p)
    mods = modalities_from_metrics(metrics) or modalities_from_results(results)
    if not mods:
        for f in [*epochs.values(), *splits.values()]:
            try:
                import pyarrow.parquet as pq

                mods = modalities_from_columns(pq.read_schema(f).names)
            except (OSError, ValueError):
                continue
            if mods:
                break
    return RunData(
        path=p,
        config=read_config(files.config),
        dataset=read_json(files.dataset),
        metrics=metrics,
        results=results,
        epoch_valuations=epochs,
        split_valuations=splits,
        modalities=mods,
    )


@dataclass
class CompareData:
    """A compare directory: the per-run table, the summary over seeds and the run directories."""

    path: Path
    runs: pd.DataFrame  # one row per (method, seed); column ``run_path`` = resolved run directory or None
    summary: pd.DataFrame  # method, seeds, <metric>_mean, <metric>_std
    modalities: list[str]


def _resolve_run(cdir: Path, run_dir: Any) -> Path | None:
    if not isinstance(run_dir, str) or not run_dir:
        return None
    raw = Path(run_dir)
    for cand in (cdir / raw.name, raw if raw.is_absolute() else cdir / raw, raw):
        if cand.is_dir() and is_run_dir(cand) and cand.resolve() != cdir.resolve():
            return cand
    return None


def summarize_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and (sample) std over seeds of the metric columns, per ``method`` (as ``summary.csv``:
    the same function, `mmcoop.utils.summaries.summarize_over_seeds`)."""
    return summarize_over_seeds(df, "method")


def _rows_from_children(cdir: Path) -> pd.DataFrame:
    rows = []
    for rd in child_run_dirs(cdir):
        run = load_run_dir(rd)
        if not run.results:
            continue
        row: dict[str, Any] = {"method": run.method, "seed": run.config.get("seed"), "run_dir": str(rd)}
        row.update({k: v for k, v in run.results.items() if k.startswith("test_") and k != "test_loss"})
        for k in ("seconds_per_epoch", "best_val_acc"):
            if k in run.results:
                row[k] = run.results[k]
        rows.append(row)
    return pd.DataFrame(rows)


def load_compare_dir(path: str | os.PathLike) -> CompareData:
    """Read a compare directory.

    ``compare.csv`` gives the runs; without it, the run directories inside ``path``
    (with a ``results.json``) do. ``summary.csv`` gives the summary; without it, it is
    computed from the runs (mean and sample std over seeds per method).
    """
    cdir = Path(path)
    runs = pd.DataFrame()
    if (cdir / COMPARE_CSV).is_file():
        try:
            runs = pd.read_csv(cdir / COMPARE_CSV)
        except (OSError, ValueError, pd.errors.EmptyDataError):
            runs = pd.DataFrame()
    if runs.empty:
        runs = _rows_from_children(cdir)
    summary = pd.DataFrame()
    if (cdir / SUMMARY_CSV).is_file():
        try:
            summary = pd.read_csv(cdir / SUMMARY_CSV)
        except (OSError, ValueError, pd.errors.EmptyDataError):
            summary = pd.DataFrame()
    if summary.empty and not runs.empty:
        summary = summarize_runs(runs)
    if not runs.empty:
        runs = runs.copy()
        runs["run_path"] = [_resolve_run(cdir, r) for r in runs.get("run_dir", pd.Series([None] * len(runs)))]
    cols = list(summary.columns) + list(runs.columns)
    mods: list[str] = []
    for c in cols:  # test_acc_<m> (runs) or test_acc_<m>_mean (summary)
        if c.endswith("_std"):
            continue
        for m in modalities_in(split_key(TEST, ACC), [c[: -len("_mean")] if c.endswith("_mean") else c]):
            if m not in mods:
                mods.append(m)
    return CompareData(path=cdir, runs=runs, summary=summary, modalities=mods)


# -- summaries of valuation tables -------------------------------------------------------
def rank_auc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the binary labels ``positive``.

    Rank-based (Mann–Whitney U): tied scores get their average rank, so a tie between
    a positive and a negative counts one half. NaN scores are dropped. Returns NaN
    when there is no positive or no negative sample.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(positive).astype(bool).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.shape[0]} vs {y.shape[0]}")
    ok = ~np.isnan(s)
    s, y = s[ok], y[ok]
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts).astype(np.float64)  # rank of the last element of each tie group (1-based)
    avg_rank = ends - (counts - 1) / 2.0
    ranks = avg_rank[inverse.reshape(-1)]
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _phi_matrix(df: pd.DataFrame, modalities: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    mods = list(modalities) if modalities is not None else modalities_of(df)
    if not mods:
        raise ValueError("the valuation table has no phi_<modality> columns")
    missing = [m for m in mods if f"phi_{m}" not in df.columns]
    if missing:
        raise ValueError(f"the valuation table lacks columns {[f'phi_{m}' for m in missing]}")
    return mods, df[[f"phi_{m}" for m in mods]].to_numpy(dtype=np.float64)


def degraded_auc(df: pd.DataFrame, modalities: Sequence[str] | None = None) -> dict[str, float]:
    """How well the Shapley values find the degraded modality of a debiased dataset.

    Args:
        df: a valuation table with ``phi_<modality>`` columns and a ``degraded`` column
            (index of the degraded modality in modality order; other values, e.g. -1,
            mean "none degraded").
        modalities: modality order (default: ``df.attrs["modalities"]`` or the order of
            the ``phi_`` columns, which is the model order in files written by mmcoop).

    Returns:
        A flat dict: ``samples``; ``auc_<m>`` for every modality ``m``: AUC of
            ``-phi_m`` for predicting ``degraded == m`` (0.5 = chance, 1 = a degraded
            modality always has the lower value; ties count one half); ``auc_mean`` over
            the modalities with a defined AUC; ``lowest_is_degraded``: share of the samples
            with a degraded modality whose lowest-phi modality is the degraded one (a
            minimum shared by ``t`` modalities counts ``1/t``); ``lowest_is_degraded_strict``:
            the same counting only a unique minimum; ``chance``: ``1/M``.

    Raises:
        ValueError: no ``degraded`` or no ``phi_`` columns.
    """
    if "degraded" not in df.columns:
        raise ValueError("the valuation table has no 'degraded' column (not a debiased dataset)")
    mods, phi = _phi_matrix(df, modalities)
    deg = pd.to_numeric(df["degraded"], errors="coerce").to_numpy(dtype=np.float64)
    ok = ~np.isnan(phi).any(1) & ~np.isnan(deg)
    phi, deg = phi[ok], deg[ok].astype(np.int64)
    out: dict[str, float] = {"samples": int(phi.shape[0])}
    aucs = []
    for k, m in enumerate(mods):
        a = rank_auc(-phi[:, k], deg == k)
        out[f"auc_{m}"] = a
        if not math.isnan(a):
            aucs.append(a)
    out["auc_mean"] = float(np.mean(aucs)) if aucs else float("nan")
    valid = (deg >= 0) & (deg < len(mods))
    if valid.any():
        p, d = phi[valid], deg[valid]
        is_min = p == p.min(1, keepdims=True)
        hit = is_min[np.arange(d.size), d]
        ties = is_min.sum(1)
        out["lowest_is_degraded"] = float((hit / ties).mean())
        out["lowest_is_degraded_strict"] = float((hit & (ties == 1)).mean())
    else:
        out["lowest_is_degraded"] = float("nan")
        out["lowest_is_degraded_strict"] = float("nan")
    out["chance"] = 1.0 / len(mods)
    return out


def _as_frame(source: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    return source if isinstance(source, pd.DataFrame) else read_valuation(source)


#: Upper bound of the phi bands given 2 or more copies by the paper's sample-level rule (0.4),
#: read from `mmcoop.enhance.plans.DEFAULT_THRESHOLDS` (the band of 1 copy starts above it).
LOW_PHI: float = next(bound for bound, copies in DEFAULT_THRESHOLDS if copies == 1)


def summarize_contributions(source: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """Per-modality summary of a valuation table (a parquet path or its DataFrame).

    Returns:
        DataFrame indexed by modality (model order) with columns ``samples``,
            ``mean_phi``, ``std_phi``, ``unimodal_acc`` (accuracy of the modality alone,
            from ``pred_<m>``; NaN if absent), ``lowest_share`` (share of samples in which
            the modality has the smallest value, ties split evenly, sums to 1),
            ``low_share`` (share with ``phi <= 0.4`` (`LOW_PHI`), which the paper's sample-level
            rule re-samples with 2 or 3 copies) and ``mean_copies`` (from ``copies_<m>``
            columns, NaN if absent).
    """
    df = _as_frame(source)
    mods, phi = _phi_matrix(df, None)
    n = phi.shape[0]
    rows = []
    if n:
        is_min = phi == np.nanmin(phi, 1, keepdims=True)
        w = is_min / np.maximum(is_min.sum(1, keepdims=True), 1)
    for k, m in enumerate(mods):
        x = phi[:, k]
        acc = float("nan")
        if f"pred_{m}" in df.columns and "label" in df.columns and n:
            acc = float((df[f"pred_{m}"].to_numpy() == df["label"].to_numpy()).mean())
        col = modality_key(COPIES, m)
        copies = float(df[col].mean()) if col in df.columns and n else float("nan")
        rows.append(
            {
                "modality": m,
                "samples": n,
                "mean_phi": float(np.nanmean(x)) if n else float("nan"),
                "std_phi": float(np.nanstd(x, ddof=1)) if n > 1 else float("nan"),
                "unimodal_acc": acc,
                "lowest_share": float(w[:, k].mean()) if n else float("nan"),
                "low_share": float((x <= LOW_PHI).mean()) if n else float("nan"),
                "mean_copies": copies,
            }
        )
    return pd.DataFrame(rows).set_index("modality")


def per_class_contributions(source: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """Mean Shapley value per class: DataFrame ``[classes x modalities]`` (index ``label``)."""
    df = _as_frame(source)
    mods, phi = _phi_matrix(df, None)
    if "label" not in df.columns:
        raise ValueError("the valuation table has no 'label' column")
    out = pd.DataFrame(phi, columns=mods)
    out["label"] = df["label"].to_numpy()
    return out.groupby("label").mean().sort_index()
