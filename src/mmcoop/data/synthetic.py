"""``synthetic``: Gaussian class clusters seen through M noisy vector views (no files needed).

Each view k of a sample of class y is ``mu_k[y] + noise_k * N(0, I)``; ``noise`` sets
how informative each view is, so imbalance between modalities is controllable. Used
by fast tests and as a smoke-test dataset.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mmcoop.data.base import DatasetSplits, ModalitySpec, MultimodalDataset
from mmcoop.data.registry import DATASETS
from mmcoop.errors import ConfigError


@DATASETS.register("synthetic")
def load_synthetic(
    *,
    data_root: Path | None,
    seed: int,
    num_modalities: int = 2,
    num_classes: int = 4,
    dim: int = 8,
    noise: tuple[float, ...] | list[float] = (1.0, 2.0),
    sizes: tuple[int, int, int] | list[int] = (400, 100, 100),
) -> DatasetSplits:
    """Splits of sizes ``sizes`` (train, val, test); modalities ``m0..m{M-1}`` of width ``dim``.

    Args:
        noise: noise std per view (length ``num_modalities``; a single value is repeated).
    """
    noise = list(noise) if len(noise) == num_modalities else [float(noise[0])] * num_modalities
    if num_modalities < 1 or num_classes < 2 or len(sizes) != 3:
        raise ConfigError("synthetic: need num_modalities >= 1, num_classes >= 2 and sizes of length 3")
    g = torch.Generator().manual_seed(seed + 12345)
    names = [f"m{k}" for k in range(num_modalities)]
    centers = torch.randn(num_modalities, num_classes, dim, generator=g) * 1.5

    def make(n: int) -> MultimodalDataset:
        y = torch.arange(n) % num_classes
        y = y[torch.randperm(n, generator=g)]
        inputs = {
            name: centers[k, y] + noise[k] * torch.randn(n, dim, generator=g) for k, name in enumerate(names)
        }
        specs = [ModalitySpec(name, "vector", (dim,)) for name in names]
        return MultimodalDataset(inputs, y, num_classes, specs)

    train, val, test = (make(int(n)) for n in sizes)
    return DatasetSplits("synthetic", train, val, test, {"source": "generated", "noise": noise, "seed": seed})
