"""Shared by tests/enhance/test_online.py, its torchrun worker and tests/methods/test_online_valuation.py: the compared runs and a
trainer whose weights never move (learning rate 0) on a model without dropout/BatchNorm."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmcoop.data.base import DatasetSplits, MultimodalDataset
from mmcoop.methods import build_method
from mmcoop.models import from_modules
from mmcoop.train import TrainConfig, Trainer

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "sample-weighted": ("sample-level", {"warmup": 1, "execution": "weighted", "valuation": "online"}),
    "sample-duplicate": ("sample-level", {"warmup": 1, "execution": "duplicate", "valuation": "online"}),
    "modality-weighted": (
        "modality-level",
        {"warmup": 1, "execution": "weighted", "valuation": "online", "part_ratio": 0.5},
    ),
}


class Head(nn.Module):
    def __init__(self, width: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, classes)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.fc(torch.cat(feats, 1))


def plain_model(data: MultimodalDataset, seed: int = 0) -> nn.Module:
    """A user late-fusion model (``from_modules``) without dropout or BatchNorm."""
    torch.manual_seed(seed)
    enc = {s.name: nn.Sequential(nn.Linear(s.shape[0], 8), nn.ReLU(), nn.Linear(8, 6)) for s in data.specs}
    return from_modules(enc, Head(6 * len(enc), data.num_classes), num_classes=data.num_classes)


def frozen_trainer(
    name: str,
    options: dict[str, Any],
    data: MultimodalDataset,
    epochs: int = 3,
    batch_size: int = 16,
    amp: str = "none",
    callbacks: list[Any] | None = None,
) -> Trainer:
    """The real loop with the optimizer's learning rate set to 0 (the same weights every epoch)."""
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, eval_batch_size=batch_size, progress=False, device="cpu", amp=amp
    )
    trainer = Trainer(
        plain_model(data),
        build_method(name, options),
        DatasetSplits("tiny", data, data, data),
        config,
        seed=3,
        callbacks=callbacks,
    )
    for group in trainer.optimizer.param_groups:
        group["lr"] = 0.0
    return trainer
