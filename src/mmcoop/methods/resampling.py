"""Shared machinery of the re-sampling methods (``sample-level``, ``modality-level``).

Each epoch from ``warmup`` on, the method values (part of) the training set in eval mode,
turns the valuation into a `ResamplingPlan` of extra units
``(storage row, keep-mask)`` and executes it in one of two ways:

``duplicate`` (faithful, the paper)
    `train_set` appends the units to the training set; the loader shuffles them
    with the originals; ``model.encode`` runs only the kept modality's encoder on a
    unit. The loss is the default mean cross-entropy over the batch of units.

``weighted`` (fast)
    `train_set` is the original data; `loss` adds, for each original
    ``i`` in the batch and modality ``k``, ``copies[i, k]`` times the cross-entropy of
    the logits from modality ``k`` alone, computed from the *same* features (one
    ``coalition_logits`` call, no extra encoder passes)::

        loss = [sum_i CE(logits_i) + sum_i sum_k copies[i, k] * CE(fuse(feats_i, keep=k))] / D

    With ``normalize="batch"`` (default) ``D = B``: over an epoch the sum of per-step
    losses equals that of ``duplicate`` (every unit's CE divided by the batch size),
    in ``N / B`` steps instead of ``(N + U) / B``: the same total update per epoch,
    taken in fewer, larger steps (on average ``(N + U) / N`` times larger).
    With ``normalize="units"`` ``D = B + sum of copies in the batch``: each step is
    a mean over units, as in ``duplicate``, so the per-step scale matches but the
    epoch's total update is ``N / (N + U)`` of it. In eval mode (frozen BatchNorm,
    no dropout) the gradient of ``weighted`` times ``D`` equals the gradient of the
    summed CE over the originals and their duplicated units exactly; in train mode
    BatchNorm statistics differ (the units are not separate rows of the batch).

The official code values at the end of epoch ``warmup - 1`` and trains on the
re-sampled set from epoch ``warmup`` on; valuing at the start of epoch ``warmup``
(here) sees the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor

from mmcoop.data.base import Batch, MultimodalDataset
from mmcoop.enhance.execute import EXECUTIONS, NORMALIZATIONS, check_choice, weighted_unit_loss, weighted_unit_parts
from mmcoop.enhance.online import OnlineRecorder
from mmcoop.enhance.plans import ResamplingPlan
from mmcoop.enhance.resampler import Resampler
from mmcoop.errors import ConfigError, MMCoopError
from mmcoop.methods.base import Method, MethodContext, MethodOptions
from mmcoop import valuation as _valuation
from mmcoop.utils.dist import all_gather_objects, world_size
from mmcoop.utils.metric_keys import CONTRIB, COPIES, modality_key

__all__ = [
    "EXECUTIONS",
    "NORMALIZATIONS",
    "VALUATIONS",
    "ResamplingMethod",
    "ResamplingOptions",
    "check_choice",
    "train_rows",
    "weighted_unit_loss",
]

VALUATIONS: tuple[str, ...] = ("pass", "online")


@dataclass
class ResamplingOptions(MethodOptions):
    """Options shared by the re-sampling methods.

    Attributes:
        warmup: epochs of plain joint training before re-sampling starts (official default 5:
            ``--warmup`` in the official ``sample_level.py`` / ``modality_level.py``).
        execution: ``duplicate`` (units appended to the data, faithful) or ``weighted``
            (units as weighted unimodal loss terms, fast).
        normalize: ``weighted`` only: divide by the batch size (``batch``) or by the
            number of units in the batch (``units``); see the module docstring.
        value: coalition value function passed to `mmcoop.valuation.valuate_dataset`.
        valuation_every: value (and re-plan) every this many epochs from ``warmup`` on and
            execute the last plan in between (1 = every epoch, the paper). Valuation is
            one inference pass over the training set (about a third of a training epoch
            for the avmnist CNNs on CPU); 2 halves that cost at the price of plans one
            epoch stale.
        valuation_batch_size: batch size of the valuation passes; ``None`` (default) = the
            run's ``train.eval_batch_size`` (an inference pass like evaluation; on CPU,
            batches of 64-128 valued avmnist about twice as fast as 512).
        valuation: ``pass`` (the paper: an eval-mode pass over the training set at the start
            of each planned epoch) or ``online`` (coalition values recorded from the training
            pass's own features during the previous epoch, `mmcoop.enhance.online`;
            no second pass; a plan with no previous epoch, ``warmup: 0``, uses the pass).
    """

    warmup: int = 5
    execution: str = "duplicate"
    normalize: str = "batch"
    value: str = "paper"
    valuation_every: int = 1
    valuation_batch_size: Optional[int] = None
    valuation: str = "pass"

    def __post_init__(self) -> None:
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"method_options.warmup must be an integer >= 0; got {self.warmup!r}")
        check_choice("execution", self.execution, EXECUTIONS)
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        check_choice("value", self.value, tuple(_valuation.VALUE_FUNCTIONS.names()))
        check_choice("valuation", self.valuation, VALUATIONS)
        if (
            isinstance(self.valuation_every, bool)
            or not isinstance(self.valuation_every, int)
            or self.valuation_every < 1
        ):
            raise ConfigError(f"method_options.valuation_every must be an integer >= 1; got {self.valuation_every!r}")
        if self.valuation_batch_size is not None and int(self.valuation_batch_size) < 1:
            raise ConfigError(f"method_options.valuation_batch_size must be >= 1; got {self.valuation_batch_size}")


def train_rows(data: MultimodalDataset) -> Tensor:
    """Distinct storage rows of a training view (sorted, CPU): the samples that are valued."""
    return torch.unique(data.rows.cpu())


class ResamplingMethod(Method):
    """Base class: valuate -> plan -> execute (duplicate or weighted). Subclasses define
    `make_resampler` (the `mmcoop.enhance` schedule that values and plans)."""

    name = "resampling"
    Options = ResamplingOptions
    variant_option = "execution"
    options: ResamplingOptions

    @classmethod
    def variant_to_options(cls, variant: str) -> dict[str, Any]:
        """``weighted``, ``online``, ``weighted+online``, ``duplicate+pass``...: an execution
        and/or a valuation mode, joined by ``+``."""
        out: dict[str, Any] = {}
        for part in variant.split("+"):
            key = "execution" if part in EXECUTIONS else "valuation" if part in VALUATIONS else None
            if key is None or key in out:
                raise ConfigError(
                    f"method variant {cls.name}:{variant} is not valid; give an execution ({', '.join(EXECUTIONS)}) "
                    f"and/or a valuation ({', '.join(VALUATIONS)}), joined by '+', e.g. {cls.name}:weighted+online"
                )
            out[key] = part
        return out

    @classmethod
    def variant_label(cls, options: dict[str, Any]) -> str | None:
        parts = [str(options[k]) for k in ("execution", "valuation") if options.get(k)]
        return "+".join(parts) or None

    def __init__(self, options: ResamplingOptions | None = None) -> None:
        super().__init__(options)
        self.plan: ResamplingPlan | None = None
        self.plan_epoch: int = -1
        self.stats: dict[str, Any] = {}
        self.num_samples: int = 0  # storage rows of the training split the plan refers to
        self._copies: Tensor | None = None  # int64 [N_storage, M], weighted execution
        self._fused_ce: list[Tensor] = []  # weighted: this epoch's (sum of the originals' fused CE, count)
        self.resampler: Resampler | None = None
        self._online = OnlineRecorder(self.options.value) if self.options.valuation == "online" else None

    def skips_encoders(self) -> bool:
        """``duplicate``: a batch of units may keep no row of some modality (its encoder does not run);
        ``weighted`` runs every encoder on every batch."""
        return self.options.execution == "duplicate"

    def noop_reason(self, epochs: int) -> str | None:
        """No re-sampling epoch: the warm-up lasts the whole run."""
        if self.options.warmup >= epochs:
            return (
                f"method_options.warmup={self.options.warmup} >= train.epochs={epochs}: re-sampling starts at "
                f"(0-based) epoch warmup, so no epoch re-samples"
            )
        return None

    # -- to implement -------------------------------------------------------------------
    def make_resampler(self, ctx: MethodContext, **common: Any) -> Resampler:
        """The `mmcoop.enhance` re-sampler of this method, built from the options and ``common``
        (the schedule and valuation settings of `resampler_options`)."""
        raise NotImplementedError

    def resampler_options(self, ctx: MethodContext) -> dict[str, Any]:
        """Schedule and valuation settings shared by both re-samplers, from the options and the run."""
        o = self.options
        return {
            "warmup": o.warmup,
            "every": o.valuation_every,
            "value": o.value,
            "device": ctx.device,
            "batch_size": int(o.valuation_batch_size or ctx.eval_batch_size),
            "fold_bn": ctx.fold_batchnorm,
            "seed": ctx.seed,
        }

    def _resampler(self, ctx: MethodContext) -> Resampler:
        if self.resampler is None:
            self.resampler = self.make_resampler(ctx, **self.resampler_options(ctx))
        return self.resampler

    def valuate(self, ctx: MethodContext, rows: Tensor | None) -> tuple[Any, float]:
        """Value storage ``rows`` of the training split (eval mode); returns ``(table, seconds)``.

        Under DDP each rank values ``1/W`` of the rows and all ranks get the whole table.
        With ``valuation: online`` the table comes from the records of the previous epoch
        (no pass; seconds = those spent recording).
        """
        if self._online is not None and self._online.has_records(ctx.epoch - 1):
            recorded = self._online.table(rows, list(ctx.train_data.modalities))
            committed = self._online.committed
            assert committed is not None  # has_records() is true
            return recorded, float(committed["seconds"])
        r = self._resampler(ctx)
        with ctx.autocast():  # the run's precision (bf16 valuation under train.amp=bf16)
            table = r.value_rows(ctx.model, ctx.train_data, rows)
        return table, r.last_seconds

    def build_plan(self, ctx: MethodContext) -> tuple[ResamplingPlan, Any, dict[str, Any]]:
        """Valuate and plan for ``ctx.epoch``: ``(plan, valuation table, extra stats)``.

        Under DDP each rank values ``1/W`` of the rows and all ranks get the whole table,
        so every rank builds the same plan. With ``valuation: online`` the table comes from
        the records of the previous epoch (no pass; seconds = those spent recording).
        """
        r = self._resampler(ctx)
        table, seconds = self.valuate(ctx, r.rows_to_value(ctx.train_data, ctx.epoch))
        plan = r.plan(table, ctx.train_data, ctx.epoch)
        return plan, table, {"time_valuation_s": seconds, **r.extra}

    # -- hooks ----------------------------------------------------------------------------
    def setup(self, ctx: MethodContext) -> None:
        if ctx.train_data.num_modalities < 2:
            raise ConfigError(
                f"method {self.name!r} needs at least 2 modalities; the data has {ctx.train_data.modalities}"
            )
        self.resampler = self.make_resampler(ctx, **self.resampler_options(ctx))

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self._fused_ce = []
        if self._online is not None:  # online: record this epoch when the next one plans anew
            nxt = ctx.epoch + 1 - self.options.warmup
            if nxt >= 0 and nxt % self.options.valuation_every == 0:
                self._online.start(ctx.train_data.num_samples, ctx.epoch)
            else:
                self._online.stop()
        if ctx.epoch < self.options.warmup:  # plain joint training
            self.plan, self.plan_epoch, self._copies = None, -1, None
            ctx.log["train_size"] = len(ctx.train_data)
            return
        if self.plan is not None and self.plan_epoch == ctx.epoch:  # restored mid-epoch: keep the plan
            ctx.log.update(self.stats)
            return
        if self.plan is not None and (ctx.epoch - self.options.warmup) % self.options.valuation_every:
            # between valuations: execute the last plan again (no valuation, no new table)
            ctx.log.update(self.stats)
            ctx.log.update({"time_valuation_s": 0.0, "valued_samples": 0, "plan_epoch": self.plan_epoch + 1})
            return
        plan, table, extra = self.build_plan(ctx)
        _check_same_plan(plan, ctx.epoch)
        self._set_plan(plan, ctx.epoch, ctx.train_data.num_samples)
        mods = ctx.train_data.modalities
        phi = table.phi.double().mean(0).tolist() if len(table.phi) else [float("nan")] * len(mods)
        units = plan.units_per_modality().tolist()
        stats: dict[str, Any] = {modality_key(CONTRIB, m): float(v) for m, v in zip(mods, phi)}
        stats.update({modality_key(COPIES, m): int(c) for m, c in zip(mods, units)})
        stats["train_size"] = len(ctx.train_data) + len(plan)
        stats["valued_samples"] = int(len(table.index))
        stats["plan_epoch"] = ctx.epoch + 1  # 1-based, like the metrics' "epoch"
        stats.update(extra)
        self.stats = stats
        ctx.log.update(stats)
        # per valued sample: the units planned for it (parquet column ``copies_<modality>``)
        copies = plan.copies_per_sample(ctx.train_data.num_samples)[table.index.long().cpu()]
        for k, m in enumerate(mods):
            table.extras[modality_key(COPIES, m)] = copies[:, k]
        table.info.update({"epoch": ctx.epoch, "method": self.name})
        ctx.after_valuation(table, plan)  # an event for the loop's callbacks (the run writes the parquet)

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        if self._online is not None and self._online.recording:  # the originals' coalition values
            with ctx.autocast():
                self._online.record(ctx.model, feats, batch["label"], batch["index"], batch["keep"], batch)

    def on_epoch_end(self, ctx: MethodContext) -> None:
        if self._online is not None:
            self._online.commit()  # gathered over ranks; checkpointed with this epoch

    def _set_plan(self, plan: ResamplingPlan, epoch: int, num_samples: int) -> None:
        self.plan, self.plan_epoch, self.num_samples = plan, epoch, int(num_samples)
        self._copies = plan.copies_per_sample(num_samples) if self.options.execution == "weighted" else None

    def train_set(self, ctx: MethodContext) -> MultimodalDataset:
        if self.plan is None or self.options.execution == "weighted" or len(self.plan) == 0:
            return ctx.train_data
        dev = ctx.train_data.rows.device
        return ctx.train_data.with_units(self.plan.rows.to(dev), self.plan.keep.to(dev))

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        if self._copies is None:
            loss = super().loss(ctx, batch, feats, logits)
            fused = loss.detach()
        else:
            copies = self._copies_on(batch["index"].device)[batch["index"]]  # [B, M]
            parts = weighted_unit_parts(ctx.model, feats, logits, batch["label"], copies, self.options.normalize)
            loss, fused = parts.total, parts.fused_ce
        if self.options.execution == "weighted":
            n = batch["label"].shape[0]
            self._fused_ce.append(torch.stack([fused.double() * n, fused.new_tensor(n, dtype=torch.float64)]))
        return loss

    def epoch_log(self, ctx: MethodContext) -> dict[str, Any]:
        """``ctx.log``, plus under ``weighted`` ``train_fused_ce``: the epoch's mean cross-entropy of the
        originals' fused logits over all ranks. ``train_loss`` also holds the units' terms, so it steps
        up when re-sampling starts after warm-up; ``train_fused_ce`` is the curve of plain training."""
        log = super().epoch_log(ctx)
        if self.options.execution == "weighted":  # every rank: all_gather_objects is a collective
            local = torch.stack(self._fused_ce).sum(0).tolist() if self._fused_ce else [0.0, 0.0]
            parts = [p for p in all_gather_objects(local) if isinstance(p, list)]
            total, count = sum(p[0] for p in parts), sum(p[1] for p in parts)
            if count:
                log["train_fused_ce"] = total / count
        self._fused_ce = []
        return log

    def _copies_on(self, device: torch.device) -> Tensor:
        assert self._copies is not None
        if self._copies.device != device:
            self._copies = self._copies.to(device)
        return self._copies

    def state_dict(self) -> dict[str, Any]:
        return {
            "plan": None if self.plan is None else self.plan.state_dict(),
            "plan_epoch": self.plan_epoch,
            "stats": dict(self.stats),
            "num_samples": self.num_samples,
            **({"online": self._online.state_dict()} if self._online is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats = dict(state.get("stats", {}))
        if self._online is not None:
            self._online.load_state_dict(state.get("online", {}))
        if state.get("plan") is None:
            self.plan, self.plan_epoch, self._copies = None, -1, None
            return
        self._set_plan(
            ResamplingPlan.from_state_dict(state["plan"]), int(state["plan_epoch"]), int(state["num_samples"])
        )


def _check_same_plan(plan: ResamplingPlan, epoch: int) -> None:
    """Under DDP every rank must execute the same plan (else loaders differ in length and
    the gradient all-reduce hangs): compare its size and checksum across ranks."""
    if world_size() == 1:
        return
    key = (len(plan), int(plan.rows.long().sum()), int(plan.keep.long().sum()))
    keys = all_gather_objects(key)
    if len(set(keys)) > 1:
        raise MMCoopError(
            f"epoch {epoch + 1}: the ranks built different re-sampling plans {keys} (units, row sum, kept "
            "modalities); valuation must see identical models and data on every rank"
        )
