"""Dataset registry: ``@DATASETS.register(name)`` on a loader function.

A loader has the signature ``load(data_root: Path | None, seed: int, **options) ->
DatasetSplits`` and raises `mmcoop.errors.DataError` with a clear message
when data is missing or corrupt.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable

import torch

from mmcoop.data.base import DatasetSplits
from mmcoop.data.finite import check_split_finite
from mmcoop.errors import ConfigError, DataError
from mmcoop.utils.registry import Registry

Loader = Callable[..., DatasetSplits]
DATASETS: Registry[Loader] = Registry("dataset", builtins="mmcoop.datasets", group="mmcoop.datasets")


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path | None:
    """The data root: the explicit argument, else ``$MMCOOP_DATA``, else ``None``."""
    root = data_root if data_root not in (None, "") else os.environ.get("MMCOOP_DATA")
    return Path(root).expanduser().resolve() if root else None


def dataset_options(name: str) -> dict[str, Any]:
    """Valid options (name -> default) of dataset ``name``."""
    sig = inspect.signature(DATASETS.get(name))
    return {
        k: p.default for k, p in sig.parameters.items() if k not in ("data_root", "seed") and p.kind is p.KEYWORD_ONLY
    }


def load_dataset(name: str, data_root: str | os.PathLike | None = None, seed: int = 0, **options: Any) -> DatasetSplits:
    """Load dataset ``name`` (see `DATASETS`) with validated ``options``."""
    loader = DATASETS.get(name)
    valid = dataset_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} for dataset {name!r}; valid options: {', '.join(sorted(valid)) or '(none)'}"
        )
    splits = loader(data_root=resolve_data_root(data_root), seed=seed, **options)
    check_finite(splits)
    return splits


def check_finite(splits: DatasetSplits, lazy_samples: int = 256, chunk: int = 64) -> None:
    """Raise `DataError` naming the split, modality and first sample with NaN/inf inputs.

    In-memory splits are checked whole. Lazy sources (files, memory-mapped arrays, user
    datasets) would have to be decoded completely, so only ``lazy_samples`` evenly
    spaced samples per split are fetched (eval transforms, in chunks of ``chunk``); the
    message then says how many were checked. ``lazy_samples=0`` skips lazy splits.
    """
    for split in ("train", "val", "test"):
        data = splits.split(split)
        if len(data) == 0:
            raise DataError(
                f"dataset {splits.name!r}: the {split} split is empty; check the data folder and the options "
                "that size the splits"
                + (" (a val split carved from train: dataset_options.val_fraction)" if split == "val" else "")
            )
        n = data.num_samples
        k = n if data.in_memory else min(int(lazy_samples), n)
        if k <= 0:
            continue
        rows = None if data.in_memory else torch.linspace(0, n - 1, k).round().long().unique()
        check_split_finite(data, splits.name, split, splits.info.get("source", "unknown source"), rows, chunk)
