"""The paper's two re-sampling schedules as objects for any training loop: value -> plan.

A resampler holds the options of the method (warm-up, value function, thresholds or
ratio) and three calls:

* `value` -- one inference pass over the training set (or the subset Z) through
  `mmcoop.valuation.valuate_dataset` (eval mode, no gradients, BatchNorm folded,
  sharded over DDP ranks) -> `ValuationTable`;
* `plan` -- the table -> `ResamplingPlan`;
* `step` -- both, when due at ``epoch`` (``None`` during warm-up; between
  valuations with ``every > 1`` the last plan again).

``mmcoop train`` (`mmcoop.methods.sample_level`, `mmcoop.methods.modality_level`)
uses these same objects, so a user's loop and ``mmcoop train`` build the same plan from
the same weights, seed and options. Execute a plan with
`ResampledDataset` or `weighted_unit_loss`.

Example:
    >>> resampler = SampleLevelResampler(warmup=1)
    >>> for epoch in range(epochs):
    ...     plan = resampler.step(epoch, model, train_set)           # None during warm-up
    ...     loader = DataLoader(ResampledDataset(train_set, plan), 64, shuffle=True, collate_fn=collate_units)
    ...     ...  # your usual training epoch, with model.encode(x, keep) / model.fuse(feats, keep)
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from mmcoop.data.base import MultimodalDataset
from mmcoop.data.dict_source import as_multimodal
from mmcoop.enhance.plans import (
    DEFAULT_MAX_COPIES,
    DEFAULT_THRESHOLDS,
    RATIO_FUNCS,
    ResamplingPlan,
    check_thresholds,
    modality_level_plan,
    modality_level_ratio,
    sample_level_plan,
    subset_for_valuation,
)
from mmcoop.errors import ConfigError
from mmcoop import valuation as _valuation
from mmcoop.utils.seeding import epoch_generator
from mmcoop.valuation import VALUE_FUNCTIONS, ValuationTable

SALT_SUBSET = 0x5A  # generator salt of the subset Z (modality-level)
SALT_DRAW = 0xD7  # generator salt of the re-sampled samples (modality-level)


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}; got {value!r}")
    return value


class Resampler:
    """Shared schedule and valuation of the re-samplers (subclasses define `plan`).

    Args:
        warmup: epochs of plain training before re-sampling (the paper's default 5).
        every: value and re-plan every this many epochs from ``warmup`` on (1 = the paper).
        value: coalition value function (``paper``, ``correct``, ``prob``, ``logprob`` or a
            registered one).
        batch_size: samples per valuation batch.
        device: where to value (default: the model's device).
        fold_bn: value with a BatchNorm-folded inference copy (see `valuate_dataset`).
        seed: the run seed (random draws of the modality-level variant).
    """

    def __init__(
        self,
        *,
        warmup: int = 5,
        every: int = 1,
        value: str = "paper",
        batch_size: int = 128,
        device: torch.device | str | None = None,
        fold_bn: bool = True,
        seed: int = 0,
    ) -> None:
        self.warmup = _check_int("warmup", warmup, 0)
        self.every = _check_int("every", every, 1)
        if value not in VALUE_FUNCTIONS.names():
            raise ConfigError(f"value={value!r} is not a value function; valid: {', '.join(VALUE_FUNCTIONS.names())}")
        self.value_name = value
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.device = device
        self.fold_bn = bool(fold_bn)
        self.seed = int(seed)
        self.last_plan: ResamplingPlan | None = None
        self.last_table: ValuationTable | None = None
        self.plan_epoch = -1
        self.last_seconds = 0.0
        self.extra: dict[str, float] = {}  # per-plan statistics (e.g. the modality-level ratios)
        self._wrapped: tuple[Dataset, MultimodalDataset] | None = None

    # -- schedule ---------------------------------------------------------------------------
    def due(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) values and re-plans (from ``warmup`` on, every ``every`` epochs)."""
        return epoch >= self.warmup and (epoch - self.warmup) % self.every == 0

    # -- valuation --------------------------------------------------------------------------
    def _data(self, dataset: Dataset) -> MultimodalDataset:
        """``dataset`` as a MultimodalDataset (a Dataset of dict items is wrapped once and reused)."""
        if isinstance(dataset, MultimodalDataset):
            return dataset
        if self._wrapped is None or self._wrapped[0] is not dataset:
            self._wrapped = (dataset, as_multimodal(dataset))
        return self._wrapped[1]

    def value_rows(self, model: Any, dataset: Dataset, rows: Tensor | None) -> ValuationTable:
        """Value storage ``rows`` of ``dataset`` (``None``: every row) with this resampler's settings;
        the seconds it took are `last_seconds`."""
        data = self._data(dataset)
        t0 = time.perf_counter()
        table = _valuation.valuate_dataset(  # looked up on the module: tests may wrap it
            model,
            data,
            batch_size=self.batch_size,
            value=self.value_name,
            device=self.device,
            rows=rows,
            distributed=True,
            fold_bn=self.fold_bn,
            split="train",
        )
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        self.last_seconds = time.perf_counter() - t0
        return table

    def candidate_rows(self, dataset: Dataset) -> Tensor:
        """Distinct storage rows of the training set (sorted, CPU): the samples a plan draws from."""
        return torch.unique(self._data(dataset).rows.cpu())

    def rows_to_value(self, dataset: Dataset, epoch: int = 0) -> Tensor:
        """Storage rows of ``dataset`` that `value` values at ``epoch`` (every candidate row;
        the modality-level subset Z)."""
        return self.candidate_rows(dataset)

    def value(self, model: torch.nn.Module, dataset: Dataset, epoch: int = 0) -> ValuationTable:
        """Value the training samples this schedule needs at ``epoch`` (one inference pass)."""
        return self.value_rows(model, dataset, self.rows_to_value(dataset, epoch))

    def plan(self, table: ValuationTable, dataset: Dataset | None = None, epoch: int = 0) -> ResamplingPlan:
        """The plan from a valuation ``table`` (``dataset``/``epoch``: candidates and draws, modality-level)."""
        raise NotImplementedError

    def step(self, epoch: int, model: torch.nn.Module, dataset: Dataset) -> ResamplingPlan | None:
        """The plan to execute in ``epoch``: ``None`` during warm-up; a new one when `due`
        (valued now: call it at the start of the epoch, before training on it); else the last one.

        Under DDP call it on every rank: each values ``1/W`` of the samples, all get the same plan.
        """
        if epoch < self.warmup:
            self.last_plan, self.last_table, self.plan_epoch = None, None, -1
            return None
        if self.last_plan is not None and not self.due(epoch):
            self.last_table = None
            return self.last_plan
        table = self.value(model, dataset, epoch)
        plan = self.plan(table, dataset, epoch)
        self.last_plan, self.last_table, self.plan_epoch = plan, table, epoch
        return plan

    def state_dict(self) -> dict[str, Any]:
        """The last plan (for exact resume)."""
        return {"plan": None if self.last_plan is None else self.last_plan.state_dict(), "plan_epoch": self.plan_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plan_epoch = int(state.get("plan_epoch", -1))
        plan = state.get("plan")
        self.last_plan = None if plan is None else ResamplingPlan.from_state_dict(plan)


class SampleLevelResampler(Resampler):
    """Sample-level re-sampling (the paper's main method): value every training sample, then for
    each sample and modality ``k`` add ``copies(phi[i, k])`` units keeping only ``k``.

    Args:
        thresholds: bands ``(lower bound, copies)``, highest first (default: ``phi >= 1 -> 0``,
            ``(0.4, 1) -> 1``, ``(-0.1, 0.4] -> 2``; see `sample_copies`).
        max_copies: copies below the lowest bound (3).
        **kwargs: the schedule and valuation options of `Resampler`.

    Example:
        >>> r = SampleLevelResampler(warmup=0)
        >>> table = r.value(model, train_set)      # ValuationTable, phi [N, M]
        >>> plan = r.plan(table)                    # ResamplingPlan of single-modality units
    """

    def __init__(
        self,
        thresholds: Sequence[Sequence[float]] = DEFAULT_THRESHOLDS,
        max_copies: int = DEFAULT_MAX_COPIES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.thresholds = check_thresholds(thresholds, max_copies)
        self.max_copies = int(max_copies)

    def plan(self, table: ValuationTable, dataset: Dataset | None = None, epoch: int = 0) -> ResamplingPlan:
        self.extra = {}
        return sample_level_plan(
            table.phi.cpu(), table.index.cpu(), self.thresholds, self.max_copies, modalities=list(table.modalities)
        )


class ModalityLevelResampler(Resampler):
    """Modality-level re-sampling (the paper's cheaper variant): value a random subset Z
    (``part_ratio`` of the samples, drawn from ``(seed, epoch)``), then copy ``round(p_k * N)``
    distinct samples once keeping only modality ``k`` (ratio ``p`` from the mean contributions,
    `modality_level_ratio`).

    Args:
        part_ratio: fraction of the training samples in Z (0.2).
        alpha: scale of the ratio (1.0).
        func: ``linear``, ``tanh`` or ``pow1.5``.
        **kwargs: the schedule and valuation options of `Resampler` (``seed`` seeds Z
            and the draws, exactly as ``mmcoop train --seed``).
    """

    def __init__(self, part_ratio: float = 0.2, alpha: float = 1.0, func: str = "linear", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if func not in RATIO_FUNCS:
            raise ConfigError(f"func={func!r} is not valid; valid values: {', '.join(RATIO_FUNCS)}")
        if not 0.0 < float(part_ratio) <= 1.0:
            raise ConfigError(f"part_ratio must be in (0, 1]; got {part_ratio!r}")
        if float(alpha) < 0.0:
            raise ConfigError(f"alpha must be >= 0; got {alpha!r}")
        self.part_ratio, self.alpha, self.func = float(part_ratio), float(alpha), func

    def subset(self, dataset: Dataset, epoch: int) -> Tensor:
        """Storage rows of the subset Z valued at ``epoch``."""
        rows = self.candidate_rows(dataset)
        z = subset_for_valuation(len(rows), self.part_ratio, epoch_generator(self.seed, epoch, SALT_SUBSET))
        return rows[z]

    def rows_to_value(self, dataset: Dataset, epoch: int = 0) -> Tensor:
        return self.subset(dataset, epoch)

    def plan(self, table: ValuationTable, dataset: Dataset | None = None, epoch: int = 0) -> ResamplingPlan:
        if dataset is None:
            raise ConfigError("ModalityLevelResampler.plan needs the training dataset (the samples it draws from)")
        rows = self.candidate_rows(dataset)
        mean_phi = table.phi.double().mean(0).cpu()
        mods = list(table.modalities)
        ratio = modality_level_ratio(mean_phi, self.alpha, self.func).tolist()
        self.extra = {f"resample_ratio_{m}": float(p) for m, p in zip(mods, ratio)}
        return modality_level_plan(
            mean_phi,
            len(rows),
            rows,
            self.alpha,
            self.func,
            epoch_generator(self.seed, epoch, SALT_DRAW),
            modalities=mods,
        )


__all__ = [
    "Resampler",
    "SampleLevelResampler",
    "ModalityLevelResampler",
    "epoch_generator",
    "SALT_SUBSET",
    "SALT_DRAW",
]
