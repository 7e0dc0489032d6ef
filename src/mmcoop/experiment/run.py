"""One run: build data, model and method from a :class:`RunConfig`, train, write ``runs/<name>/``.

Run directory::

    config.yaml            resolved config (repeat the run with `mmcoop train --config`)
    metrics.jsonl          one JSON line per epoch
    checkpoints/last.pt    everything to resume exactly (written atomically every epoch)
    checkpoints/best.pt    model weights of the best validation epoch
    valuation/epoch_XXX.parquet   per-sample valuations, for methods that valuate
    results.json           test metrics of the best-validation model (never used for selection)
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmcoop.data import DatasetSplits, debias, load_dataset
from mmcoop.errors import MMCoopError
from mmcoop.experiment.config import RunConfig
from mmcoop.methods import build_method
from mmcoop.experiment.user import user_splits
from mmcoop.models import create_model
from mmcoop.train import Trainer
from mmcoop.train.distributed import barrier, init_from_env, is_main
from mmcoop.utils.io import append_line, atomic_torch_save, atomic_write_text
from mmcoop.utils.seeding import seed_everything


@dataclass
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    config: RunConfig
    model: nn.Module
    splits: DatasetSplits
    history: list[dict[str, Any]]
    test: dict[str, float]


def load_splits(cfg: RunConfig) -> DatasetSplits:
    """The dataset of ``cfg`` (registered, or the user's ``data.target``), wrapped by the
    debiasing degradation when configured."""
    if cfg.data is not None:
        splits = user_splits(cfg.data.target, cfg.data.options, cfg.seed, name=cfg.dataset)
    else:
        splits = load_dataset(cfg.dataset, cfg.data_root, cfg.seed, **cfg.dataset_options)
    if cfg.debiased is not None:
        splits = debias(splits, strength=cfg.debiased.strength, mode=cfg.debiased.mode, seed=cfg.seed)
    return splits


def build_for(cfg: RunConfig, splits: DatasetSplits) -> nn.Module:
    """The model of ``cfg`` for ``splits`` (registered or ``model.target``; initialised from ``cfg.seed``)."""
    seed_everything(cfg.seed)
    return create_model(cfg.model.name, splits.specs, splits.num_classes, target=cfg.model.target,
                        **cfg.model.builder_options())


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (empty if absent)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in record.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        if isinstance(v, (int, float, str, bool, type(None), list)):
            out[k] = v
    return out


def run_experiment(
    cfg: RunConfig, resume: bool = False, overwrite: bool = False, splits: DatasetSplits | None = None
) -> RunResult:
    """Train ``cfg`` end to end and write its run directory.

    Args:
        cfg: the run configuration.
        resume: continue from ``checkpoints/last.pt`` of an existing run directory.
        overwrite: delete an existing run directory of the same name first.
        splits: pre-loaded data (e.g. shared across the runs of a comparison).

    Returns:
        :class:`RunResult` with the best-validation model and its test metrics.
    """
    init_from_env()  # no-op unless launched by torchrun
    run_dir = cfg.run_dir
    last = run_dir / "checkpoints" / "last.pt"
    if run_dir.exists() and not resume:
        if overwrite:
            if is_main():
                shutil.rmtree(run_dir)
        elif (run_dir / "metrics.jsonl").exists() or last.exists():
            raise MMCoopError(
                f"run directory {run_dir} already holds a run; pass --resume to continue it, "
                "--overwrite to replace it, or --name to start another"
            )
    if resume and not last.exists():
        raise MMCoopError(f"cannot resume: {last} does not exist (start the run without --resume)")

    splits = splits if splits is not None else load_splits(cfg)
    model = build_for(cfg, splits)
    method = build_method(cfg.method, cfg.method_options)
    trainer = Trainer(model, method, splits, cfg.train, seed=cfg.seed)
    history: list[dict[str, Any]] = []
    if resume:
        state = torch.load(last, map_location=trainer.device, weights_only=False)
        trainer.load_state_dict(state)
        history = [r for r in read_metrics(run_dir) if r["epoch"] <= trainer.epoch]
        if is_main():  # drop lines of an epoch whose checkpoint was never written
            atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    elif is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        atomic_write_text(run_dir / "dataset.json", json.dumps(_jsonable(splits.info) | {"name": splits.name}, indent=2))
    barrier()

    def on_epoch_end(record: dict[str, Any], tr: Trainer) -> None:
        table = record.pop("valuation_table", None)
        if not is_main():
            return
        if table is not None:
            table.to_parquet(run_dir / "valuation" / f"epoch_{record['epoch']:03d}.parquet")
        rec = _jsonable(record)
        history.append(rec)
        append_line(run_dir / "metrics.jsonl", json.dumps(rec))
        atomic_torch_save(tr.state_dict(), last)
        if record["is_best"]:
            atomic_torch_save({"model": tr.model.state_dict(), "epoch": record["epoch"]}, run_dir / "checkpoints" / "best.pt")

    trainer.fit(on_epoch_end)
    trainer.load_best()
    test = trainer.evaluate(trainer.splits.test, "test")
    secs = [r["seconds"] for r in history if "seconds" in r]
    results = {f"test_{k}": v for k, v in test.items()}
    results.update(
        best_epoch=trainer.best_epoch,
        best_val_acc=trainer.best_val,
        seconds_per_epoch=sum(secs) / len(secs) if secs else None,
        epochs=len(history),
    )
    if is_main():
        atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2))
    barrier()  # every rank returns after results.json exists
    return RunResult(run_dir, cfg, trainer.model, splits, history, test)


def load_run(run_dir: str | Path, checkpoint: str = "best") -> tuple[RunConfig, nn.Module, DatasetSplits]:
    """Config, model (``best`` or ``last`` weights) and data of an existing run directory."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.exists():
        raise MMCoopError(f"{run_dir} is not a run directory (no config.yaml); pass a directory made by `mmcoop train`")
    cfg = RunConfig.from_yaml(cfg_path)
    ckpt = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if not ckpt.exists():
        raise MMCoopError(f"checkpoint {ckpt} does not exist; has the run finished an epoch?")
    splits = load_splits(cfg)
    model = build_for(cfg, splits)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    model.eval()
    return cfg, model, splits
