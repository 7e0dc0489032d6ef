"""NaN/inf inputs: found at load (every split, sampled for lazy sources) and again where a split is used.

A non-finite input makes its sample's loss, accuracy and Shapley values meaningless without an
error of its own; the checks here name the dataset, split, modality and first sample instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmcoop.data.base import MultimodalDataset
from mmcoop.errors import DataError


def non_finite(data: MultimodalDataset, rows: Tensor | None = None, chunk: int = 64) -> tuple[str, Tensor] | None:
    """The first modality holding NaN/inf inputs and the source rows that do, else ``None``.

    Args:
        data: a split; in-memory storage is checked whole, a lazy source is fetched (eval transforms).
        rows: source rows of a lazy source to fetch ``[R]`` (default: every sample).
        chunk: samples per fetch.

    Returns:
        ``(modality, bad_rows [K])`` for the first modality with a bad sample, or ``None``.
    """
    if data.in_memory:
        for modality, t in data.inputs.items():
            if t.is_floating_point() or t.is_complex():
                bad = (~torch.isfinite(t.reshape(t.shape[0], -1)).all(1)).nonzero().flatten()
                if len(bad):
                    return modality, bad
        return None
    rows = torch.arange(data.num_samples) if rows is None else rows
    found: dict[str, list[Tensor]] = {}
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        for modality, t in data.source.fetch(part, False)["inputs"].items():
            if t.is_floating_point() or t.is_complex():
                bad = ~torch.isfinite(t.reshape(t.shape[0], -1)).all(1).cpu()
                if bool(bad.any()):
                    found.setdefault(modality, []).append(part[bad])
    if not found:
        return None
    modality = next(iter(found))
    return modality, torch.cat(found[modality])


def check_split_finite(
    data: MultimodalDataset, dataset: str, split: str, source: object, rows: Tensor | None = None, chunk: int = 64
) -> None:
    """Raise `DataError` naming the dataset, split, modality and first sample with NaN/inf inputs.

    Args:
        data: the split.
        dataset: the dataset's name, for the message.
        split: ``train``, ``val`` or ``test``.
        source: where the data comes from (a folder, a config target), for the message.
        rows: for a lazy source, the rows to check (default: all); the message says how many were.
        chunk: samples per fetch of a lazy source.
    """
    hit = non_finite(data, rows, chunk)
    if hit is None:
        return
    modality, bad = hit
    checked = "" if rows is None or data.in_memory else f" (checked {len(rows)} of {data.num_samples} samples)"
    raise DataError(
        f"dataset {dataset!r}: {len(bad)} {split} sample(s) have NaN/inf {modality!r} inputs "
        f"(first: sample {int(bad.min())}){checked}; clean or drop them at the source ({source})"
    )


__all__ = ["check_split_finite", "non_finite"]
