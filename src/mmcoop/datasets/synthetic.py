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
    noise: tuple[float, ...] | list[float] | float | None = None,
    sizes: tuple[int, int, int] | list[int] = (400, 100, 100),
) -> DatasetSplits:
    """Splits of sizes ``sizes`` (train, val, test); modalities ``m0..m{M-1}`` of width ``dim``.

    Args:
        noise: noise std per view: ``num_modalities`` values, or one value used for every view
            (default: ``[1, 2]`` for two views, ``1`` for every view otherwise).
        sizes: samples in (train, val, test), each >= 1.

    Raises:
        ConfigError: a noise list of another length, negative noise, or a bad size.
    """
    if num_modalities < 1 or num_classes < 2 or dim < 1:
        raise ConfigError(
            f"synthetic: need num_modalities >= 1, num_classes >= 2 and dim >= 1, got "
            f"num_modalities={num_modalities}, num_classes={num_classes}, dim={dim}"
        )
    if noise is None:  # the default: view 0 clean, view 1 noisier (two views); equal views otherwise
        noise = [1.0, 2.0] if num_modalities == 2 else [1.0]
    noise = [noise] if isinstance(noise, (int, float)) else list(noise)
    if len(noise) not in (1, num_modalities):
        raise ConfigError(
            f"synthetic: dataset_options.noise has {len(noise)} values for {num_modalities} modalities; "
            f"give one value per modality (num_modalities={num_modalities}) or a single value"
        )
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in noise):
        raise ConfigError(f"synthetic: dataset_options.noise must hold numbers >= 0, got {noise}")
    noise = [float(v) for v in noise] * (num_modalities if len(noise) == 1 else 1)
    if len(sizes) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
        raise ConfigError(f"synthetic: dataset_options.sizes must be 3 integers >= 1 (train, val, test), got {sizes}")
    g = torch.Generator().manual_seed(seed + 12345)
    names = [f"m{k}" for k in range(num_modalities)]
    centers = torch.randn(num_modalities, num_classes, dim, generator=g) * 1.5

    def make(n: int) -> MultimodalDataset:
        y = torch.arange(n) % num_classes
        y = y[torch.randperm(n, generator=g)]
        inputs = {name: centers[k, y] + noise[k] * torch.randn(n, dim, generator=g) for k, name in enumerate(names)}
        specs = [ModalitySpec(name, "vector", (dim,)) for name in names]
        return MultimodalDataset(inputs, y, num_classes, specs)

    train, val, test = (make(int(n)) for n in sizes)
    return DatasetSplits("synthetic", train, val, test, {"source": "generated", "noise": noise, "seed": seed})
