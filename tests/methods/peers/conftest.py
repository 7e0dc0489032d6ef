"""Fixtures of the peer-method tests.

- Imports :mod:`mmcoop.methods.peers` so the peers are registered (until ``mmcoop.methods``
  imports it itself).
- ``run_peer``: train a peer end to end with :func:`mmcoop.experiment.run_experiment` on a
  small ``synthetic`` dataset (``M`` modalities, view noise 1, 2, 3, ...: ``m0`` strongest).
- ``peer_trainer``: a :class:`~mmcoop.train.Trainer` with a peer on the same data, its model in
  eval mode (no dropout: gradients recomputed by hand match), and ``first_batch`` of its
  training split, to call the method's hooks directly on one batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import mmcoop.methods.peers  # noqa: F401  (registers the peer methods)
from mmcoop.data.base import Batch, batch_to, make_loader
from mmcoop.datasets.synthetic import load_synthetic
from mmcoop.experiment import RunConfig, RunResult, run_experiment
from mmcoop.methods import build_method
from mmcoop.models import build_model
from mmcoop.train import TrainConfig, Trainer

SIZES = [128, 64, 64]  # train / val / test: 4 training batches of 32


def synthetic_options(num_modalities: int) -> dict[str, Any]:
    return {"num_modalities": num_modalities, "sizes": SIZES, "noise": [1.0 + k for k in range(num_modalities)]}


@pytest.fixture
def run_peer(tmp_path: Path) -> Callable[..., RunResult]:
    """``run_peer(method, options=None, num_modalities=2, epochs=2, out=None, resume=False)``."""

    def run(
        method: str,
        options: dict[str, Any] | None = None,
        num_modalities: int = 2,
        epochs: int = 2,
        out: Path | None = None,
        resume: bool = False,
    ) -> RunResult:
        cfg = RunConfig.from_dict(
            {
                "dataset": "synthetic",
                "dataset_options": synthetic_options(num_modalities),
                "method": method,
                "method_options": dict(options or {}),
                "train": {"epochs": epochs, "progress": False, "batch_size": 32},
                "out_dir": str(out or tmp_path),
                "name": method,
            }
        )
        return run_experiment(cfg, resume=resume)

    return run


@pytest.fixture
def peer_trainer() -> Callable[..., Trainer]:
    """``peer_trainer(method, options=None, num_modalities=2)``: a Trainer whose model is in eval mode."""

    def make(method: str, options: dict[str, Any] | None = None, num_modalities: int = 2) -> Trainer:
        splits = load_synthetic(data_root=None, seed=0, **synthetic_options(num_modalities))
        torch.manual_seed(0)
        model = build_model(splits.specs, splits.num_classes, dim=8, fusion="concat")
        config = TrainConfig(epochs=1, batch_size=32, lr=1e-2, progress=False, device="cpu")
        trainer = Trainer(model, build_method(method, options), splits, config, seed=0)
        trainer.model.eval()
        return trainer

    return make


def first_batch(trainer: Trainer, size: int = 32) -> Batch:
    """The first training batch (fixed order)."""
    return batch_to(next(iter(make_loader(trainer.splits.train, size))), trainer.device)


@pytest.fixture
def batch_of() -> Callable[..., Batch]:
    return first_batch
