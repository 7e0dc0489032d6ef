"""The model contract every part of mmcoop codes against.

A *multimodal model* is any object (usually an ``nn.Module``) with:

``modalities: list[str]``
    Modality names in order. Index ``k`` of every keep-mask and of the feature
    axis ``M`` is ``modalities[k]``; input dicts are keyed by these names.

``encode(inputs: dict[str, Tensor], keep: Tensor | None = None) -> Tensor``
    Per-modality pooled features ``[B, M, D]``. Each modality is encoded on its own
    (late fusion). Modality ``k``'s feature occupies ``[:, k, :d_k]``; when the
    modalities' widths ``d_k`` differ, ``D = max d_k`` and the rest of each row is
    zeros (so one tensor carries features of different widths). ``keep`` (bool
    ``[B, M]``) may be used to skip encoders for removed modalities (their feature
    rows are then zeros); it never changes the kept modalities' features.

``fuse(features: Tensor, keep: Tensor | None = None) -> Tensor``
    Logits ``[B, C]``. A *removed* modality (``keep[b, k]`` False; ``keep`` bool
    ``[B, M]`` or ``[M]``, ``None`` = all kept) has its feature replaced before the
    fusion head sees it -- by zeros by default (the paper's convention), never by
    re-running an encoder.

Optional fast path: ``coalition_logits(features, masks, fill=None) -> [B, K, C]``
for ``masks`` bool ``[K, M]`` (shared) or ``[B, K, M]`` (per sample), where ``fill``
(``[M, D]``) replaces removed features instead of the model's default. Without it,
`coalition_logits` below runs the model's ``fuse`` once on all ``B*K``
masked feature sets (exact, one batched call).

Optional attributes some training methods read (the peers that act per encoder):

``encoders: Mapping[str, nn.Module]``
    Modality name -> that modality's encoder. Needed by the methods that modulate or
    regularise each encoder's parameters (``ogm-ge``, ``cggm``, ``inforeg``, ``greedy``,
    ``reconboost``, ``relearning``, ``mmpareto``); everything outside it counts as the
    fusion head (``agm``'s clipping test). Without it those methods stop before training
    with a `ConfigError` saying to wrap the model with
    `from_modules`.

``head: nn.Module``
    The fusion head. When it is one of the built-in linear heads (``concat``: modality
    ``k``'s columns of ``fc.weight``; ``sum``: its own matrix and ``modality_bias [M, C]``)
    methods that need each modality's share of the head use it (``cggm``, ``greedy``, and
    the OGM-GE family's per-modality logits); any other head takes their generic path.

``feature_dims: list[int | None]``
    Each modality's feature width ``d_k``; probed on two training rows when absent.

Built-in models (`MultimodalClassifier`) and wrapped user
models (`from_modules`) implement all of it, the optional
attributes included. A model that only
exposes ``forward(inputs) -> logits`` can still be valued at the input level with
`mmcoop.valuation.valuate_inputs`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from mmcoop.errors import ConfigError


@runtime_checkable
class MultimodalModel(Protocol):
    """Structural type of a model mmcoop can train and value (see the module docstring)."""

    modalities: list[str]

    def encode(self, inputs: dict[str, Tensor], keep: Tensor | None = None) -> Tensor:  # pragma: no cover
        ...

    def fuse(self, features: Tensor, keep: Tensor | None = None) -> Tensor:  # pragma: no cover
        ...


def check_model(model: Any, modalities: list[str] | None = None, what: str = "model") -> None:
    """Raise `ConfigError` naming ``what`` unless ``model`` implements the contract.

    Args:
        model: the object to check.
        modalities: the data's modality names; the model's must be the same, in any order
            is *not* accepted (order defines the feature axis).
        what: how the model is named in messages (e.g. the config target).
    """
    missing = [a for a in ("modalities", "encode", "fuse") if not hasattr(model, a)]
    if missing:
        raise ConfigError(
            f"{what} returned {type(model).__name__}, which lacks {', '.join(missing)}: a model must provide "
            "modalities, encode(inputs, keep) and fuse(features, keep); wrap a late-fusion model with "
            "mmcoop.models.from_modules(encoders, head)"
        )
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{what} returned {type(model).__name__}; it must be a torch.nn.Module")
    if modalities is not None and list(model.modalities) != list(modalities):
        raise ConfigError(
            f"{what} has modalities {list(model.modalities)} but the data has {list(modalities)}; "
            "build one encoder per data modality, in the data's order"
        )


def replace_removed(features: Tensor, keep: Tensor | None, fill: Tensor | None = None) -> Tensor:
    """Features with removed modalities replaced: ``features [B, M, D]``, ``keep [B, M]|[M]``,
    ``fill [M, D]`` (``None`` = zeros)."""
    if keep is None:
        return features
    k = keep.to(torch.bool)
    if k.dim() == 1:
        k = k.unsqueeze(0)
    k = k.unsqueeze(-1)
    if fill is None:
        return features * k.to(features.dtype)
    return torch.where(k, features, fill.to(features.dtype).unsqueeze(0))


def coalition_logits(model: Any, features: Tensor, masks: Tensor, fill: Tensor | None = None) -> Tensor:
    """Logits of every coalition: ``features [B, M, D]``, ``masks`` bool ``[K, M]`` or ``[B, K, M]``
    -> ``[B, K, C]``.

    Uses the model's own ``coalition_logits`` when it has one (e.g. linear heads: one
    matrix product); otherwise one batched ``fuse`` call over the ``B*K`` masked copies.
    ``fill`` (``[M, D]``) replaces removed features instead of the model's default removal.

    Example:
        >>> masks = torch.eye(len(model.modalities), dtype=torch.bool)
        >>> uni = coalition_logits(model, model.encode(inputs), masks)   # [B, M, C]: each modality alone
    """
    fast = getattr(model, "coalition_logits", None)
    if fast is not None:
        return fast(features, masks, fill)
    b, m, d = features.shape
    k = masks.shape[-2]
    x = features.unsqueeze(1).expand(b, k, m, d).reshape(b * k, m, d)
    keep = (masks if masks.dim() == 3 else masks.unsqueeze(0).expand(b, k, m)).reshape(b * k, m)
    if fill is not None:
        return model.fuse(replace_removed(x, keep, fill)).reshape(b, k, -1)
    return model.fuse(x, keep).reshape(b, k, -1)


def unimodal_logits(model: Any, features: Tensor) -> Tensor:
    """Each modality alone (the others removed): ``features [B, M, D]`` -> ``[B, M, C]``."""
    m = features.shape[1]
    return coalition_logits(model, features, torch.eye(m, dtype=torch.bool, device=features.device))
