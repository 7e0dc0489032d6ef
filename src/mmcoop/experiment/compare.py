"""Compare methods over seeds on one dataset: every (method, seed) is a run; a table summarises.

Writes ``<out_dir>/<name>/`` holding one run directory per pair, ``compare.csv``
(one row per run) and ``summary.csv`` (mean and std over seeds per method).
Model selection is always on validation; test metrics are read from each run's
best-validation model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from mmcoop.errors import ConfigError
from mmcoop.experiment.config import RunConfig
from mmcoop.experiment.rundir import check_run_path, prepare_compare_dir
from mmcoop.experiment.run import check_new_run, load_splits, run_experiment
from mmcoop.methods import METHODS
from mmcoop.utils.io import atomic_write_text


@dataclass(frozen=True)
class MethodSpec:
    """A method to compare: registry name plus option overrides, shown under ``label``."""

    label: str
    name: str
    options: dict[str, Any]


def parse_methods(spec: str | list[str]) -> list[MethodSpec]:
    """Parse ``"joint,sample-level:weighted,modality-level"`` (``name[:execution]``)."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not items:
        raise ConfigError("--methods is empty; give e.g. joint,sample-level,modality-level")
    out = []
    for item in items:
        name, _, execution = item.partition(":")
        opts = {"execution": execution} if execution else {}
        out.append(MethodSpec(item, name, opts))
    labels = [m.label for m in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ConfigError(f"--methods names {', '.join(dup)} more than once; give each method once")
    return out


def parse_seeds(spec: str | list[int]) -> list[int]:
    """Parse ``"0,1,2"``; each seed once."""
    try:
        seeds = [int(s) for s in spec.split(",") if s.strip()] if isinstance(spec, str) else [int(s) for s in spec]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {spec!r}") from None
    if not seeds:
        raise ConfigError("--seeds is empty; give e.g. 0,1,2")
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ConfigError(f"--seeds repeats {', '.join(map(str, dup))}; give each seed once (e.g. 0,1,2)")
    return seeds


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every numeric column, per method label."""
    metrics = [c for c in df.columns if c.startswith("test_") or c in ("seconds_per_epoch", "best_val_acc")]
    g = df.groupby("method", sort=False)[metrics]
    mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
    out = pd.concat({"mean": mean, "std": std}, axis=1)
    out.columns = [f"{m}_{stat}" for stat, m in out.columns]
    out.insert(0, "seeds", g.size())
    return out.reset_index()


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """``mean ± std`` strings, accuracies in percent, for printing (plain means when every method has one seed)."""
    rows = []
    single = bool((summary["seeds"] <= 1).all()) if len(summary) else False
    for _, r in summary.iterrows():
        row: dict[str, Any] = {"method": r["method"], "seeds": int(r["seeds"])}
        for col in summary.columns:
            base = col[: -len("_mean")]
            if not col.endswith("_mean") or base == "best_val_acc":
                continue
            if base == "seconds_per_epoch":
                row["s/epoch"] = f"{r[col]:.1f}"
            else:
                mean = f"{100 * r[col]:.1f}"
                row[base.replace("test_", "")] = mean if single else f"{mean} ± {100 * r[base + '_std']:.1f}"
        rows.append(row)
    return pd.DataFrame(rows)


def run_compare(
    base: RunConfig,
    methods: list[MethodSpec],
    seeds: list[int],
    name: str | None = None,
    overwrite: bool = False,
    on_run: Callable[[dict[str, Any]], None] | None = None,
    shared_options: dict[str, Any] | None = None,
) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """Run every (method, seed) pair of ``base`` and write the comparison directory.

    ``shared_options`` (e.g. ``{"warmup": 2}``) go to every method that has such an
    option; a key that no compared method accepts is a :class:`ConfigError`.

    Returns:
        ``(compare_dir, per_run_table, summary_table)``.
    """
    ds_label = base.dataset + ("-debiased" if base.debiased else "")
    cdir = check_run_path(base.out_dir, name or f"compare_{ds_label}", what="comparison")
    shared = dict(shared_options or {})
    accepted = {m.label: {f.name for f in dataclasses.fields(METHODS.get(m.name).Options)} for m in methods}
    unused = sorted(k for k in shared if not any(k in a for a in accepted.values()))
    if unused:
        raise ConfigError(f"method_options {unused} are accepted by none of the methods {[m.label for m in methods]}")
    def run_cfg(m: MethodSpec, seed: int) -> RunConfig:
        opts = {k: v for k, v in shared.items() if k in accepted[m.label]}
        opts.update(m.options)
        return base.replace(seed=seed, method=m.name, method_options=opts, out_dir=str(cdir),
                            name=f"{m.label.replace(':', '-')}_seed{seed}")

    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {seeds} repeat a seed; give each seed once")
    for seed in seeds:  # refuse before training anything, not after the first runs
        for m in methods:
            check_new_run(run_cfg(m, seed), overwrite)
    prepare_compare_dir(cdir)
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        seed_cfg = base.replace(seed=seed)
        splits = load_splits(seed_cfg)  # the same data for every method of a seed
        for m in methods:
            result = run_experiment(run_cfg(m, seed), overwrite=overwrite, splits=splits)
            row = {"method": m.label, "seed": seed, "run_dir": str(result.run_dir)}
            row.update({f"test_{k}": v for k, v in result.test.items() if k != "loss"})
            secs = [r["seconds"] for r in result.history]
            row["seconds_per_epoch"] = sum(secs) / len(secs)
            row["best_val_acc"] = max(r["val_acc"] for r in result.history)
            rows.append(row)
            if on_run is not None:
                on_run(row)
    df = pd.DataFrame(rows)
    summary = summarize(df)
    atomic_write_text(cdir / "compare.csv", df.to_csv(index=False))
    atomic_write_text(cdir / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(cdir / "base_config.yaml", base.to_yaml())
    return cdir, df, summary
