"""Checks shared by the sources: labels, specs inferred from one sample, stacking per-sample tensors.

Every message names the source and the sample (item/record index) and says what to do.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from mmcoop.data.protocol import ModalitySpec, infer_kind
from mmcoop.errors import DataError


def as_labels(labels: Any, num_classes: int | None, where: str) -> tuple[Tensor, int]:
    """Labels as int64 ``[N]`` plus ``num_classes`` (``max + 1`` when not given), range-checked.

    An inferred class count must leave no class without a sample: a stray label 9 in 4-class data would
    otherwise silently make a 10-class model (declare ``num_classes`` when some classes truly have none).

    Args:
        labels: sequence, array or tensor of class indices ``[N]``.
        num_classes: number of classes, or ``None`` to infer.
        where: the source, for messages.

    Raises:
        DataError: non-integer labels, not 1-D, or out of ``[0, num_classes)``.
    """
    t = labels if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        if t.is_floating_point() and bool((t == t.round()).all()):
            t = t.round()
        else:
            raise DataError(f"{where}: labels must be integer class indices, got dtype {t.dtype}")
    if t.dim() != 1:
        raise DataError(f"{where}: labels must have shape [N], got {tuple(t.shape)}")
    t = t.long()
    inferred = num_classes is None
    if num_classes is None:
        num_classes = int(t.max()) + 1 if t.numel() else 0
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        if inferred:
            raise DataError(
                f"{where}: label {int(t.min())} (sample {int(t.argmin())}) is negative; labels must be class "
                "indices 0, 1, ..., C-1"
            )
        bad = int(((t < 0) | (t >= num_classes)).nonzero()[0, 0])
        raise DataError(
            f"label out of range: labels span [{int(t.min())}, {int(t.max())}] "
            f"but num_classes={num_classes}: label {int(t[bad])} (sample {bad}) is not one of the {num_classes} "
            f"classes 0..{num_classes - 1}; fix the labels or num_classes ({where})"
        )
    if inferred and t.numel():
        empty = (torch.bincount(t, minlength=num_classes) == 0).nonzero().flatten().tolist()
        if empty:
            top = int(t.max())
            raise DataError(
                f"{where}: label {top} (sample {int(t.argmax())}) makes {num_classes} classes, but "
                f"{len(empty)} of them have no sample (classes {_span(empty)}); labels must be class indices "
                "0, 1, ..., C-1: fix the label, or declare the class count (num_classes, e.g. a `num_classes` "
                "attribute of your Dataset) when some classes truly have no sample"
            )
    return t, int(num_classes)


def _span(values: Sequence[int]) -> str:
    """``[4, 5, 6, 8]`` -> ``"4-6, 8"`` (at most 5 pieces)."""
    pieces: list[str] = []
    start = prev = values[0]
    for v in [*values[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        pieces.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(pieces[:5]) + (", ..." if len(pieces) > 5 else "")


def resolve_specs(
    first: Mapping[str, Tensor],
    specs: Sequence[ModalitySpec] | None,
    modalities: Sequence[str] | None,
    kinds: Mapping[str, str] | None,
    where: str,
) -> list[ModalitySpec]:
    """Specs given, or inferred from the per-sample tensors ``first`` (one sample, no batch axis).

    Args:
        first: modality -> tensor of one sample.
        specs: explicit specs (checked against ``modalities``), or ``None``.
        modalities: which modalities, in order (default: ``specs`` order, else ``first``'s keys).
        kinds: kind per modality overriding the guess by ndim (e.g. ``{"audio": "spectrogram"}``).
        where: the source, for messages.
    """
    if specs is not None:
        specs = list(specs)
        if modalities is not None and [s.name for s in specs] != list(modalities):
            raise DataError(
                f"{where}: specs name {[s.name for s in specs]} but modalities={list(modalities)}; "
                "give one of them or make them agree"
            )
        return specs
    names = list(first) if modalities is None else list(modalities)
    missing = [m for m in names if m not in first]
    if missing:
        raise DataError(
            f"{where}: the first sample lacks modalities {missing} (it has {sorted(first)}); "
            "fix the data or the modalities list"
        )
    unknown = sorted(set(kinds or {}) - set(names))
    if unknown:
        raise DataError(f"{where}: kinds given for unknown modalities {unknown}; modalities are {names}")
    return [ModalitySpec(m, infer_kind(m, tuple(first[m].shape), kinds), tuple(first[m].shape)) for m in names]


def as_kind_dtype(t: Tensor, spec: ModalitySpec, dtype: torch.dtype | None) -> Tensor:
    """A batch ``t`` ``[B, *shape]`` of modality ``spec`` in the dtype its kind needs.

    Args:
        t: the batch as read.
        spec: its modality (``tokens`` -> int64 ids; any other kind -> ``dtype``).
        dtype: the dtype of continuous kinds (``None``: keep ``t``'s).

    Raises:
        DataError: a ``tokens`` modality whose values are not integers.
    """
    if spec.kind == "tokens":
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise DataError(
                f"modality {spec.name!r} is declared 'tokens' but holds {t.dtype} values; store integer token ids "
                "(or declare another kind)"
            )
        return t.long()
    return t if dtype is None else t.to(dtype)


def as_tensor(x: Any, what: Callable[[], str]) -> Tensor:
    """``x`` (tensor, array, nested numbers) as a tensor; ``what()`` names it in the error."""
    if isinstance(x, Tensor):
        return x
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError) as e:
        raise DataError(
            f"{what()} is a {type(x).__name__} that is not a tensor or array ({e}); "
            "return a torch.Tensor or numpy array"
        ) from e


def stack_samples(
    samples: Sequence[Mapping[str, Tensor]], specs: Sequence[ModalitySpec], describe: Callable[[int], str]
) -> dict[str, Tensor]:
    """Stack per-sample tensors into ``{name: [B, *shape]}``, checking every sample's shape.

    Args:
        samples: one dict per sample (already tensors), in batch order.
        specs: expected modalities and shapes.
        describe: position in ``samples`` -> text naming that sample (e.g. ``"item 17"``).

    Raises:
        DataError: a sample whose shape differs from its spec, naming the sample.
    """
    out: dict[str, Tensor] = {}
    for s in specs:
        parts = [x[s.name] for x in samples]
        for i, t in enumerate(parts):
            if tuple(t.shape) != s.shape:
                raise DataError(
                    f"{describe(i)}: modality {s.name!r} has shape {tuple(t.shape)} but the source's "
                    f"spec says {s.shape} (from the first sample or the specs given); give every "
                    "sample one shape (pad/crop in the dataset or decoder)"
                )
        if not parts:
            out[s.name] = torch.empty((0, *s.shape), dtype=torch.long if s.kind == "tokens" else None)
            continue
        out[s.name] = as_kind_dtype(torch.stack(parts), s, None)
    return out


def check_modalities(inputs: Mapping[str, Any], specs: Sequence[ModalitySpec], describe: Callable[[], str]) -> None:
    """Raise naming the sample when ``inputs`` lacks a modality of ``specs``."""
    missing = [s.name for s in specs if s.name not in inputs]
    if missing:
        raise DataError(
            f"{describe()} lacks modalities {missing} (it has {sorted(inputs)}); every sample needs "
            f"inputs for {', '.join(s.name for s in specs)}"
        )


def check_label(label: Any, num_classes: int | None, describe: Callable[[], str]) -> int:
    """``label`` as an int in ``[0, num_classes)`` (``>= 0`` when the count is not known yet), else a
    `DataError` naming the sample."""
    value = label
    if isinstance(label, (Tensor, np.ndarray)):
        size = label.numel() if isinstance(label, Tensor) else label.size
        value = label.item() if size == 1 else None
    ok = (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer()
    )
    if not ok:
        bound = f"in [0, {num_classes})" if num_classes is not None else "0, 1, ..., C-1"
        raise DataError(f"{describe()} has label {label!r}; labels must be int class indices {bound}")
    y = int(value)
    if num_classes is None:
        if y < 0:
            raise DataError(f"{describe()} has label {y}; labels must be class indices 0, 1, ..., C-1")
        return y
    if not 0 <= y < num_classes:
        raise DataError(f"{describe()} has label {y} outside [0, {num_classes}); fix the label or num_classes")
    return y
