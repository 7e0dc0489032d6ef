"""Value functions: how much a coalition of modalities is worth for one sample.

A value function maps coalition logits ``[B, K, C]``, labels ``[B]`` and the
coalitions' masks (bool ``[K, M]``, or per sample ``[B, K, M]``) to values ``[B, K]``.
They are registered by name in `VALUE_FUNCTIONS`:

=========  ==============================================  ===============
name       v(S) for a non-empty coalition S                default v(empty)
=========  ==============================================  ===============
paper      ``|S|`` if argmax of the S-logits == label      ``zero``
correct    1 if argmax of the S-logits == label, else 0    ``zero``
prob       softmax probability of the true class           ``model``
logprob    log-softmax of the true class                   ``model``
=========  ==============================================  ===============

The value of the empty coalition is an explicit convention, ``empty``:

- ``"zero"``: ``v(empty) = 0`` (the paper; Shapley values then sum to ``v(all)``).
- ``"model"``: the head's output with every feature removed (zeros or the fill
  feature), scored like any other coalition, e.g. the bias-only prediction.

Defaults: ``paper`` and ``correct`` use ``zero`` (the paper's convention, and for
``paper`` the two agree anyway since ``|empty| = 0``). ``prob`` and ``logprob`` use
``model``: the Shapley values then explain the change from the model's
no-information prediction to the full prediction (SHAP's baseline convention).
``0`` is not neutral for a log-probability (it is the value of certainty), and for a
probability it would credit the modalities with the class prior the head's bias
already carries.

With ``paper`` and M=2 the values are exactly those of the official code:
``v(a) = 1`` if the audio-only prediction is right, ``v(v) = 1`` likewise,
``v(av) = 2`` if the fused prediction is right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import Tensor

from mmcoop.errors import ConfigError
from mmcoop.utils.registry import Registry

EmptyConvention = Literal["zero", "model"]
EMPTY_CONVENTIONS: tuple[str, ...] = ("zero", "model")

RawValueFn = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class ValueFunction:
    """A named value function with its default ``v(empty)`` convention.

    Attributes:
        name: registry name.
        fn: raw function ``(logits [B, K, C], labels [B], masks [K, M]|[B, K, M]) -> [B, K]``,
            applied to every coalition including the empty one.
        default_empty: ``"zero"`` or ``"model"``, used when ``empty`` is ``None``.
        description: one line for help texts.
    """

    name: str
    fn: RawValueFn
    default_empty: EmptyConvention
    description: str = ""
    from_preds: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None

    def resolve_empty(self, empty: str | None) -> str:
        """The effective convention: ``empty`` or this function's default; validated."""
        e = self.default_empty if empty is None else empty
        if e not in EMPTY_CONVENTIONS:
            raise ConfigError(f"unknown empty-coalition convention {e!r}; valid: {', '.join(EMPTY_CONVENTIONS)}")
        return e

    def __call__(self, logits: Tensor, labels: Tensor, masks: Tensor, empty: str | None = None) -> Tensor:
        """Values ``[B, K]`` (float32 or float64).

        Args:
            logits: ``[B, K, C]`` logits of each sample under each coalition.
            labels: int64 ``[B]`` true classes.
            masks: bool ``[K, M]`` (shared) or ``[B, K, M]`` (per sample) coalition masks.
            empty: ``"zero"`` | ``"model"`` | ``None`` (= `default_empty`).

        Returns:
            ``[B, K]`` coalition values.
        """
        e = self.resolve_empty(empty)
        if logits.dim() != 3:
            raise ValueError(f"coalition logits must be [B, K, C], got shape {tuple(logits.shape)}")
        if not logits.is_floating_point() or logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        v = self.fn(logits, labels.to(logits.device).long(), masks.to(logits.device))
        if e == "zero":
            is_empty = ~masks.to(v.device).bool().any(-1)  # [K] or [B, K]
            v = v.masked_fill(is_empty, 0.0)  # broadcasts over B for shared masks
        return v

    def values_from_preds(
        self, preds: Tensor, labels: Tensor, masks: Tensor, empty: str | None = None, dtype: torch.dtype = torch.float32
    ) -> Tensor | None:
        """Values ``[B, K]`` from predicted classes ``preds int64[B, K]`` (the argmax of the
        coalition logits), for value functions that depend on the prediction only; ``None`` otherwise.

        Equal to ``self(logits, labels, masks, empty)`` when ``preds == logits.argmax(-1)``; saves
        the second pass over ``[B, K, C]`` when the caller needs the predictions anyway.
        """
        if self.from_preds is None:
            return None
        e = self.resolve_empty(empty)
        if dtype in (torch.float16, torch.bfloat16) or not dtype.is_floating_point:
            dtype = torch.float32
        v = self.from_preds(preds, labels.to(preds.device).long(), masks.to(preds.device)).to(dtype)
        if e == "zero":
            v = v.masked_fill(~masks.to(v.device).bool().any(-1), 0.0)
        return v


VALUE_FUNCTIONS: Registry[ValueFunction] = Registry("value function")


def register_value_function(
    name: str,
    default_empty: EmptyConvention,
    description: str = "",
    from_preds: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None,
) -> Callable[[RawValueFn], RawValueFn]:
    """Decorator registering a raw value function under ``name`` in `VALUE_FUNCTIONS`.

    Example:
        >>> @register_value_function("margin", default_empty="model")
        ... def margin(logits, labels, masks):
        ...     true = logits.gather(-1, labels.view(-1, 1, 1).expand(-1, logits.shape[1], 1)).squeeze(-1)
        ...     return true - logits.logsumexp(-1)
    """
    if default_empty not in EMPTY_CONVENTIONS:
        raise ValueError(f"default_empty must be one of {EMPTY_CONVENTIONS}, got {default_empty!r}")

    def deco(fn: RawValueFn) -> RawValueFn:
        VALUE_FUNCTIONS.register(name)(ValueFunction(name, fn, default_empty, description, from_preds))
        return fn

    return deco


def get_value_function(value: str | ValueFunction) -> ValueFunction:
    """Look up a value function by name (a `ValueFunction` passes through)."""
    return value if isinstance(value, ValueFunction) else VALUE_FUNCTIONS.get(value)


def _true_class(x: Tensor, labels: Tensor) -> Tensor:
    """``x [B, K, C]`` at the true class -> ``[B, K]``."""
    return x.gather(-1, labels.view(-1, 1, 1).expand(-1, x.shape[1], 1)).squeeze(-1)


def _correct(logits: Tensor, labels: Tensor) -> Tensor:
    return logits.argmax(-1) == labels.view(-1, 1)


def _paper_from_preds(preds: Tensor, labels: Tensor, masks: Tensor) -> Tensor:
    return (preds == labels.view(-1, 1)).to(torch.float32) * masks.to(torch.float32).sum(-1)


def _correct_from_preds(preds: Tensor, labels: Tensor, masks: Tensor) -> Tensor:
    return (preds == labels.view(-1, 1)).to(torch.float32)


@register_value_function(
    "paper",
    "zero",
    "|S| if the prediction from the modalities in S is correct, else 0 (CVPR 2024)",
    from_preds=_paper_from_preds,
)
def _paper(logits: Tensor, labels: Tensor, masks: Tensor) -> Tensor:
    size = masks.to(logits.dtype).sum(-1)  # [K] or [B, K]
    return _correct(logits, labels).to(logits.dtype) * size


@register_value_function(
    "correct", "zero", "1 if the prediction from the modalities in S is correct, else 0", from_preds=_correct_from_preds
)
def _correct_value(logits: Tensor, labels: Tensor, masks: Tensor) -> Tensor:
    return _correct(logits, labels).to(logits.dtype)


@register_value_function("prob", "model", "softmax probability of the true class")
def _prob(logits: Tensor, labels: Tensor, masks: Tensor) -> Tensor:
    return _true_class(logits.softmax(-1), labels)


@register_value_function("logprob", "model", "log-softmax of the true class")
def _logprob(logits: Tensor, labels: Tensor, masks: Tensor) -> Tensor:
    return _true_class(logits.log_softmax(-1), labels)


def coalition_values(
    logits: Tensor, labels: Tensor, masks: Tensor, value: str | ValueFunction = "paper", empty: str | None = None
) -> Tensor:
    """Values ``[B, K]`` of coalitions with logits ``[B, K, C]`` under value function ``value``.

    Args:
        logits: ``[B, K, C]``.
        labels: int64 ``[B]``.
        masks: bool ``[K, M]`` or ``[B, K, M]``.
        value: registered name or a `ValueFunction`.
        empty: ``"zero"`` | ``"model"`` | ``None`` (the function's default).

    Returns:
        ``[B, K]``.
    """
    return get_value_function(value)(logits, labels, masks, empty)
