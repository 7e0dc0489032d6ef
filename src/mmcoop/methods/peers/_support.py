"""Wiring helpers of G-Blending, ReconBoost, Re-learning, CGGM, InfoReg and Greedy that
:mod:`mmcoop.methods.peers._wiring` does not provide: integer option checks, the modality
count check, per-modality slices of linear fusion heads and the stacked feature width.
No method arithmetic lives here (that is in :mod:`mmcoop.methods.functional`).
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn

from mmcoop.errors import ConfigError
from mmcoop.methods.base import MethodContext
from mmcoop.methods.peers._wiring import feature_widths
from mmcoop.models.fusion import ConcatFusion, SumFusion


def check_int(name: str, value: Any, low: int) -> int:
    """``method_options.<name>`` as an integer ``>= low`` (bools refused), else :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"method_options.{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def require_modalities(model: nn.Module, method: str, exactly: int | None = None) -> int:
    """Number of modalities ``M``; :class:`ConfigError` unless ``M >= 2`` (or ``M == exactly``)."""
    m = len(model.modalities)
    if exactly is not None and m != exactly:
        raise ConfigError(
            f"method {method!r} is defined for exactly {exactly} modalities; the data has {m} "
            f"({', '.join(model.modalities)}): pick another method or a {exactly}-modality dataset"
        )
    if m < 2:
        raise ConfigError(f"method {method!r} balances several modalities; the data has only {m}")
    return m


def stacked_width(ctx: MethodContext) -> int:
    """Width ``D`` of the stacked features ``[B, M, D]`` (the widest modality)."""
    return max(feature_widths(ctx))


def linear_head_slices(model: nn.Module) -> tuple[nn.Parameter, Callable[[Tensor], Tensor]] | None:
    """For a fusion head linear per modality, its weight and a map to per-modality slices.

    Returns ``(weight, per_modality)`` where ``per_modality(t)`` views a tensor shaped like
    ``weight`` (the weight or its gradient) as ``[M, C, D]``: for ``concat`` modality ``m``'s
    columns of ``fc.weight [C, M*D]``, for ``sum`` its own matrix ``weight[m]``. ``None`` for
    any other head (``film``, ``gated``, a user head).
    """
    head = getattr(model, "head", None)
    if isinstance(head, ConcatFusion):
        c, m, d = head.num_classes, head.num_modalities, head.dim
        return head.fc.weight, lambda t: t.view(c, m, d).transpose(0, 1)
    if isinstance(head, SumFusion):
        return head.weight, lambda t: t
    return None
