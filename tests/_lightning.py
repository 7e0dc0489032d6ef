"""The data and head of the Lightning tests (``tests/integrations``), shared by the single-process
tests and the DDP worker script (which puts this folder on ``sys.path`` itself)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset


class Items(Dataset):
    """Two modalities of dict items: ``a`` separates the 3 classes, ``b`` mostly noise (so ``b`` gets the units)."""

    def __init__(self, n: int = 96, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % 3
        self.a = 2.0 * nn.functional.one_hot(self.y, 3).float() + torch.randn(n, 3, generator=g)
        self.b = 0.3 * self.y[:, None].float() + torch.randn(n, 5, generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return {"inputs": {"a": self.a[i], "b": self.b[i]}, "label": int(self.y[i])}


class Head(nn.Module):
    """The fusion head: the list of the two 8-wide features -> 3 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 3)

    def forward(self, feats):
        return self.fc(torch.cat(feats, 1))
