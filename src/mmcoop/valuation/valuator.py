"""The per-batch core of valuation: per-sample Shapley values of modalities for a model.

`mmcoop.valuation.valuate_dataset` (`mmcoop.valuation.runner`) runs it over a
whole split.

One encoder pass per batch (features ``[B, M, d]``), then every coalition through
the fusion head in one call (`mmcoop.models.coalition_logits`); removed
modalities' features are replaced by zeros (the paper) or a training-mean feature.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from mmcoop.errors import ConfigError, DataError
from mmcoop.models.protocol import coalition_logits
from mmcoop.utils.modes import eval_mode
from mmcoop.valuation.coalitions import coalition_masks
from mmcoop.valuation.permutation import shapley_permutation
from mmcoop.valuation.shapley import MAX_EXACT_MODALITIES, shapley_from_coalitions
from mmcoop.valuation.values import ValueFunction, get_value_function

if TYPE_CHECKING:  # pragma: no cover
    from mmcoop.models.protocol import MultimodalModel

Removal = Literal["zero", "mean"]
ValuationMethod = Literal["auto", "exact", "permutation"]
REMOVALS: tuple[str, ...] = ("zero", "mean")
#: Ways to compute Shapley values (``method=``; not the training methods of `mmcoop.methods`).
VALUATION_METHODS: tuple[str, ...] = ("auto", "exact", "permutation")

#: Logit elements (B x K x C) evaluated per head call in the exact path.
_LOGIT_CHUNK = 1 << 24
#: Bytes per (sample, coalition) of exact valuation: value (4), prediction (8), float64 product (8).
_BYTES_PER_COALITION = 20


def unwrap_model(model: nn.Module) -> nn.Module:
    """The classifier inside DDP / DataParallel / ``torch.compile`` wrappers (``encode`` and ``head`` live there)."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and not hasattr(model, "encode"):
            model = model._orig_mod  # type: ignore[assignment]
        else:
            return model


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@dataclass
class ValuationResult:
    """Valuation of one batch.

    Attributes:
        phi: ``[B, M]`` Shapley value of each modality per sample.
        values: ``[B, K]`` value of each coalition in ``masks``.
        coalition_preds: int64 ``[B, K]`` predicted class under each coalition.
        masks: bool ``[K, M]`` the coalitions: all ``2**M`` in bitmask order for exact
            valuation and the permutation estimator when ``M <= max_exact``; otherwise
            the empty coalition, the ``M`` singletons and the full one (exact valuation
            of more modalities still evaluates all ``2**M`` coalitions, in row chunks, and
            keeps only these columns).
            In both layouts the first row is the empty and the last row the full coalition.
        stderr: ``[B, M]`` standard error of ``phi`` (permutation estimator), else ``None``.
        method: ``"exact"`` or ``"permutation"``.
    """

    phi: Tensor
    values: Tensor
    coalition_preds: Tensor
    masks: Tensor
    stderr: Tensor | None = None
    method: str = "exact"

    @property
    def fused_pred(self) -> Tensor:
        """int64 ``[B]``: prediction with all modalities (the last coalition in both layouts)."""
        return self.coalition_preds[:, -1]


def _reported_masks(m: int, device: torch.device) -> Tensor:
    """Empty coalition, singletons and the full coalition: bool ``[M+2, M]``."""
    eye = torch.eye(m, dtype=torch.bool, device=device)
    none, full = torch.zeros(1, m, dtype=torch.bool, device=device), torch.ones(1, m, dtype=torch.bool, device=device)
    return torch.cat([none, eye, full])


class ModalityValuator:
    """Sample-level modality valuation of a model (`MultimodalModel`).

    Every batch is encoded once; all coalitions of modalities are evaluated by the
    fusion head on the cached features; coalition values (``value``) give exact
    Shapley values (every ``M`` up to `MAX_EXACT_MODALITIES` whose
    coalition table of one sample fits ``memory_budget``; rows are processed in chunks that
    fit it) or, beyond that or when asked, a permutation-sampling estimate with its standard
    error (announced with a warning when ``method="auto"`` falls back to it).

    Args:
        model: any model implementing `mmcoop.models.protocol` (``modalities``, ``encode``,
            ``fuse``; ``coalition_logits`` is used when present).
        value: value function name (see `VALUE_FUNCTIONS`):
            ``paper`` (default), ``correct``, ``prob``, ``logprob``; or a ``ValueFunction``.
        empty: ``v(empty)`` convention, ``"zero"`` or ``"model"``; ``None`` = the value
            function's default.
        removal: what replaces a removed modality's feature: ``"zero"`` (the paper) or
            ``"mean"`` (a training-mean feature, from ``fill`` or `fit_fill`).
        fill: ``[M, d]`` mean features for ``removal="mean"``.
        method: ``"auto"`` (exact whenever it fits, see above), ``"exact"`` or ``"permutation"``.
        max_exact: the largest ``M`` whose full ``2**M``-column table is returned (default 12);
            for more modalities the result keeps the empty, singleton and full coalitions.
        memory_budget: bytes the per-batch coalition table may take (default 1 GiB).
        num_permutations: orderings per sample for the permutation estimator.
        antithetic: pair each sampled ordering with its reverse.
        generator: random source of the permutation estimator (``None``: global RNG).

    Example:
        >>> valuator = ModalityValuator(model, value="paper")
        >>> res = valuator.attribute(batch["inputs"], batch["label"])
        >>> res.phi.shape, res.values.shape          # [B, M], [B, 2**M]
        >>> res.coalition_preds[:, -1]               # fused prediction
        >>> mean_val = ModalityValuator(model, removal="mean").fit_fill(train_loader)
    """

    def __init__(
        self,
        model: "MultimodalModel",
        value: str | ValueFunction = "paper",
        empty: str | None = None,
        removal: str = "zero",
        fill: Tensor | None = None,
        *,
        method: str = "auto",
        max_exact: int = 12,
        num_permutations: int = 128,
        antithetic: bool = True,
        generator: torch.Generator | None = None,
        memory_budget: int = 1 << 30,
    ) -> None:
        model = unwrap_model(model)
        self.model = model
        self.value_fn = get_value_function(value)
        self.empty = self.value_fn.resolve_empty(empty)
        if removal not in REMOVALS:
            raise ConfigError(f"unknown removal {removal!r}; valid: {', '.join(REMOVALS)}")
        if removal == "zero" and fill is not None:
            raise ConfigError("fill is only used with removal='mean'; drop fill or set removal='mean'")
        if method not in VALUATION_METHODS:
            raise ConfigError(f"unknown valuation method {method!r}; valid: {', '.join(VALUATION_METHODS)}")
        if max_exact < 1:
            raise ConfigError(f"max_exact must be >= 1, got {max_exact}")
        if num_permutations < 1:
            raise ConfigError(f"num_permutations must be >= 1, got {num_permutations}")
        m = len(model.modalities)
        dims = getattr(model, "feature_dims", None)
        width = max(dims) if dims and all(d is not None for d in dims) else None
        if fill is not None and (
            fill.dim() != 2 or fill.shape[0] != m or (width is not None and fill.shape[1] != width)
        ):
            raise ConfigError(
                f"fill must have the features' shape [M, D] = [{m}, {width if width is not None else 'D'}], "
                f"got {tuple(fill.shape)}"
            )
        self.removal = removal
        self.fill = fill
        self.method = method
        self.max_exact = int(max_exact)
        self.memory_budget = int(memory_budget)
        if self.method == "auto" and self.resolved_method() == "permutation":
            warnings.warn(
                f"valuation of M = {m} modalities: the exact coalition table (2**{m} per sample) exceeds "
                f"{'the exact limit M <= %d' % MAX_EXACT_MODALITIES if m > MAX_EXACT_MODALITIES else 'memory_budget'}; "
                f"using a permutation estimate ({num_permutations} orderings per sample; the table records method "
                "'permutation' and each phi's standard error)",
                UserWarning,
                stacklevel=2,
            )
        self.num_permutations = int(num_permutations)
        self.antithetic = antithetic
        self.generator = generator

    # -- configuration -----------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        return list(self.model.modalities)

    @property
    def num_modalities(self) -> int:
        return len(self.model.modalities)

    @property
    def value_name(self) -> str:
        return self.value_fn.name

    def resolved_method(self) -> str:
        """``"exact"`` or ``"permutation"`` for this model."""
        if self.method == "auto":
            m = self.num_modalities
            fits = m <= MAX_EXACT_MODALITIES and (1 << m) * _BYTES_PER_COALITION <= self.memory_budget
            return "exact" if fits else "permutation"
        return self.method

    def coalitions(self, device: torch.device | str | None = None) -> Tensor:
        """The coalitions reported in results: bool ``[K, M]`` (see `ValuationResult`)."""
        m = self.num_modalities
        dev = torch.device(device) if device is not None else torch.device("cpu")
        return coalition_masks(m, dev) if self._full_table() else _reported_masks(m, dev)

    def _full_table(self) -> bool:
        """Whether all ``2**M`` coalitions are evaluated (exact, or permutations on the table)."""
        return self.num_modalities <= self.max_exact

    def fit_fill(
        self, loader: Iterable[dict[str, Any]], device: torch.device | str | None = None
    ) -> "ModalityValuator":
        """Set ``fill`` to the mean feature per modality over ``loader``'s batches.

        Args:
            loader: batches (dicts with ``"inputs"``), e.g. ``make_loader(train_split, 256)``.
            device: where to encode (default: the model's device).

        Returns:
            ``self`` (for chaining).
        """
        if self.removal != "mean":
            raise ConfigError(
                "fit_fill computes the fill of removal='mean'; construct the valuator with removal='mean'"
            )
        self.fill = mean_features_of(self.model, loader, device)
        return self

    def _active_fill(self, feats: Tensor) -> Tensor | None:
        if self.removal == "zero":
            return None
        if self.fill is None:
            raise ConfigError(
                "removal='mean' needs the training-mean features: pass fill=mean_features(model, train_split) "
                "or call valuator.fit_fill(train_loader)"
            )
        if self.fill.shape[-1] != feats.shape[-1]:
            raise ConfigError(f"fill has width {self.fill.shape[-1]} but the features have {feats.shape[-1]}")
        return self.fill.to(device=feats.device, dtype=feats.dtype)

    # -- valuation -----------------------------------------------------------
    def attribute(self, inputs: dict[str, Tensor], labels: Tensor) -> ValuationResult:
        """Value every modality of every sample of a batch.

        Runs ``model.encode`` once (eval mode, no grad; the model's modes are restored).

        Args:
            inputs: modality name -> ``[B, *shape]``, on the model's device.
            labels: int64 ``[B]``.

        Returns:
            `ValuationResult` with ``phi [B, M]``, ``values``/``coalition_preds``
                ``[B, K]`` and ``masks [K, M]`` (``K = 2**M`` unless ``M > max_exact``).
        """
        with eval_mode(self.model), torch.no_grad():
            feats = self.model.encode(inputs)
            return self._attribute_features(feats, labels)

    def attribute_features(self, feats: Tensor, labels: Tensor) -> ValuationResult:
        """Like `attribute` from already-encoded features ``[B, M, d]`` (the fusion head in
        eval mode, no grad; the model's modes are restored)."""
        with eval_mode(self.model), torch.no_grad():
            return self._attribute_features(feats, labels)

    def _attribute_features(self, feats: Tensor, labels: Tensor) -> ValuationResult:
        b, m, _ = feats.shape
        if m != self.num_modalities:
            raise ValueError(f"features have {m} modalities, the model has {self.num_modalities}")
        labels = labels.to(feats.device).long()
        if labels.shape != (b,):
            raise ValueError(f"labels must be [B] = [{b}], got shape {tuple(labels.shape)}")
        fill = self._active_fill(feats)
        method = self.resolved_method()
        masks = self.coalitions(feats.device)
        full_table = self._full_table()
        if method == "exact" and not full_table:
            return self._exact_in_row_chunks(feats, labels, masks, fill)
        values, preds = self._values_and_preds(feats, labels, masks, fill)
        if method == "exact":
            return ValuationResult(shapley_from_coalitions(values), values, preds, masks, None, "exact")

        if full_table:
            source: Any = values
        else:

            def source(sample_masks: Tensor) -> Tensor:
                sample_masks = sample_masks.to(feats.device)
                logits = coalition_logits(
                    self.model, feats, sample_masks if sample_masks.shape[0] > 1 else sample_masks[0], fill
                )
                return self.value_fn(logits, labels, sample_masks, self.empty)

        phi, stderr = shapley_permutation(
            source, self.num_permutations, num_modalities=m, antithetic=self.antithetic, generator=self.generator
        )
        return ValuationResult(phi, values, preds, masks, stderr, "permutation")

    def _exact_in_row_chunks(
        self, feats: Tensor, labels: Tensor, reported: Tensor, fill: Tensor | None
    ) -> ValuationResult:
        """Exact Shapley values of ``M > max_exact`` modalities: all ``2**M`` coalitions for as
        many rows at a time as ``memory_budget`` allows; only the ``reported`` columns are kept."""
        m = self.num_modalities
        every = coalition_masks(m, feats.device)
        cols = torch.tensor([0, *[1 << k for k in range(m)], (1 << m) - 1], device=feats.device)  # bitmask order
        rows = max(1, self.memory_budget // ((1 << m) * _BYTES_PER_COALITION))
        phi, vals, preds = [], [], []
        for r in range(0, feats.shape[0], rows):
            v, p = self._values_and_preds(feats[r : r + rows], labels[r : r + rows], every, fill)
            phi.append(shapley_from_coalitions(v))
            vals.append(v[:, cols])
            preds.append(p[:, cols])
        if not phi:
            return ValuationResult(
                feats.new_zeros(0, m),
                feats.new_zeros(0, len(cols)),
                torch.zeros(0, len(cols), dtype=torch.long, device=feats.device),
                reported,
                None,
                "exact",
            )
        return ValuationResult(torch.cat(phi), torch.cat(vals), torch.cat(preds), reported, None, "exact")

    def _values_and_preds(
        self, feats: Tensor, labels: Tensor, masks: Tensor, fill: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        b, k = feats.shape[0], masks.shape[0]
        c = int(getattr(self.model, "num_classes", None) or 1024)  # unknown: assume many classes (smaller chunks)
        step = max(1, _LOGIT_CHUNK // max(1, b * c))
        vals, preds = [], []
        for s in range(0, k, step):
            mk = masks[s : s + step]
            logits = coalition_logits(self.model, feats, mk, fill)  # [B, Kc, C]
            pred = logits.max(-1).indices  # first maximal index, like argmax; faster on CPU
            v = self.value_fn.values_from_preds(pred, labels, mk, self.empty, logits.dtype)
            vals.append(v if v is not None else self.value_fn(logits, labels, mk, self.empty))
            preds.append(pred)
        if len(vals) == 1:
            return vals[0], preds[0]
        return torch.cat(vals, 1), torch.cat(preds, 1)


def encode_batches(
    model: nn.Module,
    batches: Iterable[dict[str, Any]],
    device: torch.device | str | None,
    visit: Callable[[dict[str, Any], Tensor], None],
) -> None:
    """One encoder pass over ``batches``: ``visit(batch, features [B, M, d])`` for each, in eval
    mode without gradients (the model's modes are restored); ``batch`` is on ``device``."""
    from mmcoop.data.base import batch_to

    dev = torch.device(device) if device is not None else model_device(model)
    with eval_mode(model), torch.no_grad():
        for batch in batches:
            batch = batch_to(batch, dev)
            visit(batch, model.encode(batch["inputs"]))


def mean_features_of(model: nn.Module, batches: Iterable[dict[str, Any]], device: torch.device | str | None) -> Tensor:
    """Mean feature per modality ``[M, D]`` over ``batches`` (eval mode, no grad, float64 sums)."""
    acc: dict[str, Any] = {"total": None, "count": 0}

    def add(_batch: dict[str, Any], f: Tensor) -> None:
        s = f.double().sum(0)
        acc["total"] = s if acc["total"] is None else acc["total"] + s
        acc["count"] += f.shape[0]

    encode_batches(model, batches, device, add)
    if acc["total"] is None or acc["count"] == 0:
        raise DataError("cannot compute mean features: the data has no samples")
    return (acc["total"] / acc["count"]).float()
