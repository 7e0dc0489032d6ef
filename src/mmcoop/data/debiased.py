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

Splits held in memory (`TensorSource`) are degraded
once, up front. Any other source is wrapped in a
`DegradedSource` that degrades each batch at fetch
time, after the source's transforms, with the same assignment of ``degraded`` and
noise that depends only on ``(seed, split, sample, element)`` (counter-based, so the
same in every epoch, batch and worker; not the same numbers as the in-memory path).
There ``sigma_k`` is estimated from at most ``sigma_samples`` evenly spaced training
samples fetched in eval mode (``info["debias"]["noise_std_samples"]`` records how many).
"""

from __future__ import annotations

from typing import Sequence

import torch

from mmcoop.data.base import DatasetSplits, MultimodalDataset
from mmcoop.data.degraded_source import DegradedSource
from mmcoop.data.protocol import INTEGER_KINDS
from mmcoop.data.tensor_source import TensorSource
from mmcoop.data.storage import rng
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
    sigma_samples: int = 512,
) -> DatasetSplits:
    """Degrade one modality per sample (see the module docstring).

    Args:
        splits: the dataset to degrade (not modified).
        strength: degradation strength in ``[0, 1]``.
        mode: ``"noise"`` or ``"blank"``.
        seed: seeds the choice of modality and the noise.
        modalities: modalities that may be degraded (default: all but ``tokens`` ones, whose
            ids cannot be scaled or noised).
        sigma_samples: lazy sources only: training samples used to estimate ``sigma_k``.

    Returns:
        New `DatasetSplits` named ``"<name>-debiased"`` with ``extras["degraded"]``
            and ``info["debias"]`` recording the parameters.

    Raises:
        ConfigError: invalid strength, mode or modality names, or already debiased.
    """
    if not 0.0 <= float(strength) <= 1.0:
        raise ConfigError(f"debias strength must be in [0, 1], got {strength}")
    if mode not in MODES:
        raise ConfigError(f"unknown debias mode {mode!r}; valid modes: {', '.join(MODES)}")
    names = splits.modalities
    discrete = [s.name for s in splits.specs if s.kind in INTEGER_KINDS]
    chosen = [m for m in names if m not in discrete] if modalities is None else list(modalities)
    if any(m in discrete for m in chosen):
        raise ConfigError(
            f"debias adds noise to or scales continuous inputs; modalities {[m for m in chosen if m in discrete]} "
            "hold token ids: leave them out of the debias modalities"
        )
    bad = [m for m in chosen if m not in names]
    if bad or not chosen or len(set(chosen)) != len(chosen):
        raise ConfigError(
            f"invalid debias modalities {chosen}: each must be one of {', '.join(names)}, without repeats, at least one"
        )
    if any("degraded" in splits.split(k).extras for k in _SPLITS):
        raise ConfigError(f"dataset {splits.name!r} is already debiased (it has a 'degraded' extra)")
    eligible = torch.tensor([names.index(m) for m in chosen], dtype=torch.long)
    lazy = not isinstance(splits.train.source, TensorSource)
    sigma_n = min(int(sigma_samples), splits.train.num_samples) if lazy else splits.train.num_samples
    sigma = (
        _lazy_sigma(splits.train, chosen, sigma_n)
        if lazy
        else {m: float(splits.train.inputs[m].float().std()) if splits.train.num_samples > 1 else 1.0 for m in chosen}
    )
    s = float(strength)
    parts = {}
    for i, k in enumerate(_SPLITS):
        ds = splits.split(k)
        n = ds.num_samples
        g = torch.Generator().manual_seed(int(rng(seed, 11, i).integers(2**62)))
        degraded = eligible[(torch.arange(n) % len(eligible))[torch.randperm(n, generator=g)]]
        if not isinstance(ds.source, TensorSource):
            key = int(rng(seed, 12, i).integers(2**62))
            src = DegradedSource(
                ds.source, degraded, eligible.tolist(), mode, s, {names.index(m): sigma[m] for m in chosen}, key
            )
            parts[k] = MultimodalDataset.from_source(src, ds.rows, ds.keep, ds.train)
            continue
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
        src = TensorSource(
            inputs,
            ds.labels,
            ds.num_classes,
            ds.specs,
            extras,
            ds.source.transforms,
            ids=ds.source.ids,
            waveforms=ds.source._waveforms,
        )
        parts[k] = MultimodalDataset.from_source(src, ds.rows, ds.keep, ds.train)
    info = {
        **splits.info,
        "base_name": splits.name,
        "debias": {
            "strength": s,
            "mode": mode,
            "seed": seed,
            "modalities": chosen,
            "noise_std": sigma,
            **({"noise_std_samples": sigma_n} if lazy else {}),
        },
    }
    return DatasetSplits(f"{splits.name}-debiased", parts["train"], parts["val"], parts["test"], info)


def _lazy_sigma(train: MultimodalDataset, chosen: Sequence[str], count: int, chunk: int = 64) -> dict[str, float]:
    """Std of each chosen modality over ``count`` evenly spaced training samples (eval transforms).

    Fetched in chunks of ``chunk`` samples; sums in float64 (unbiased std, like ``Tensor.std``).
    """
    if count <= 1:
        return {m: 1.0 for m in chosen}
    rows = torch.linspace(0, train.num_samples - 1, count).round().long().unique()
    acc = {m: torch.zeros(3, dtype=torch.float64) for m in chosen}  # count, sum, sum of squares
    for start in range(0, len(rows), chunk):
        got = train.source.fetch(rows[start : start + chunk], False)["inputs"]
        for m in chosen:
            x = got[m].double().cpu()
            acc[m] += torch.stack([torch.tensor(float(x.numel()), dtype=torch.float64), x.sum(), (x * x).sum()])
    out = {}
    for m, (n, s1, s2) in acc.items():
        var = (s2 - s1 * s1 / n) / max(float(n) - 1, 1.0)
        out[m] = float(var.clamp_min(0).sqrt())
    return out
