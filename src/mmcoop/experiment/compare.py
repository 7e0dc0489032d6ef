"""Compare methods over seeds on one dataset: every (method, seed) is a run; tables summarise.

Writes ``<out_dir>/<name>/`` holding one run directory per pair and:

- ``compare.csv``: one row per run (``role`` ``method`` or ``matched``), with its test
  metrics, ``epochs_run``, ``sample_visits`` (training units seen) and
  ``optimizer_steps``, and for every compared method its paired gains over the
  baseline on the same seed, in points: ``gain_epochs`` (equal epochs, the paper's
  protocol), ``gain_visits`` / ``gain_steps`` (against the baseline trained for
  ``baseline_epochs_visits`` / ``baseline_epochs_steps`` epochs, i.e. given the same number of
  sample visits / optimizer steps);
- ``summary.csv``: per method label, mean and std over seeds of every metric, and
  per protocol ``gain_<p>_{n,mean,sd,low,high}`` (95% paired-t interval, see
  `mmcoop.experiment.stats`; ``gain_<p>_boot_{low,high}`` with a bootstrap);
- ``base_config.yaml``: the shared settings (``train.patience`` = early stopping);
- ``compare.json``: the request (methods, seeds, shared settings), written before the
  first run.

Resuming (``mmcoop compare --resume``): a comparison killed at any moment continues:
finished runs are reused (read back from their commit record), half-finished runs
resume from their last committed epoch, missing runs are trained. Seeds or methods
given with ``--resume`` that the recorded request lacks are added (``compare.csv`` then
holds all of them); changed shared settings are refused with a diff. One process at a
time writes a comparison folder: a second one is refused, naming the holder.

Compute matching: re-sampling methods train on more units per epoch than joint
training, so at equal epochs they also get more optimizer steps. For each (method,
seed) the baseline epochs giving the same total are ``floor(total / baseline per
epoch + 0.5)``; when that exceeds the compared epochs, an extra baseline run
``<baseline>@<E>ep_seed<s>`` is trained (one per distinct ``E`` and seed, shared by
every method and protocol that needs it); otherwise the equal-epoch baseline is the
match. Model selection is always on validation; test metrics are read from each
run's best-validation model.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import numpy as np
import pandas as pd

from mmcoop.errors import ConfigError, MMCoopError, RunDirError
from mmcoop.experiment.config import RunConfig
from mmcoop.experiment.integrity import committed_history, load_commit, verify_run_dir
from mmcoop.experiment.resume import diff_configs
from mmcoop.experiment.safety import (
    check_resumable,
    check_run_code,
    check_run_path,
    is_marked_run_dir,
    looks_like_legacy_run,
    prepare_compare_dir,
)
from mmcoop.experiment.run import RunResult, _on_main, check_new_run, load_splits, resume_experiment, run_experiment
from mmcoop.experiment.compare_extras import cost_columns, probe_columns
from mmcoop.experiment.compare_format import PROTOCOLS, format_gains, format_summary  # noqa: F401 - re-exported
from mmcoop.experiment.stats import paired_gains, summarize_gains
from mmcoop.methods import METHODS, build_method, variant_options
from mmcoop.methods.base import NOOP_WAYS_OUT, noop_problem
from mmcoop.train.distributed import barrier, init_from_env, is_main
from mmcoop.utils.dist import all_gather_objects
from mmcoop.utils.io import atomic_write_text
from mmcoop.utils.summaries import summarize_over_seeds
from mmcoop.utils.lock import LOCK_NAME, FolderLock
from mmcoop.utils.rundir import BASE_CONFIG_FILE, COMPARE_CSV, COMPARE_REQUEST_FILE, SUMMARY_CSV, RunPaths

#: Matched protocols (the gain protocols are `mmcoop.experiment.compare_format.PROTOCOLS`): the baseline
#: given the same sample visits / optimizer steps / training FLOPs.
MATCHED: tuple[str, ...] = ("visits", "steps", "flops")
#: Run totals read from a run's last ``metrics.jsonl`` record.
_TOTALS = ("sample_visits", "optimizer_steps")
_TOTAL_OF = {"visits": "sample_visits", "steps": "optimizer_steps", "flops": "train_flops_total"}


@dataclass(frozen=True)
class MethodSpec:
    """A method to compare: registry name plus option overrides, shown under ``label``."""

    label: str
    name: str
    options: dict[str, Any]
    #: came from ``all``: skipped (with a note) when the data has more modalities than it supports
    optional: bool = False


def parse_methods(spec: str | list[str], shared_options: dict[str, Any] | None = None) -> list[MethodSpec]:
    """Parse ``"joint,sample-level:weighted,modality-level"`` (``name[:variant]``, the variant
    setting the method's `variant_option`).

    ``all`` stands for every registered method (``joint`` first, then by name); a method with a
    `all_needs_option` (``unimodal``: ``modality``) is left out of it
    unless listed too or ``shared_options`` holds that option.
    Repeated labels are kept once.
    """
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not items:
        raise ConfigError("--methods is empty; give e.g. joint,sample-level,modality-level (or all)")
    shared = shared_options or {}
    expanded: list[str] = []
    for item in items:
        if item == "all":
            names = sorted(METHODS.names(), key=lambda n: (n != "joint", n))
            expanded += [n for n in names if METHODS.get(n).all_needs_option in (None, *shared)]
        else:
            expanded.append(item)
    given = [x for x in items if x != "all"]
    dup = sorted({x for x in given if given.count(x) > 1})
    if dup:
        raise ConfigError(f"--methods names {', '.join(dup)} more than once; give each method once")
    out = []
    for item in dict.fromkeys(expanded):  # "all" may repeat a method also named explicitly
        name, _, variant = item.partition(":")
        out.append(MethodSpec(item, name, variant_options(name, variant), optional=item not in given))
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


def parse_matched(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"visits,steps"`` -> ``("visits", "steps")``; ``""``/``"none"``/``None`` -> no matched baseline.
    ``flops`` (the same training FLOPs, valuation passes included) turns FLOP counting on."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else (spec or ())) if s.strip()]
    if items == ["none"]:
        return ()
    bad = [s for s in items if s not in MATCHED]
    if bad:
        raise ConfigError(f"--matched {bad} unknown; give a comma list of {', '.join(MATCHED)} (or none)")
    return tuple(p for p in MATCHED if p in items)


def matched_epochs(total: float, per_epoch: float, epochs: int) -> int:
    """Baseline epochs giving ``total`` units at ``per_epoch`` units an epoch: ``floor(total/per_epoch + 0.5)``
    (halves round up), never fewer than ``epochs`` (a method that spent no more than the
    baseline is matched by the equal-epoch baseline)."""
    if per_epoch <= 0 or not math.isfinite(total):
        return epochs
    return max(epochs, math.floor(total / per_epoch + 0.5))


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every test metric, time per epoch, best val accuracy and
    (when logged) epochs run, sample visits and optimizer steps, per method label
    (`mmcoop.utils.summaries.summarize_over_seeds`, which the report shares)."""
    return summarize_over_seeds(df, "method")


def add_gain_summary(
    summary: pd.DataFrame, runs: pd.DataFrame, level: float = 0.95, bootstrap: int = 0, bootstrap_seed: int = 0
) -> pd.DataFrame:
    """``summary`` with ``gain_<p>_{n,mean,sd,low,high}`` (and ``_boot_{low,high}`` when
    ``bootstrap > 0``) for every protocol column ``gain_<p>`` of ``runs`` (per-seed gains in
    points); NaN for labels without gains (the baseline, the matched runs)."""
    out = summary.copy()
    for p in PROTOCOLS:
        col = f"gain_{p}"
        if col not in runs.columns:
            continue
        stats: dict[str, dict[str, float]] = {}
        for label, grp in runs.groupby("method", sort=False):
            vals = pd.to_numeric(grp[col], errors="coerce").dropna().to_list()
            if vals:
                stats[str(label)] = summarize_gains(vals, level, bootstrap, bootstrap_seed).to_dict()
        keys = ["n", "mean", "sd", "low", "high"] + (["boot_low", "boot_high"] if bootstrap > 0 else [])
        for k in keys:
            out[f"{col}_{k}"] = [stats.get(str(m), {}).get(k, math.nan) for m in out["method"]]
    return out


def _run_row(label: str, seed: int, role: str, result: RunResult) -> dict[str, Any]:
    """The compare.csv row of a finished run."""
    hist = result.history
    row: dict[str, Any] = {"method": label, "seed": seed, "role": role, "run_dir": str(result.run_dir)}
    row.update({f"test_{k}": v for k, v in result.test.items() if k != "loss"})
    # the median epoch: the first epoch of a process also pays one-off warm-up (allocator,
    # oneDNN kernels), which would make whichever method runs first look slow
    row["seconds_per_epoch"] = float(np.median([r["seconds"] for r in hist]))
    best = max(hist, key=lambda r: (r["val_acc"], -r["epoch"]))
    row["best_val_acc"], row["best_epoch"] = best["val_acc"], best["epoch"]
    row["epochs"] = result.config.train.epochs
    row["epochs_run"] = len(hist)
    for k in _TOTALS:
        row[k] = hist[-1].get(k, math.nan)
    row.update(cost_columns(hist))
    return row


def _per_epoch(result: RunResult) -> dict[str, float]:
    """Units the baseline spends in one epoch: sample visits and optimizer steps of its first epoch."""
    first = result.history[0]
    return {
        "visits": float(first.get("train_units", math.nan)),
        "steps": float(first.get("epoch_steps", math.nan)),
        "flops": float(first.get("train_flops", math.nan)),
    }


def _request(
    base: RunConfig, methods: list[MethodSpec], seeds: list[int], matched: Sequence[str], baseline: str | None
) -> dict[str, Any]:
    """The JSON record of what a comparison runs (``compare.json``)."""
    shared = {k: v for k, v in base.to_dict().items() if k not in ("name", "out_dir", "seed")}
    return {
        "format": 1,
        "methods": [{"label": m.label, "name": m.name, "options": m.options} for m in methods],
        "seeds": list(seeds),
        "matched": list(matched),
        "baseline": baseline,
        "base": shared,
    }


def _read_request(cdir: Path) -> dict[str, Any] | None:
    path = cdir / COMPARE_REQUEST_FILE
    if not path.is_file():
        return None
    try:
        req = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path} cannot be read ({e}); restore it, or redo the comparison with --overwrite") from None
    if not isinstance(req, dict) or not {"methods", "seeds", "base"} <= set(req):
        raise RunDirError(f"{path} is not a comparison record; restore it, or redo the comparison with --overwrite")
    return req


def _merge_request(
    cdir: Path, recorded: dict[str, Any], asked: dict[str, Any], resume: bool, overwrite: bool
) -> tuple[list[MethodSpec], list[int]]:
    """Methods and seeds to run when ``cdir`` already holds a comparison (recorded first, new ones added)."""
    methods = [MethodSpec(m["label"], m["name"], dict(m.get("options") or {})) for m in recorded["methods"]]
    seeds = [int(s) for s in recorded["seeds"]]
    shown = f"methods {', '.join(m.label for m in methods)}; seeds {', '.join(map(str, seeds))}"
    if not resume and not overwrite:
        raise RunDirError(
            f"comparison folder {cdir} already holds a run of `mmcoop compare` ({shown}); pass --resume to continue "
            "it (finished runs are reused, interrupted ones resumed; new seeds or methods are added and compare.csv "
            "holds them all), --overwrite to redo it, or --name for a new comparison"
        )
    if overwrite:
        return [], []
    changed = diff_configs(recorded["base"], asked["base"])
    for key in ("matched", "baseline"):
        if recorded.get(key, asked[key]) != asked[key]:
            changed[key] = (recorded.get(key), asked[key])
    if changed:
        lines = "\n".join(f"  {k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        raise ConfigError(
            f"cannot resume the comparison in {cdir} with different shared settings:\n{lines}\n"
            "Undo them, or start another comparison with --name (or redo this one with --overwrite)"
        )
    labels = {m.label: m for m in methods}
    for m in asked["methods"]:
        if m["label"] in labels and labels[m["label"]].options != dict(m.get("options") or {}):
            raise ConfigError(
                f"cannot resume the comparison in {cdir}: method {m['label']} had options "
                f"{labels[m['label']].options}, now {m['options']}"
            )
    return methods, seeds


def _finished_run(cfg: RunConfig) -> RunResult | None:
    """A finished run of ``cfg`` read back from its files (no model, no data), or ``None`` when the
    run is not finished, not consistent with its commit, or was trained with another config (then
    `resume_experiment` decides: continue, extend, or refuse with a diff)."""
    paths = RunPaths(cfg.run_dir)
    if not paths.results.is_file():
        return None
    try:
        state = load_commit(cfg.run_dir)
        if state is None or "config" not in state or verify_run_dir(cfg.run_dir, allow_pending=False):
            return None
        check_run_code(cfg.run_dir, state["config"])  # refused: resume_experiment says why
        stored = RunConfig.from_dict({**state["config"], "name": cfg.name, "out_dir": cfg.out_dir})
        if diff_configs(stored.to_dict(), cfg.to_dict()):
            return None
        results = json.loads(paths.results.read_text(encoding="utf-8"))
    except (MMCoopError, OSError, ValueError):
        return None
    test = {k[len("test_") :]: v for k, v in results.items() if k.startswith("test_")}
    return RunResult(cfg.run_dir, cfg, None, None, committed_history(state, cfg.run_dir), test)  # type: ignore[arg-type]


def run_compare(
    base: RunConfig,
    methods: list[MethodSpec],
    seeds: list[int],
    name: str | None = None,
    overwrite: bool = False,
    on_run: Callable[[dict[str, Any]], None] | None = None,
    shared_options: dict[str, Any] | None = None,
    matched: Sequence[str] = ("visits",),
    baseline: str | None = "joint",
    level: float = 0.95,
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
    resume: bool = False,
    probe: bool = False,
    count_flops: bool = False,
) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """Run every (method, seed) pair of ``base``, the compute-matched baselines, and write
    the comparison directory.

    Args:
        base: shared settings (``train.epochs``: the compared epochs; ``train.patience``:
            early stopping, applied to every run including the matched ones).
        methods: the methods (see `parse_methods`).
        seeds: seeds; a method and the baseline with the same seed form one paired gain.
        name: folder name under ``base.out_dir`` (default ``compare_<dataset>``).
        overwrite: replace existing run directories of the same names.
        on_run: called with each finished run's compare.csv row.
        shared_options: method options (e.g. ``{"warmup": 2}``) given to every method that
            has such an option; a key that no compared method accepts is a `ConfigError`.
        matched: protocols of the compute-matched baseline: ``visits`` and/or ``steps``
            (empty: equal epochs only).
        baseline: label of the baseline method (prepended when missing from ``methods``);
            ``None`` = no gains and no matched runs.
        level: confidence level of the intervals.
        bootstrap: resamples of a percentile bootstrap over seeds (0 = paired t only).
        bootstrap_seed: seed of the bootstrap draws.
        resume: continue the comparison in the folder (see the module docstring); new
            seeds and methods are added to the recorded ones.
        probe: fit the linear probes of every compared run (``probe.json``; the
            ``probe_acc_<f>`` / ``probe_f1_<f>`` columns, `mmcoop.experiment.compare_extras`).
        count_flops: count training and inference FLOPs in every run (``train.count_flops``;
            on whenever ``matched`` has ``flops``).

    Returns:
        ``(compare_dir, per_run_table, summary_table)`` (the tables of compare.csv and summary.csv).

    Raises:
        RunDirError: the folder holds another comparison (without ``resume``/``overwrite``),
            another process writes it, or a run directory is unsafe.
        ConfigError: ``resume`` with different shared settings.
    """
    if resume and overwrite:
        raise ConfigError("--resume continues a comparison and --overwrite redoes it; pass only one")
    init_from_env()  # no-op unless launched by torchrun
    ds_label = base.dataset + ("-debiased" if base.debiased else "")
    cdir = check_run_path(base.out_dir, name or f"compare_{ds_label}", what="comparison")
    shared = dict(shared_options or {})
    matched = parse_matched(matched)
    if (count_flops or "flops" in matched) and not base.train.count_flops:
        base = base.replace(train=dict(base.to_dict()["train"], count_flops=True))
    methods = list(methods)
    if baseline is not None and baseline not in [m.label for m in methods]:
        methods.insert(0, parse_methods(baseline)[0])

    def check_holder() -> None:  # another compare writing this folder now: name it before anything else
        if (cdir / LOCK_NAME).is_file():
            FolderLock(cdir, what="comparison folder").acquire().release()

    _on_main(check_holder)  # rank 0 only: under torchrun it holds the lock from open_compare on
    recorded = _read_request(cdir) if cdir.is_dir() else None
    if recorded is not None:  # a comparison is there: continue it (recorded runs first), or refuse
        asked = _request(base, methods, seeds, matched, baseline)
        old_methods, old_seeds = _merge_request(cdir, recorded, asked, resume, overwrite)
        known = {m.label for m in old_methods}
        methods = old_methods + [m for m in methods if m.label not in known]
        seeds = old_seeds + [s for s in seeds if s not in old_seeds]
    first = load_splits(base.replace(seed=seeds[0])) if seeds else None  # reused for the first seed's runs
    num_modalities = len(first.modalities) if first is not None else 0
    skipped = [
        m for m in methods if m.optional and (METHODS.get(m.name).max_modalities or num_modalities) < num_modalities
    ]
    for m in skipped:  # `--methods all` on data with more modalities than a method is defined for
        warnings.warn(
            f"compare: skipping {m.label} (defined for at most {METHODS.get(m.name).max_modalities} "
            f"modalities; the data has {num_modalities})",
            UserWarning,
            stacklevel=2,
        )
    methods = [m for m in methods if m not in skipped]
    too_few = [m.label for m in methods if (METHODS.get(m.name).max_modalities or num_modalities) < num_modalities]
    if too_few:  # named explicitly: refuse before training anything
        raise ConfigError(
            f"--methods {', '.join(too_few)}: defined for fewer modalities than the data's "
            f"{num_modalities}; drop them or use fewer modalities"
        )
    accepted = {m.label: {f.name for f in dataclasses.fields(METHODS.get(m.name).Options)} for m in methods}
    unused = sorted(k for k in shared if not any(k in a for a in accepted.values()))
    if unused:
        raise ConfigError(f"method_options {unused} are accepted by none of the methods {[m.label for m in methods]}")

    def config_for(m: MethodSpec, seed: int, run_name: str, epochs: int | None = None) -> RunConfig:
        opts = {k: v for k, v in shared.items() if k in accepted[m.label]}
        opts.update(m.options)
        changes: dict[str, Any] = {}
        if epochs is not None:
            changes["train"] = dict(base.to_dict()["train"], epochs=epochs)
        return base.replace(seed=seed, method=m.name, method_options=opts, out_dir=str(cdir), name=run_name, **changes)

    def existing(cfg: RunConfig) -> bool:
        """A run to continue (``resume``): a run directory is there (finished or not)."""
        return (
            resume and cfg.run_dir.is_dir() and (is_marked_run_dir(cfg.run_dir) or looks_like_legacy_run(cfg.run_dir))
        )

    def run(cfg: RunConfig, splits: Any) -> RunResult:
        if existing(cfg):  # finished: read back (nothing trained); interrupted: from the last committed epoch
            return _finished_run(cfg) or resume_experiment(cfg.run_dir, config=cfg, splits=splits)
        return run_experiment(cfg, overwrite=overwrite, splits=splits)

    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {seeds} repeat a seed; give each seed once")
    noops: list[str] = []
    for seed in seeds:  # refuse before training anything, not after the first runs
        for m in methods:
            cfg = config_for(m, seed, f"{m.label.replace(':', '-')}_seed{seed}")
            if existing(cfg):
                check_resumable(cfg.run_dir)
            else:
                check_new_run(cfg, overwrite)
            problem = noop_problem(build_method(cfg.method, cfg.method_options), cfg.train.epochs)
            if problem and seed == seeds[0]:
                noops.append(problem.replace(f"method {m.name!r}", f"method {m.label!r}", 1))
    if noops:  # every such method at once (e.g. --methods all with few epochs)
        raise ConfigError(
            "; ".join(noops) + f". {NOOP_WAYS_OUT} (for all of them: --set method_options.allow_noop=true)"
        )

    def open_compare() -> FolderLock:
        prepare_compare_dir(cdir)
        lock = FolderLock(cdir, what="comparison folder").acquire()  # one writer; a second is refused, named
        try:
            atomic_write_text(
                cdir / COMPARE_REQUEST_FILE, json.dumps(_request(base, methods, seeds, matched, baseline), indent=2)
            )
        except BaseException:
            lock.release()
            raise
        return lock

    lock = _on_main(open_compare)  # under torchrun every rank runs the comparison; rank 0 writes its files
    try:
        return _compare_runs(
            base,
            methods,
            seeds,
            cdir,
            config_for,
            run,
            on_run,
            matched,
            baseline,
            level,
            bootstrap,
            bootstrap_seed,
            first,
            probe,
        )
    finally:
        if lock is not None:
            lock.release()


def _compare_runs(
    base: RunConfig,
    methods: list[MethodSpec],
    seeds: list[int],
    cdir: Path,
    config_for: Callable[..., RunConfig],
    run: Callable[[RunConfig, Any], RunResult],
    on_run: Callable[[dict[str, Any]], None] | None,
    matched: Sequence[str],
    baseline: str | None,
    level: float,
    bootstrap: int,
    bootstrap_seed: int,
    first: Any,
    probe: bool = False,
) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """The runs of `run_compare` and its tables (called under the comparison's lock)."""
    barrier()

    def finish(row: dict[str, Any]) -> None:
        rows.append(row)
        if on_run is not None:
            on_run(row)

    rows: list[dict[str, Any]] = []
    base_epochs = base.train.epochs
    for seed in seeds:
        seed_cfg = base.replace(seed=seed)
        splits = first if seed == seeds[0] else load_splits(seed_cfg)  # the same data for every method of a seed
        results: dict[str, RunResult] = {}
        seed_rows: dict[str, dict[str, Any]] = {}
        for m in methods:
            cfg = config_for(m, seed, f"{m.label.replace(':', '-')}_seed{seed}")
            results[m.label] = run(cfg, splits)
            seed_rows[m.label] = _run_row(m.label, seed, "method", results[m.label])
            if probe:  # rank 0 fits (and writes probe.json); every rank keeps the row the same
                cols = _on_main(functools.partial(probe_columns, cfg.run_dir))
                seed_rows[m.label].update(cast(dict, all_gather_objects(cols)[0]) or {})
            finish(seed_rows[m.label])
        if baseline is None:
            continue
        spec = next(m for m in methods if m.label == baseline)
        per_epoch = _per_epoch(results[baseline])
        acc = {base_epochs: seed_rows[baseline]["test_acc"]}  # baseline test accuracy by epochs trained
        need: dict[str, dict[str, int]] = {}
        for m in methods:
            if m.label == baseline:
                continue
            r = seed_rows[m.label]
            need[m.label] = {p: matched_epochs(float(r[_TOTAL_OF[p]]), per_epoch[p], base_epochs) for p in matched}
        for e in sorted({e for d in need.values() for e in d.values()} - {base_epochs}):
            label = f"{baseline}@{e}ep"
            cfg = config_for(spec, seed, f"{label.replace(':', '-')}_seed{seed}", epochs=e)
            row = _run_row(label, seed, "matched", run(cfg, splits))
            acc[e] = row["test_acc"]
            finish(row)
        for m_label, eps in need.items():
            r = seed_rows[m_label]
            r["gain_epochs"] = paired_gains({seed: r["test_acc"]}, {seed: acc[base_epochs]})[seed]
            for p, e in eps.items():
                r[f"baseline_epochs_{p}"] = e
                r[f"gain_{p}"] = paired_gains({seed: r["test_acc"]}, {seed: acc[e]})[seed]
    df = pd.DataFrame(rows)
    summary = summarize(df)
    if baseline is not None and "gain_epochs" in df.columns:
        summary = add_gain_summary(summary, df, level, bootstrap, bootstrap_seed)
    if is_main():
        atomic_write_text(cdir / COMPARE_CSV, df.to_csv(index=False))
        atomic_write_text(cdir / SUMMARY_CSV, summary.to_csv(index=False))
        atomic_write_text(cdir / BASE_CONFIG_FILE, base.to_yaml())
    barrier()
    return cdir, df, summary
