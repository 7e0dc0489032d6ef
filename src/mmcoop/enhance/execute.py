"""Executing a `ResamplingPlan` in any training loop.

Two executions of the same plan (see `mmcoop.methods.resampling` for the maths):

``duplicate`` (faithful, the paper)
    `ResampledDataset` yields the originals followed by one item per unit; each
    item carries its keep-mask, `collate_units` stacks them, and the model removes
    the dropped modalities at the feature level::

        feats = model.encode(batch["inputs"], batch["keep"])
        logits = model.fuse(feats, batch["keep"])

``weighted`` (fast)
    ``ResampledDataset(base, plan, execution="weighted")`` yields only the originals, each
    with ``copies [M]`` (its planned units per modality); `weighted_unit_loss` adds
    the copies-weighted unimodal cross-entropies computed from the same features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import Dataset, default_collate

from mmcoop.data.base import MultimodalDataset
from mmcoop.enhance.plans import ResamplingPlan
from mmcoop.errors import ConfigError, DataError
from mmcoop.models.protocol import unimodal_logits
from mmcoop.valuation.valuator import unwrap_model

EXECUTIONS: tuple[str, ...] = ("duplicate", "weighted")
NORMALIZATIONS: tuple[str, ...] = ("batch", "units")


class ResampledDataset(Dataset):
    """The originals of ``base`` plus the units of ``plan``, each item with its keep-mask.

    Works over any map-style ``Dataset`` whose items are ``{"inputs": {modality: Tensor},
    "label": int}`` (other keys are passed through), and over a
    `MultimodalDataset` (whose batched fetches it keeps).

    Args:
        base: the training set; item ``i`` is storage row ``i`` of the plan.
        plan: the epoch's plan (``None`` or empty: the originals only).
        execution: ``duplicate`` (originals, then one item per unit) or ``weighted``
            (originals only, each with ``copies`` int64 ``[M]``: its units per modality).

    Items: ``{"inputs", "label", "keep" (bool [M]), "index" (the base index), **base's
    other keys}``, plus ``"copies"`` under ``weighted``. Item ``i < len(base)`` is
    ``base[i]`` with every modality kept; item ``len(base) + u`` is
    ``base[plan.rows[u]]`` with ``keep = plan.keep[u]``.

    Example:
        >>> ds = ResampledDataset(train_set, plan)
        >>> loader = DataLoader(ds, batch_size=64, shuffle=True, collate_fn=collate_units)
    """

    def __init__(self, base: Dataset, plan: ResamplingPlan | None, execution: str = "duplicate") -> None:
        if execution not in EXECUTIONS:
            raise ConfigError(f"execution={execution!r} is not valid; valid values: {', '.join(EXECUTIONS)}")
        self.base = base
        self.execution = execution
        try:
            self.num_originals = len(base)  # type: ignore[arg-type]
        except TypeError:
            raise DataError(
                f"ResampledDataset needs a map-style Dataset with len(); got {type(base).__name__}"
            ) from None
        self.plan = plan
        n_units = 0 if plan is None else len(plan)
        mm = base if isinstance(base, MultimodalDataset) else None
        # plan rows are storage rows: source rows of a MultimodalDataset, item indices of any other Dataset
        space = mm.num_samples if mm is not None else self.num_originals
        if plan is not None and n_units and int(plan.rows.max()) >= space:
            raise DataError(
                f"the plan names row {int(plan.rows.max())} but the dataset has {space} samples; "
                "build the plan from a valuation of this dataset"
            )
        self._rows = torch.zeros(0, dtype=torch.long) if plan is None else plan.rows.cpu()
        self._keep = None if plan is None else plan.keep.cpu()
        self._copies = plan.copies_per_sample(space).cpu() if plan is not None and execution == "weighted" else None
        self._view: MultimodalDataset | None = None
        if mm is not None:  # one batched view: originals + units (the loop's own execution)
            view = mm
            if execution == "duplicate" and n_units and self._keep is not None:
                dev = mm.rows.device
                view = mm.with_units(self._rows.to(dev), self._keep.to(dev))
            self._view = view
        self.num_units = n_units if execution == "duplicate" else 0

    def __len__(self) -> int:
        return self.num_originals + self.num_units

    def _modalities(self, item: Mapping[str, Any]) -> int:
        if self._keep is not None:
            return int(self._keep.shape[1])
        return len(item["inputs"])

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a ResampledDataset of {n} items")
        i = i % n
        if self._view is not None:
            item = dict(self._view[i])  # "index" is the source row
            base_index = int(item["index"])
        else:
            base_index = i if i < self.num_originals else int(self._rows[i - self.num_originals])
            raw = self.base[base_index]
            if not isinstance(raw, Mapping) or "inputs" not in raw or "label" not in raw:
                raise DataError(
                    f"item {base_index} of {type(self.base).__name__} must be a dict with 'inputs' and "
                    f"'label'; got {type(raw).__name__}"
                )
            item = dict(raw)
            m = self._modalities(raw)
            keep = torch.ones(m, dtype=torch.bool) if i < self.num_originals else self._keep[i - self.num_originals]  # type: ignore[index]
            item["keep"] = keep
            item["index"] = torch.tensor(base_index)
        if self._copies is not None:
            item["copies"] = self._copies[base_index]
        elif self.execution == "weighted":  # no plan (warm-up): no units, the same batch layout
            item["copies"] = torch.zeros(len(item["inputs"]), dtype=torch.long)
        return item


def collate_units(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack items of a `ResampledDataset` into a batch.

    Args:
        items: items of a `ResampledDataset`.

    Returns:
        The batch, a dict with ``inputs`` (modality -> ``[B, *shape]``), ``label`` (int64 ``[B]``),
            ``keep`` (bool ``[B, M]``), ``index`` (int64 ``[B]``), the items' other keys and, under
            ``weighted``, ``copies`` (int64 ``[B, M]``).
    """
    batch = default_collate(list(items))
    batch["label"] = torch.as_tensor(batch["label"]).long()
    batch["keep"] = batch["keep"].bool()
    return batch


def check_choice(name: str, value: Any, valid: tuple[str, ...], prefix: str = "method_options.") -> None:
    """Raise `ConfigError` unless ``value`` is one of ``valid``."""
    if value not in valid:
        raise ConfigError(f"{prefix}{name}={value!r} is not valid; valid values: {', '.join(valid)}")


@dataclass(frozen=True)
class UnitLoss:
    """The parts of `weighted_unit_parts`.

    Attributes:
        total: the scalar loss to back-propagate (`weighted_unit_loss`).
        fused_ce: the originals' mean cross-entropy of the fused logits (detached): the loss of
            plain training. Log it beside ``total``: ``total`` also holds the units' terms, so it
            steps up when re-sampling starts after warm-up although the model did not get worse.
    """

    total: Tensor
    fused_ce: Tensor


def weighted_unit_loss(
    model: torch.nn.Module,
    feats: Tensor,
    logits: Tensor,
    label: Tensor,
    copies: Tensor,
    normalize: str = "batch",
) -> Tensor:
    """Originals' CE plus ``copies``-weighted unimodal CE terms, from one forward pass
    (``weighted_unit_parts(...).total``; see `weighted_unit_parts` for the arguments).

    Example:
        >>> feats = model.encode(batch["inputs"]); logits = model.fuse(feats)
        >>> loss = weighted_unit_loss(model, feats, logits, batch["label"], batch["copies"])
    """
    return weighted_unit_parts(model, feats, logits, label, copies, normalize).total


def weighted_unit_parts(
    model: torch.nn.Module,
    feats: Tensor,
    logits: Tensor,
    label: Tensor,
    copies: Tensor,
    normalize: str = "batch",
) -> UnitLoss:
    """Originals' CE plus ``copies``-weighted unimodal CE terms, from one forward pass, with the
    originals' fused CE beside the total.

    Args:
        model: the model (or a DDP wrapper of it); each modality alone is fused from ``feats``.
        feats: ``[B, M, d]`` features of the originals.
        logits: ``[B, C]`` fused logits of the originals.
        label: int64 ``[B]``.
        copies: ``[B, M]`` units planned for each original keeping each modality
            (``batch["copies"]`` of a weighted `ResampledDataset`).
        normalize: ``batch`` (divide by ``B``) or ``units`` (divide by ``B + copies.sum()``).

    Returns:
        `UnitLoss`: ``total`` (scalar; ``total * D`` is the summed CE of the originals and their
            units) and ``fused_ce`` (the originals' mean CE, detached).

    Example:
        >>> parts = weighted_unit_parts(model, feats, logits, batch["label"], batch["copies"])
        >>> parts.total.backward(); print(float(parts.total), float(parts.fused_ce))
    """
    check_choice("normalize", normalize, NORMALIZATIONS, prefix="")
    net = unwrap_model(model)
    b, m, _ = feats.shape
    uni = unimodal_logits(net, feats).float()  # [B, M, C]: each modality alone
    ce = F.cross_entropy(logits.float(), label, reduction="none")  # [B]
    ce_uni = F.cross_entropy(uni.reshape(b * m, -1), label.repeat_interleave(m), reduction="none").view(b, m)
    w = copies.to(ce_uni.device, ce_uni.dtype)
    total = ce.sum() + (w * ce_uni).sum()
    denom = (w.sum() + b) if normalize == "units" else torch.tensor(float(b), device=total.device)
    return UnitLoss(total / denom, ce.detach().mean())


__all__ = [
    "EXECUTIONS",
    "NORMALIZATIONS",
    "ResampledDataset",
    "UnitLoss",
    "collate_units",
    "weighted_unit_loss",
    "weighted_unit_parts",
    "check_choice",
]
