"""Debiased variant of any dataset: per sample, one modality is degraded.

In every split independently (seeded by ``(seed, split)``), each sample gets one
modality ``k`` drawn from the eligible ``modalities`` so that each is degraded for
``N/E`` samples (exactly balanced up to one; ``E`` eligible modalities, random
assignment). So the dataset is balanced globally but not per sample — the situation
MM-Debiased was built to show. The degraded modality's index (in
``splits.modalities``) is stored in ``extras["degraded"]`` (int64), so valuations can
be scored against ground truth. With ``s = strength``:

- ``mode="noise"``: ``x' = (1 - s) * x + s * sigma_k * eps``, ``eps ~ N(0, 1)`` per
  element, ``sigma_k`` = std of modality ``k`` over all elements of the *training*
  split (before degradation).
- ``mode="blank"``: ``x' = (1 - s) * x`` (``s = 1`` -> zeros).

``strength=0`` returns the same values (the ``degraded`` extra is still recorded).
"""

from __future__ import annotations

from typing import Sequence

import torch

from mmcoop.data.base import DatasetSplits, MultimodalDataset
from mmcoop.data.sources import rng
from mmcoop.errors import ConfigError

MODES = ("noise", "blank")
_SPLITS = ("train", "val", "test")


def debias(
    splits: DatasetSplits,
    *,
    strength: float = 0.8,
    mode: str = "noise",
    seed: int = 0,
    modalities: Sequence[str] | None = None,
) -> DatasetSplits:
    """Degrade one modality per sample (see the module docstring).

    Args:
        splits: the dataset to degrade (not modified).
        strength: degradation strength in ``[0, 1]``.
        mode: ``"noise"`` or ``"blank"``.
        seed: seeds the choice of modality and the noise.
        modalities: modalities that may be degraded (default: all).

    Returns:
        New :class:`DatasetSplits` named ``"<name>-debiased"`` with ``extras["degraded"]``
        and ``info["debias"]`` recording the parameters.

    Raises:
        ConfigError: invalid strength, mode or modality names, or already debiased.
    """
    if not 0.0 <= float(strength) <= 1.0:
        raise ConfigError(f"debias strength must be in [0, 1], got {strength}")
    if mode not in MODES:
        raise ConfigError(f"unknown debias mode {mode!r}; valid modes: {', '.join(MODES)}")
    names = splits.modalities
    chosen = list(names) if modalities is None else list(modalities)
    bad = [m for m in chosen if m not in names]
    if bad or not chosen or len(set(chosen)) != len(chosen):
        raise ConfigError(f"invalid debias modalities {chosen}: each must be one of {', '.join(names)}, "
                          "without repeats, at least one")
    if any("degraded" in splits.split(k).extras for k in _SPLITS):
        raise ConfigError(f"dataset {splits.name!r} is already debiased (it has a 'degraded' extra)")
    eligible = torch.tensor([names.index(m) for m in chosen], dtype=torch.long)
    sigma = {m: float(splits.train.inputs[m].float().std()) if splits.train.num_samples > 1 else 1.0
             for m in chosen}
    s = float(strength)
    parts = {}
    for i, k in enumerate(_SPLITS):
        ds = splits.split(k)
        n = ds.num_samples
        g = torch.Generator().manual_seed(int(rng(seed, 11, i).integers(2**62)))
        degraded = eligible[(torch.arange(n) % len(eligible))[torch.randperm(n, generator=g)]]
        inputs = dict(ds.inputs)
        for m in chosen:
            x = ds.inputs[m].clone()
            mask = (degraded == names.index(m)).to(x.device)
            if mode == "noise":
                eps = torch.randn((int(mask.sum()), *x.shape[1:]), generator=g).to(x.device, x.dtype)
                x[mask] = (1 - s) * x[mask] + s * sigma[m] * eps
            else:
                x[mask] = (1 - s) * x[mask]
            inputs[m] = x
        extras = {**ds.extras, "degraded": degraded.to(ds.labels.device)}
        parts[k] = MultimodalDataset(inputs, ds.labels, ds.num_classes, ds.specs, extras, ds.rows, ds.keep)
    info = {**splits.info, "base_name": splits.name,
            "debias": {"strength": s, "mode": mode, "seed": seed, "modalities": chosen, "noise_std": sigma}}
    return DatasetSplits(f"{splits.name}-debiased", parts["train"], parts["val"], parts["test"], info)
