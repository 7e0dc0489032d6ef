"""Coalitions of modalities as bitmasks.

Coalition ``c`` (an integer in ``[0, 2**M)``) contains modality ``k`` iff bit ``k``
of ``c`` is set: ``(c >> k) & 1``. Row 0 of `coalition_masks` is the empty
coalition, row ``2**M - 1`` the full one, row ``1 << k`` the singleton ``{k}``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import torch
from torch import Tensor

#: Largest ``M`` for which the full coalition table (``2**M`` rows) may be built.
MAX_TABLE_MODALITIES = 24


def _check_m(num_modalities: int, limit: int = MAX_TABLE_MODALITIES) -> int:
    m = int(num_modalities)
    if m < 1 or m > limit:
        raise ValueError(
            f"number of modalities must be in [1, {limit}] for a full coalition table, got {num_modalities}"
        )
    return m


@lru_cache(maxsize=64)
def _masks_cached(m: int, device: torch.device | None) -> Tensor:
    c = torch.arange(2**m, dtype=torch.int64)
    bits = torch.arange(m, dtype=torch.int64)
    return ((c.unsqueeze(1) >> bits) & 1).to(torch.bool).to(device)


def coalition_masks(num_modalities: int, device: torch.device | str | None = None) -> Tensor:
    """All ``2**M`` coalitions as a boolean table.

    Args:
        num_modalities: ``M`` (1 to 24).
        device: device of the result (default CPU).

    Returns:
        bool ``[2**M, M]``: row ``c`` has modality ``k`` present iff ``(c >> k) & 1``.
            The tensor is cached per ``(M, device)``: treat it as read-only.
    """
    m = _check_m(num_modalities)
    return _masks_cached(m, None if device is None else torch.device(device))


def coalition_sizes(num_modalities: int, device: torch.device | str | None = None) -> Tensor:
    """Size ``|S|`` of every coalition: int64 ``[2**M]``."""
    return coalition_masks(num_modalities, device).sum(1)


def masks_to_index(masks: Tensor) -> Tensor:
    """Bitmask index of coalitions given as boolean masks.

    Args:
        masks: bool ``[..., M]`` with ``M <= 62``.

    Returns:
        int64 ``[...]``: ``sum_k masks[..., k] << k``.
    """
    m = masks.shape[-1]
    if m > 62:
        raise ValueError(f"bitmask indices need M <= 62 modalities, got {m}")
    weights = torch.ones(m, dtype=torch.int64, device=masks.device) << torch.arange(m, device=masks.device)
    return (masks.to(torch.int64) * weights).sum(-1)


def index_to_masks(index: Tensor, num_modalities: int) -> Tensor:
    """Inverse of `masks_to_index`: int64 ``[...]`` -> bool ``[..., M]``."""
    bits = torch.arange(num_modalities, device=index.device, dtype=torch.int64)
    return ((index.to(torch.int64).unsqueeze(-1) >> bits) & 1).to(torch.bool)


def full_index(num_modalities: int) -> int:
    """Index of the full coalition, ``2**M - 1``."""
    return (1 << int(num_modalities)) - 1


def singleton_index(k: int) -> int:
    """Index of the coalition ``{k}``, ``1 << k``."""
    return 1 << int(k)


def coalition_name(mask: Sequence[bool] | Tensor, modalities: Sequence[str]) -> str:
    """Readable name of one coalition: ``"audio+visual"``, ``"audio"``, ``"empty"``.

    Args:
        mask: bool ``[M]``.
        modalities: the ``M`` modality names.
    """
    flags = [bool(x) for x in (mask.tolist() if isinstance(mask, Tensor) else mask)]
    if len(flags) != len(modalities):
        raise ValueError(f"mask has {len(flags)} entries but there are {len(modalities)} modalities")
    names = [name for name, f in zip(modalities, flags) if f]
    return "+".join(names) if names else "empty"


def coalition_names(modalities: Sequence[str], masks: Tensor | None = None) -> list[str]:
    """Names of coalitions (default: all ``2**M`` in bitmask order).

    Args:
        modalities: the ``M`` modality names.
        masks: bool ``[K, M]``; ``None`` = `coalition_masks` of ``M``.

    Returns:
        ``K`` names, e.g. ``["empty", "audio", "visual", "audio+visual"]`` for M=2.
    """
    if masks is None:
        masks = coalition_masks(len(modalities))
    return [coalition_name(row, modalities) for row in masks.cpu()]


def find_coalition(masks: Tensor, members: Sequence[int] | Tensor) -> int:
    """Row of ``masks [K, M]`` equal to the coalition with modality indices ``members``.

    Raises:
        KeyError: when no row matches.
    """
    target = torch.zeros(masks.shape[1], dtype=torch.bool)
    idx = torch.as_tensor(list(members) if not isinstance(members, Tensor) else members, dtype=torch.long)
    if idx.numel():
        target[idx] = True
    hits = (masks.cpu().bool() == target).all(1).nonzero(as_tuple=True)[0]
    if hits.numel() == 0:
        raise KeyError(f"coalition {target.tolist()} is not among the {masks.shape[0]} coalitions")
    return int(hits[0])
