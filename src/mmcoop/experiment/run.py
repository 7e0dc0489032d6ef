"""One run: build data, model and method from a `RunConfig`, train, write ``runs/<name>/``.

Run directory::

    .mmcoop-run            marker: this folder was made by mmcoop (only such folders are overwritten)
    .mmcoop.lock           advisory lock held by the process writing the run (names it)
    config.yaml            resolved config (repeat the run with `mmcoop train --config`)
    dataset.json           where the data came from, split sizes, preprocessing
    metrics.jsonl          one JSON line per epoch
    checkpoints/last.pt    the commit record: everything to resume exactly, written atomically
                           after every other file of the epoch (see `mmcoop.experiment.integrity`)
    checkpoints/best.pt    model weights of the best validation epoch
    valuation/epoch_XXX.parquet   per-sample valuations, for methods that valuate
    results.json           test metrics of the best-validation model (never used for selection)
    resumes.jsonl          one line per resume that changed a setting (what, from, to)

File names, the ``metrics.jsonl`` writer and the record sanitiser are `mmcoop.utils.rundir`'s;
markers and locks `mmcoop.experiment.safety`'s.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from mmcoop.data import DatasetSplits, debias, load_dataset
from mmcoop.errors import ConfigError, DataError, MMCoopError, MMCoopWarning, RunDirError
from mmcoop.experiment.config import RunConfig, load_yaml_mapping
from mmcoop.experiment.integrity import (
    UnreadableCommit,
    committed_history,
    load_commit,
    read_metrics,
    repair_run_dir,
)
from mmcoop.experiment.resume import flatten, plan_resume
from mmcoop.experiment.safety import (
    check_logger_files,
    check_run_code,
    check_resumable,
    create_run_dir,
    open_run_dir,
    precheck_new_run_dir,
)
from mmcoop.methods import build_method, check_not_noop
from mmcoop.experiment.user import check_model_size, probe_model, user_code, user_splits
from mmcoop.models import create_model
from mmcoop.integrations.loggers import build_loggers, check_loggers
from mmcoop.train import Trainer
from mmcoop.train.callbacks import Callback, EpochEndFunction
from mmcoop.train.distributed import barrier, init_from_env, is_main
from mmcoop.utils.dist import all_gather_objects
from mmcoop.utils.io import append_line, atomic_torch_save, atomic_write_text, load_checkpoint
from mmcoop.utils.lock import FolderLock
from mmcoop.utils.rundir import RunPaths, append_metrics, jsonable
from mmcoop.utils.runfiles import stale_derived
from mmcoop.utils.seeding import seed_everything

__all__ = [
    "RunResult",
    "load_splits",
    "build_for",
    "check_new_run",
    "read_metrics",
    "run_experiment",
    "resume_experiment",
    "load_run",
]


@dataclass
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    config: RunConfig
    model: nn.Module
    splits: DatasetSplits
    history: list[dict[str, Any]]
    test: dict[str, float]


def check_splits(splits: DatasetSplits) -> None:
    """Raise `DataError` if a split is empty (training, selection and testing each need samples)."""
    sizes = {k: len(splits.split(k)) for k in ("train", "val", "test")}
    empty = [k for k, n in sizes.items() if n == 0]
    if empty:
        raise DataError(
            f"dataset {splits.name!r}: the {' and '.join(empty)} split is empty (sizes {sizes}); every split needs "
            "samples (check the data folder and the dataset_options that size the splits)"
        )


def load_splits(cfg: RunConfig) -> DatasetSplits:
    """The dataset of ``cfg`` (registered, or the user's ``data.target``), wrapped by the
    debiasing degradation when configured."""
    if cfg.data is not None:
        splits = user_splits(cfg.data.target, cfg.data.options, cfg.seed, name=cfg.dataset)
    else:
        splits = load_dataset(cfg.dataset, cfg.data_root, cfg.seed, **cfg.dataset_options)
    check_splits(splits)
    if cfg.debiased is not None:
        splits = debias(splits, strength=cfg.debiased.strength, mode=cfg.debiased.mode, seed=cfg.seed)
    return splits


def build_for(cfg: RunConfig, splits: DatasetSplits, probe: bool = True) -> nn.Module:
    """The model of ``cfg`` for ``splits`` (registered or ``model.target``; initialised from ``cfg.seed``).

    A built-in model's parameter memory is estimated first (an impossible size is refused
    before anything is allocated); errors raised by a ``model.target`` are shown as the
    user's; with ``probe`` a model or data from a target is run once on two training
    samples to check the shapes (`mmcoop.experiment.user.probe_model`).
    """
    options = cfg.model.builder_options()

    def build() -> nn.Module:
        return create_model(cfg.model.name, splits.specs, splits.num_classes, target=cfg.model.target, **options)

    if cfg.model.target:
        key = f"model.target={cfg.model.target!r}"
        seed_everything(cfg.seed)
        with user_code(key, "building the model"):
            model = build()
    else:
        key = f"model {cfg.model.name!r}"
        check_model_size(build, key, options, cfg.train.device)
        seed_everything(cfg.seed)
        model = build()
    if probe and cfg.model.target:
        probe_model(model, splits, key)
    elif probe and cfg.data is not None:
        probe_model(model, splits, f"{key} on data.target={cfg.data.target!r}")
    return model


def check_device_available(name: str) -> None:
    """Raise `ConfigError` if ``train.device`` names a device this machine does not have."""
    if name == "auto":
        return
    dev = torch.device(name)
    if dev.type in ("cpu", "meta"):
        return
    if dev.type == "mps":
        available, count = torch.backends.mps.is_available(), 1
    else:
        backend = getattr(torch, dev.type, None)
        available = bool(backend is not None and getattr(backend, "is_available", lambda: False)())
        count = int(getattr(backend, "device_count", lambda: 1)()) if available else 0
    if not available:
        raise ConfigError(f"train.device={name!r} but no {dev.type} device is available here; use device: cpu or auto")
    if dev.index is not None and dev.index >= count:
        raise ConfigError(
            f"train.device={name!r} but this machine has {count} {dev.type} device(s) (indices 0-{count - 1})"
        )


def _write_dataset_json(run_dir: Path, splits: DatasetSplits) -> None:
    """``dataset.json``: the JSON-safe part of ``splits.info`` plus the dataset name."""
    atomic_write_text(RunPaths(run_dir).dataset, json.dumps(jsonable(splits.info) | {"name": splits.name}, indent=2))


def _on_main(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 only; if it fails there, every rank raises (no rank waits forever)."""
    result, error = None, None
    if is_main():
        try:
            result = fn()
        except MMCoopError as e:
            error = e
    errors = all_gather_objects(None if error is None else str(error))
    if error is not None:
        raise error
    if errors[0] is not None:
        raise RunDirError(f"rank 0 stopped: {errors[0]}")
    return result


# -- starting and resuming -----------------------------------------------------------
def check_new_run(cfg: RunConfig, overwrite: bool = False) -> None:
    """Cheap refusals before any data is loaded (the same checks run again under the lock).

    Raises:
        RunDirError: unsafe path, or a run already there and ``overwrite`` not given.
    """
    precheck_new_run_dir(cfg.out_dir, cfg.name, overwrite)


def run_experiment(
    cfg: RunConfig,
    resume: bool = False,
    overwrite: bool = False,
    splits: DatasetSplits | None = None,
    callbacks: Sequence[Any] | None = None,
) -> RunResult:
    """Train ``cfg`` end to end and write its run directory.

    Args:
        cfg: the run configuration.
        resume: continue ``cfg.run_dir`` from its commit record; ``cfg`` is the requested
            configuration, checked against the stored one (see `resume_experiment`).
        overwrite: replace an existing run directory of the same name (only one mmcoop
            marked as a run; see `mmcoop.experiment.safety`).
        splits: pre-loaded data (e.g. shared across the runs of a comparison).
        callbacks: objects receiving the training loop's events (`mmcoop.train.callbacks`),
            after the run's own writer and the ``train.loggers``; on resume they see the
            remaining epochs.

    Returns:
        `RunResult` with the best-validation model and its test metrics.

    Raises:
        RunDirError: the run directory is unsafe, taken, or held by another process.
    """
    if resume and overwrite:
        raise ConfigError("--resume continues a run and --overwrite replaces it; pass only one")
    if resume:
        return resume_experiment(cfg.run_dir, config=cfg, splits=splits, callbacks=callbacks)
    init_from_env()  # no-op unless launched by torchrun
    check_new_run(cfg, overwrite)
    check_device_available(cfg.train.device)
    check_loggers(cfg.train.loggers)  # unknown names and missing extras, before any data is loaded
    splits = splits if splits is not None else load_splits(cfg)
    trainer = _build_trainer(cfg, splits)

    def create() -> tuple[Path, FolderLock]:
        run_dir, lock = create_run_dir(cfg.out_dir, cfg.name, cfg.to_yaml(), overwrite=overwrite)
        try:
            _write_dataset_json(run_dir, splits)
        except BaseException:
            lock.release()
            raise
        return run_dir, lock

    created = _on_main(create)
    lock = created[1] if created else None
    barrier()
    return _train(cfg, cfg.run_dir, trainer, splits, [], lock, callbacks)


def resume_experiment(
    run_dir: str | Path,
    changes: dict[str, Any] | None = None,
    *,
    config: RunConfig | None = None,
    sources: dict[str, str] | None = None,
    splits: DatasetSplits | None = None,
    callbacks: Sequence[Any] | None = None,
    trust: bool = False,
) -> RunResult:
    """Continue the run in ``run_dir`` from its commit record (``checkpoints/last.pt``).

    The stored config (the one the run was trained with, kept in ``last.pt``) is compared
    with what is asked for: an edited ``config.yaml`` and ``changes``, or a whole
    ``config``. Changes that define the run are refused with a diff; ``train.epochs``
    may extend it; a few harmless keys (device, progress, ...) are applied and recorded
    (see `mmcoop.experiment.resume`). Files left ahead of the commit by a kill are
    repaired first, stale temporary files removed. A run killed before its first
    epoch was committed starts again from epoch 0.

    Args:
        run_dir: the run directory.
        changes: nested config keys to change, e.g. ``{"train": {"epochs": 20}}``.
        config: instead of ``changes``, the full requested configuration.
        sources: ``{dotted key: where it came from}`` for messages (the CLI's options).
        splits: pre-loaded data.
        callbacks: see `run_experiment`.
        trust: load a checkpoint holding objects other than tensors and plain containers
            (``--trust-run``; see `mmcoop.utils.io.load_checkpoint`).

    Raises:
        RunDirError: not a run directory, held by another process, or a checkpoint
            refused as untrusted.
        ConfigError: refused changes (all listed).
    """
    init_from_env()
    run_dir = Path(run_dir)
    paths = RunPaths(run_dir)
    # everything that can refuse the resume is checked before anything is written: a failed
    # resume leaves the folder as it found it (no marker, no lock file, no temp file removed)
    check_resumable(run_dir)
    state = load_commit(run_dir, trust)
    _warn_untrusted_code(check_run_code(run_dir, None if state is None else state.get("config"), trust))
    cfg, applied = _resolve_resume(run_dir, state, changes, config, sources)
    check_device_available(cfg.train.device)
    check_loggers(cfg.train.loggers)
    check_logger_files(run_dir, cfg.train.loggers, None if state is None else state.get("config"))
    lock = _on_main(lambda: open_run_dir(run_dir))
    try:
        fresh = load_commit(run_dir, trust)  # under the lock: the commit a finished writer left
        moved = fresh is not None and state is not None and int(fresh["epoch"]) != int(state["epoch"])
        if (fresh is None) != (state is None) or moved:
            state = fresh
            check_run_code(run_dir, None if state is None else state.get("config"), trust)
            cfg, applied = _resolve_resume(run_dir, state, changes, config, sources)

        def repair() -> None:
            repair_run_dir(run_dir, state)
            yaml_path = paths.config
            if not yaml_path.is_file() or yaml_path.read_text(encoding="utf-8", errors="replace") != cfg.to_yaml():
                atomic_write_text(yaml_path, cfg.to_yaml())
            if applied:
                done = 0 if state is None else int(state["epoch"])
                append_line(
                    paths.resumes,
                    json.dumps(
                        {
                            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                            "after_epoch": done,
                            "changes": {k: [old, new] for k, (old, new) in applied.items()},
                        }
                    ),
                )

        _on_main(repair)
        barrier()
        splits = splits if splits is not None else load_splits(cfg)
        if is_main() and not paths.dataset.is_file():
            _write_dataset_json(run_dir, splits)
        trainer = _build_trainer(cfg, splits)
        history: list[dict[str, Any]] = []
        if state is not None:
            trainer.load_state_dict(state)
            history = committed_history(state, run_dir)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return _train(cfg, run_dir, trainer, splits, history, lock, callbacks)


def _deep_update(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def _resolve_resume(
    run_dir: Path,
    state: dict[str, Any] | None,
    changes: dict[str, Any] | None,
    config: RunConfig | None,
    sources: dict[str, str] | None,
) -> tuple[RunConfig, dict[str, tuple[Any, Any]]]:
    """The config to continue with and the applied changes (refused ones raise)."""
    location = {"name": run_dir.name, "out_dir": str(run_dir.parent)}
    yaml_path = RunPaths(run_dir).config
    on_disk = load_yaml_mapping(yaml_path) if yaml_path.is_file() else None
    if state is not None and "config" in state:
        stored = RunConfig.from_dict({**state["config"], **location}).to_dict()
    elif on_disk is not None:  # before the first commit, or a run made by an older mmcoop
        stored = RunConfig.from_dict({**on_disk, **location}).to_dict()
    else:
        raise RunDirError(f"cannot resume: {yaml_path} is missing; start the run again with --overwrite")
    srcs: dict[str, str] = {}
    if config is not None:
        requested = {**config.to_dict(), **location}
    else:
        requested = copy.deepcopy(stored)
        if on_disk is not None:
            edited = RunConfig.from_dict({**on_disk, **location}).to_dict()
            srcs.update({k: "edited config.yaml" for k, v in flatten(edited).items() if flatten(stored).get(k) != v})
            requested = edited
        if changes:
            _deep_update(requested, changes)
            srcs.update({k: "command line" for k in flatten(changes)})
        requested = RunConfig.from_dict({**requested, **location}).to_dict()
    srcs.update(sources or {})
    done = 0 if state is None else int(state["epoch"])
    applied = plan_resume(stored, requested, done, srcs, where=str(run_dir))
    return RunConfig.from_dict(requested), applied


# -- training and the per-epoch commit -------------------------------------------------------
def _build_trainer(cfg: RunConfig, splits: DatasetSplits) -> Trainer:
    model = build_for(cfg, splits)
    method = build_method(cfg.method, cfg.method_options)
    trainer = Trainer(model, method, splits, cfg.train, seed=cfg.seed)  # refuses too many modalities first
    check_not_noop(method, cfg.train.epochs)  # before the run directory is created
    return trainer


class _Valuations(Callback):
    """Keeps the epoch's valuation table (the ``after_valuation`` event) until its commit."""

    def __init__(self) -> None:
        self.table: Any = None

    def after_valuation(self, trainer: Trainer, table: Any, plan: Any) -> None:
        self.table = table

    def pop(self) -> Any:
        table, self.table = self.table, None
        return table


def _train(
    cfg: RunConfig,
    run_dir: Path,
    trainer: Trainer,
    splits: DatasetSplits,
    history: list[dict[str, Any]],
    lock: FolderLock | None,
    callbacks: Sequence[Any] | None = None,
) -> RunResult:
    """Fit, committing every epoch, then write ``results.json``; releases ``lock`` at the end."""
    paths = RunPaths(run_dir)
    try:
        stored_config = cfg.to_dict()
        valuations = _Valuations()

        def on_epoch_end(record: dict[str, Any], tr: Trainer) -> None:
            table = valuations.pop()
            rank_states = all_gather_objects(tr.rank_state())  # every rank's RNG streams, restored rank by rank
            if not is_main():  # every rank keeps the history (compare reads it); rank 0 writes
                history.append(jsonable(record))
                return
            epoch = record["epoch"]
            if table is not None:
                table.to_parquet(paths.epoch_valuation(epoch))
            if record["is_best"]:  # before the commit: a kill here leaves a pending best.pt, repaired on resume
                atomic_torch_save(
                    {"model": tr.model.state_dict(), "method_modules": tr.extra.state_dict(), "epoch": epoch},
                    paths.best_checkpoint,
                )
            history.append(append_metrics(run_dir, record))
            state = tr.state_dict()
            state.update(
                config=stored_config,
                history=list(history),
                format=2,
                rank_states=rank_states if len(rank_states) > 1 else None,
            )
            atomic_torch_save(state, paths.last_checkpoint)  # the commit point of this epoch

        # the run's commit first, then the train.loggers, the console line and the caller's callbacks
        trainer.callbacks.callbacks[:0] = [
            valuations,
            EpochEndFunction(on_epoch_end),
            *build_loggers(cfg.train.loggers, run_dir, stored_config),
        ]
        trainer.callbacks.callbacks.extend(callbacks or [])
        trainer.fit()
        trainer.load_best()
        test = trainer.evaluate(trainer.splits.test, "test")
        secs = [r["seconds"] for r in history if r.get("seconds") is not None]
        results = {f"test_{k}": v for k, v in test.items()}
        results.update(
            best_epoch=trainer.best_epoch,
            best_val_acc=trainer.best_val,
            seconds_per_epoch=sum(secs) / len(secs) if secs else None,
            epochs=len(history),
        )
        if is_main():
            atomic_write_text(paths.results, json.dumps(results, indent=2))
            for msg in stale_derived(run_dir):  # e.g. a resume found a better epoch than `mmcoop value` saw
                warnings.warn(msg, UserWarning, stacklevel=2)
        barrier()  # every rank returns after results.json exists
    finally:
        if lock is not None:
            lock.release()
    return RunResult(run_dir, cfg, trainer.model, splits, history, test)


# -- reading a run ---------------------------------------------------------------------------
def _commit_for(run_dir: Path, checkpoint: str, trust: bool) -> dict[str, Any] | None:
    """The commit record to load ``checkpoint`` with; ``None`` when ``best.pt`` is used without it.

    A damaged ``last.pt`` does not keep an intact ``best.pt`` from being read (with the config
    ``config.yaml`` shows, and a warning); a refusal never advises ``--overwrite``, which would
    discard ``best.pt``.
    """
    paths = RunPaths(run_dir)
    try:
        return load_commit(run_dir, trust)
    except UnreadableCommit as e:
        reason = str(e).split("; the run cannot be resumed")[0]
        best_ok = _readable(paths.best_checkpoint)
        if checkpoint == "best" and best_ok:
            warnings.warn(
                f"{reason}; using {paths.best_checkpoint} with the config in {paths.config}",
                MMCoopWarning,
                stacklevel=3,
            )
            return None
        advice = (
            f"`mmcoop value {run_dir} --checkpoint best` reads the intact {paths.best_checkpoint}"
            if best_ok
            else "restore it from a copy of the run (no checkpoint of this run can be read)"
        )
        raise DataError(f"{reason}; {advice}") from None


def _readable(path: Path) -> bool:
    """Whether a checkpoint file loads (as tensors and plain containers) and names its epoch."""
    try:
        return path.is_file() and "epoch" in load_checkpoint(path)
    except Exception:  # noqa: BLE001 - damaged or refused: not usable here
        return False


def _warn_untrusted_code(runs: dict[str, Any]) -> None:
    """Say which code named only in the commit record runs under ``--trust-run``."""
    if runs:
        shown = ", ".join(f"{k}={v!r}" for k, v in runs.items())
        warnings.warn(
            f"--trust-run: running code that config.yaml does not show, named in checkpoints/last.pt: {shown}",
            MMCoopWarning,
            stacklevel=3,
        )


def load_run(
    run_dir: str | Path,
    checkpoint: str = "best",
    trust: bool = False,
) -> tuple[RunConfig, nn.Module, DatasetSplits]:
    """Config, model (``best`` or ``last`` weights) and data of an existing run directory.

    The weights are those of the run's commit record: when ``best.pt`` names another
    epoch than ``last.pt`` (a run killed between the two writes), the committed best
    weights kept in ``last.pt`` are used.

    Checkpoints are loaded as tensors and plain containers only; a file holding other
    objects is refused unless ``trust`` (see `mmcoop.utils.io.load_checkpoint`).
    The config's ``model.target`` / ``data.target``, if any, *are* imported and called:
    config targets run code by design, so read ``config.yaml`` before loading a run from
    someone else. The code that runs is the code ``config.yaml`` shows: a commit record
    naming other targets is refused unless ``trust`` (then a warning names what runs; see
    `mmcoop.experiment.safety.check_run_code`).

    Raises:
        RunDirError: a checkpoint refused as untrusted, or naming other code than config.yaml.
    """
    run_dir = Path(run_dir)
    paths = RunPaths(run_dir)
    cfg_path = paths.config
    if not cfg_path.exists():
        raise MMCoopError(f"{run_dir} is not a run directory (no config.yaml); pass a directory made by `mmcoop train`")
    if checkpoint not in ("best", "last"):
        raise ConfigError(f"checkpoint must be best or last, got {checkpoint!r}")
    commit = _commit_for(run_dir, checkpoint, trust)
    stored = None if commit is None else commit.get("config")
    _warn_untrusted_code(check_run_code(run_dir, stored, trust))  # before anything is imported
    if stored is not None:  # the config it was trained with: it names the code config.yaml shows
        cfg = RunConfig.from_dict({**stored, "name": run_dir.name, "out_dir": str(run_dir.parent)})
    else:
        cfg = RunConfig.from_yaml(cfg_path)
    ckpt = paths.checkpoint(checkpoint)
    if not ckpt.exists():
        raise MMCoopError(f"checkpoint {ckpt} does not exist; has the run finished an epoch?")
    try:
        state = commit if checkpoint == "last" and commit is not None else load_checkpoint(ckpt, trust)
    except RunDirError:
        raise
    except Exception as e:  # noqa: BLE001
        raise DataError(
            f"checkpoint {ckpt} cannot be read ({e}); resume the run (mmcoop train --resume) to rewrite it"
        ) from None
    weights = state["model"]
    if (
        checkpoint == "best"
        and commit is not None
        and commit.get("best_state") is not None
        and int(commit["best_epoch"]) != int(state["epoch"])
    ):
        weights = commit["best_state"]["model"]  # best.pt is ahead of the commit (killed between the two writes)
    splits = load_splits(cfg)
    model = build_for(cfg, splits, probe=False)
    model.load_state_dict(weights)
    model.eval()
    return cfg, model, splits
