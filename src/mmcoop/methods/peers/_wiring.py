"""Wiring shared by the peer methods (no method arithmetic here).

What several peers need to hook their pure cores (`mmcoop.methods.functional`) into
the training step: option checks, the modality count, per-modality encoder parameters,
feature widths, per-modality slices of linear fusion heads, the official
per-modality logits of a fusion head, sums over DDP ranks (so every rank computes the same
coefficients from the whole distributed batch), per-step random generators that agree on
every rank and on resume, modulation windows, and per-epoch means for ``metrics.jsonl``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Optional, cast

import torch
from torch import Tensor, nn

from mmcoop.data.base import batch_to
from mmcoop.errors import ConfigError
from mmcoop.methods.base import MethodContext
from mmcoop.models.fusion import ConcatFusion, SumFusion
from mmcoop.models.protocol import coalition_logits
from mmcoop.utils.dist import all_gather_rows, rank, world_size
from mmcoop.utils.modes import eval_mode
from mmcoop.utils.seeding import mix_seed


# -- options ---------------------------------------------------------------------------
def check_window(starts: Any, ends: Any) -> tuple[int, Optional[int]]:
    """Validate ``method_options.modulation_starts`` / ``modulation_ends`` (0-based epochs, inclusive;
    ``ends=None`` = no end); returns them as ints."""
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 0:
        raise ConfigError(f"method_options.modulation_starts must be an integer >= 0 (0-based epoch); got {starts!r}")
    if ends is not None and (isinstance(ends, bool) or not isinstance(ends, int) or ends < starts):
        raise ConfigError(
            f"method_options.modulation_ends must be an integer >= modulation_starts ({starts}) "
            f"or null (no end); got {ends!r}"
        )
    return starts, ends


def in_window(epoch: int, starts: int, ends: Optional[int]) -> bool:
    """``starts <= epoch <= ends`` as in the official scripts (``ends=None``: no end)."""
    return epoch >= starts and (ends is None or epoch <= ends)


def check_number(
    name: str, value: Any, low: float | None = None, high: float | None = None, low_open: bool = False
) -> float:
    """``method_options.<name>`` as a float in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ConfigError(f"method_options.{name} must be a finite number; got {value!r}")
    v = float(value)
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and v > high
    if bad_low or bad_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open else '['}{lo}, {hi}]"
        raise ConfigError(f"method_options.{name} must be in {interval}; got {value!r}")
    return v


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"method_options.{name} must be true or false; got {value!r}")
    return value


def check_int(name: str, value: Any, low: int) -> int:
    """``method_options.<name>`` as an integer ``>= low`` (bools refused), else `ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"method_options.{name} must be an integer >= {low}; got {value!r}")
    return int(value)


# -- the model ---------------------------------------------------------------------------
def encoder_groups(model: nn.Module, method: str) -> list[list[nn.Parameter]]:
    """Trainable parameters of each modality's encoder, in modality order.

    Raises:
        ConfigError: the model has no ``encoders`` mapping (modality name -> module).
    """
    encoders = getattr(model, "encoders", None)
    mods = list(getattr(model, "modalities", []))
    if encoders is None or any(m not in encoders for m in mods):
        raise ConfigError(
            f"method {method!r} modulates each modality's encoder parameters, so the model needs "
            "`encoders` (a mapping modality name -> nn.Module, as built-in models and "
            "mmcoop.models.from_modules provide); wrap your model with from_modules(encoders, head)"
        )
    return [[p for p in encoders[m].parameters() if p.requires_grad] for m in mods]


def non_encoder_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Trainable parameters outside the encoders (the fusion head); all of them if no ``encoders``."""
    encoders = getattr(model, "encoders", None)
    inside = {id(p) for p in encoders.parameters()} if isinstance(encoders, nn.Module) else set()
    return [p for p in model.parameters() if p.requires_grad and id(p) not in inside]


def feature_widths(ctx: MethodContext) -> list[int]:
    """Feature width ``d_k`` of each modality (``model.feature_dims``; probed on two training
    rows in eval mode when unknown; the padded width ``D`` for models that do not say)."""
    model = ctx.model
    m = len(model.modalities)
    dims = list(getattr(model, "feature_dims", None) or [])
    if len(dims) == m and all(d is not None for d in dims):
        return [int(d) for d in dims]
    data = ctx.train_data
    batch = batch_to(data.__getitems__(list(range(min(2, len(data))))), ctx.device)
    with eval_mode(model), torch.no_grad():
        feats = model.encode(batch["inputs"])
    dims = list(getattr(model, "feature_dims", None) or [])
    if len(dims) == m and all(d is not None for d in dims):
        return [int(d) for d in dims]
    return [int(feats.shape[-1])] * m


def modality_logits(model: nn.Module, feats: Tensor) -> Tensor:
    """Each modality's own logits as the official OGM-GE ``train_epoch`` computes them: ``[M, B, C]``.

    ``f({m}) - (1 - 1/M) f({})``: the fusion head on modality ``m`` alone minus the part of
    the empty coalition's output (the bias) that belongs to the other modalities. For heads
    linear in the features this is ``W_m z_m + b / M`` -- for ``M = 2`` exactly the official
    ``W[:, half] z + b / 2`` of ``concat`` fusion (GeWu-Lab/OGM-GE_CVPR2022 ``main.py``
    ``train_epoch``) -- and the ``M`` rows sum to the fused logits. A head with one bias per
    modality (``modality_bias [M, C]``, e.g. ``sum`` fusion) gives each modality its *own full*
    bias, ``W_m z_m + b_m``, as the official ``train_epoch`` does with ``fc_x.bias`` /
    ``fc_y.bias`` (only its ``valid`` halves them; training follows ``train_epoch``).

    Args:
        model: the model (``coalition_logits`` fast path or ``fuse``).
        feats: ``[B, M, D]`` features (detach them for scores).
    """
    m = feats.shape[1]
    masks = torch.cat(
        [torch.eye(m, dtype=torch.bool, device=feats.device), torch.zeros(1, m, dtype=torch.bool, device=feats.device)]
    )
    out = coalition_logits(model, feats, masks)  # [B, M + 1, C]
    own = getattr(getattr(model, "head", None), "modality_bias", None)
    if isinstance(own, Tensor) and own.shape == (m, out.shape[-1]):
        # f({m}) - f({}) = W_m z_m, plus the modality's own bias
        uni = out[:, :m] - out[:, m:] + own.to(out.dtype)
    else:
        uni = out[:, :m] - (1.0 - 1.0 / m) * out[:, m:]
    return uni.transpose(0, 1)


def require_modalities(model: nn.Module, method: str, exactly: int | None = None) -> int:
    """Number of modalities ``M``; `ConfigError` unless ``M >= 2`` (or ``M == exactly``)."""
    names = cast("list[str]", model.modalities)  # torch types nn.Module attributes as Tensor | Module
    m = len(names)
    if exactly is not None and m != exactly:
        raise ConfigError(
            f"method {method!r} is defined for exactly {exactly} modalities; the data has {m} "
            f"({', '.join(names)}): pick another method or a {exactly}-modality dataset"
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
        return cast(nn.Parameter, head.fc.weight), lambda t: t.view(c, m, d).transpose(0, 1)
    if isinstance(head, SumFusion):
        return head.weight, lambda t: t
    return None


# -- distributed -------------------------------------------------------------------------
def sum_over_ranks(t: Tensor) -> Tensor:
    """``t`` summed over DDP ranks (``t`` itself in one process): batch statistics of the whole
    distributed batch, so every rank derives the same coefficients."""
    if world_size() == 1:
        return t
    return all_gather_rows(t.detach().reshape(1, -1)).sum(0).view(t.shape)


def mean_over_ranks(t: Tensor) -> Tensor:
    """``t`` averaged over DDP ranks (``t`` itself in one process)."""
    if world_size() == 1:
        return t
    return sum_over_ranks(t) / world_size()


def step_generator(
    ctx: MethodContext, salt: int, device: torch.device | None = None, per_rank: bool = False
) -> torch.Generator:
    """A generator seeded by (run seed, optimizer steps so far, ``salt``[, rank]) on ``device``:
    the same draws on every rank (unless ``per_rank``) and after a resume."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = torch.Generator(device=dev)
    g.manual_seed(mix_seed(ctx.seed, ctx.optimizer_steps, salt, *((rank(),) if per_rank else ())))
    return g


def batches_per_epoch(num_units: int, batch_size: int) -> int:
    """Batches of one rank's training loader (`mmcoop.data.make_loader`, shuffled:
    a trailing batch of one sample is merged into the one before)."""
    n = math.ceil(num_units / world_size())
    full, rest = divmod(n, batch_size)
    return max(1, full + (1 if rest > 1 or (rest == 1 and full == 0) else 0))


# -- logging -----------------------------------------------------------------------------
class EpochMeans:
    """Running means of per-step diagnostics, written into ``ctx.log`` once per epoch."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def reset(self) -> None:
        self._sums.clear()
        self._counts.clear()

    def add(self, name: str, value: float | Tensor) -> None:
        self._sums[name] = self._sums.get(name, 0.0) + float(value)
        self._counts[name] = self._counts.get(name, 0) + 1

    def add_per_modality(self, prefix: str, modalities: list[str], values: Tensor) -> None:
        for name, v in zip(modalities, values.detach().double().cpu().tolist()):
            self.add(f"{prefix}_{name}", v)

    def write(self, log: dict[str, Any]) -> None:
        for name, total in self._sums.items():
            log[name] = total / self._counts[name]


# -- the method's own heads --------------------------------------------------------------
def unimodal_heads(ctx: MethodContext) -> tuple[nn.ModuleList, list[int]]:
    """One ``nn.Linear(d_m, C)`` per modality on ``ctx.device`` (a method's own unimodal
    classifiers) and the feature widths ``d_m`` they read."""
    widths = feature_widths(ctx)
    c = int(ctx.train_data.num_classes)
    return nn.ModuleList([nn.Linear(w, c) for w in widths]).to(ctx.device), widths


def heads_logits(heads: nn.ModuleList, feats: Tensor, widths: list[int]) -> Tensor:
    """Each modality's own head on its own features: ``feats [B, M, D]`` -> ``[M, B, C]``."""
    return torch.stack([head(feats[:, m, :w]) for m, (head, w) in enumerate(zip(heads, widths))])


class OwnHeadsEvaluation:
    """Mixin for a method with its own unimodal heads (``self.heads``, ``self.widths``, from
    `unimodal_heads`): each modality alone at evaluation is its own head, ``[B, M, C]``."""

    heads: nn.ModuleList
    widths: list[int]

    def unimodal_logits(self, model: nn.Module, feats: Tensor) -> Tensor:
        return heads_logits(self.heads, feats.to(next(self.heads.parameters()).dtype), self.widths).transpose(0, 1)
