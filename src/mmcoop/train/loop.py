"""The training loop: epochs, optimizer/scheduler, method hooks, evaluation, AMP, DDP-ready.

The loop writes no files: it sends events (fit and epoch start/end, after valuation, after
evaluation; `mmcoop.train.callbacks`) to its callbacks, and the caller
(``mmcoop.experiment``) decides through one of them what to persist (metrics, checkpoints).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

from mmcoop.data.base import DatasetSplits, MultimodalDataset, batch_to, make_loader
from mmcoop.data.finite import check_split_finite
from mmcoop.errors import ConfigError, MMCoopError
from mmcoop.methods.base import Method, MethodContext
from mmcoop.train.callbacks import CallbackList, ConsoleLine, EpochEndFunction
from mmcoop.train.config import TrainConfig
from mmcoop.train.distributed import (
    all_reduce_sum,
    average_buffers,
    is_distributed,
    is_main,
    local_device,
    rank,
    world_size,
)
from mmcoop.train.divergence import DivergenceGuard
from mmcoop.train.engine import StepEngine
from mmcoop.train.flops import FlopMeter, parameter_count
from mmcoop.train.metrics import MultimodalMeter
from mmcoop.utils.progress import progress_bar
from mmcoop.utils.seeding import rng_state, set_rng_state
from mmcoop.valuation.valuator import ModalityValuator

EpochCallback = Callable[[dict[str, Any], "Trainer"], None]
#: The evaluation pass values modalities (``phi_<m>``, ``share_<m>``) for at most this many
#: modalities (``2**M`` fusion-head calls per batch on the cached features).
EVAL_SHAPLEY_MAX_MODALITIES = 6


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` if CUDA is available else CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return local_device()
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MMCoopError(f"train.device={name!r} but CUDA is not available here; use device: cpu or auto")
    return dev


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "none":
        return None
    if amp == "fp16" and device.type != "cuda":
        raise MMCoopError("train.amp=fp16 needs a CUDA device; use amp: bf16 or none on CPU")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def param_groups(named: list[tuple[str, nn.Parameter]], lr: float, lr_groups: dict[str, float]) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the trainable parameters not under any ``lr_groups`` prefix
    first (learning rate ``lr``), then one group per prefix (``lr * multiplier``).

    Args:
        named: ``(name, parameter)`` pairs (``model.named_parameters()``).
        lr: the base learning rate.
        lr_groups: prefix (a module path such as ``encoders.text``) -> multiplier; a parameter
            belongs to its longest matching prefix.

    Returns:
        ``[{"params": [...], "lr": ..., "name": prefix or "default"}, ...]``, empty groups left out.

    Raises:
        ConfigError: a prefix that matches no trainable parameter (misspelt, or frozen).
    """
    prefixes = sorted(lr_groups, key=len, reverse=True)
    buckets: dict[str, list[nn.Parameter]] = {"default": [], **{k: [] for k in lr_groups}}
    for name, p in named:
        if p.requires_grad:
            key = next((k for k in prefixes if name == k or name.startswith(k + ".")), "default")
            buckets[key].append(p)
    empty = [k for k in lr_groups if not buckets[k]]
    if empty:
        tops = sorted({".".join(n.split(".")[:2]) for n, p in named if p.requires_grad})
        raise ConfigError(
            f"train.lr_groups {empty} match no trainable parameter (frozen, or misspelt); "
            f"trainable modules: {', '.join(tops)}"
        )
    return [{"params": ps, "lr": lr * lr_groups.get(k, 1.0), "name": k} for k, ps in buckets.items() if ps]


class Trainer:
    """Trains ``model`` on ``splits.train`` with ``method``; selects by validation accuracy.

    Args:
        model: a model implementing `mmcoop.models.protocol`.
        method: a `Method`.
        splits: the dataset splits (test is only touched by `evaluate` when asked).
        config: `TrainConfig`.
        seed: run seed (loader shuffles and method draws derive from it and the epoch).
        callbacks: objects receiving the loop's events (`mmcoop.train.callbacks`); with
            ``config.progress`` a `ConsoleLine` is added.
    """

    def __init__(
        self,
        model: nn.Module,
        method: Method,
        splits: DatasetSplits,
        config: TrainConfig,
        seed: int = 0,
        callbacks: Iterable[Any] | None = None,
    ) -> None:
        self.config = config
        self.callbacks = CallbackList(callbacks, self)
        if config.progress:
            self.callbacks.append(ConsoleLine())
        self.seed = seed
        self.device = resolve_device(config.device)
        self.amp_dtype = autocast_dtype(config.amp, self.device)
        self.model = model.to(self.device)
        self.method = method
        self.splits = splits
        if config.data_on_device and self.device.type != "cpu":
            self.splits = DatasetSplits(
                splits.name,
                splits.train.to(self.device),
                splits.val.to(self.device),
                splits.test.to(self.device),
                splits.info,
            )
        self.loader_options = {
            "num_workers": config.num_workers,
            "pin_memory": config.pin_memory,
            "persistent_workers": config.num_workers > 0,
        }
        self.ctx = MethodContext(
            model=self.model,
            train_data=self.splits.train,
            val_data=self.splits.val,
            device=self.device,
            seed=seed,
            batch_size=config.batch_size,
            eval_batch_size=config.eval_batch_size,
            amp_dtype=self.amp_dtype,
            fold_batchnorm=config.fold_batchnorm,
        )
        self.ctx.listener = self.callbacks  # the method's after_valuation events reach the callbacks
        limit = type(method).max_modalities
        mods = self.splits.train.modalities
        if limit is not None and len(mods) > limit:
            raise ConfigError(
                f"method {method.name!r} is defined for at most {limit} modalities; the data has {len(mods)} "
                f"({', '.join(mods)}): pick another method or fewer modalities"
            )
        self.method.setup(self.ctx)
        self.extra = nn.ModuleDict(dict(self.method.modules())).to(self.device)
        self.optimizer = self._make_optimizer()
        self.ctx.optimizer = self.optimizer
        self.scheduler = (
            torch.optim.lr_scheduler.StepLR(self.optimizer, config.step_size, config.gamma)
            if config.step_size > 0
            else None
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.amp == "fp16")
        self.engine = StepEngine(
            self.model,
            self.extra,
            self.optimizer,
            self.scaler,
            self.device,
            self.amp_dtype,
            config.fold_batchnorm,
            guard=DivergenceGuard.from_config(config),
            loader_options=self.loader_options,
            compile_model=config.compile,
            find_unused=(
                self.method.skips_encoders() if config.find_unused_parameters is None else config.find_unused_parameters
            ),
        )
        self.ctx.attach(self.engine)
        self.epoch = 0  # next epoch to run
        self.best_val = -math.inf
        self.best_epoch = -1
        self.best_state: dict[str, Tensor] | None = None
        self.sample_visits = 0  # training units seen, all epochs (for compute-matched comparisons)
        self.train_flops_total = 0  # training FLOPs of all epochs (train.count_flops)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        named = [(f"method.{n}", p) for n, p in self.extra.named_parameters()]
        groups = param_groups(list(self.model.named_parameters()) + named, c.lr, c.lr_groups)
        if not groups:
            raise MMCoopError("the model has no trainable parameters (every parameter has requires_grad=False)")
        if c.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        adam = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam  # decoupled vs L2 weight decay
        return adam(groups, lr=c.lr, weight_decay=c.weight_decay)

    def _autocast(self) -> contextlib.AbstractContextManager:
        return self.engine.autocast()

    # -- evaluation -----------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, dataset: MultimodalDataset, desc: str = "eval") -> dict[str, float]:
        """Accuracy, macro-F1, mean loss and every single modality's accuracy on ``dataset``.

        Under DDP each rank evaluates rows ``r, r+W, ...`` and the sums are reduced: exact,
        no padded duplicates.

        Raises:
            DataError: the loss is NaN/inf because inputs of the split are (the split, modality and first
                sample named; a lazy source is checked only on a sample of rows when it loads).
        """
        meter = MultimodalMeter(dataset.num_classes, dataset.modalities)
        batches = self.engine.inference(dataset, self.config.eval_batch_size)
        shapley = len(dataset.modalities) <= EVAL_SHAPLEY_MAX_MODALITIES
        flops = FlopMeter(self.config.count_flops)  # inference: the encoders and the method's prediction
        it = iter(progress_bar(batches, desc, enabled=self.config.progress and is_main(), leave=False))
        while True:
            with flops:
                got = next(it, None)  # the engine encodes the batch here
                if got is None:
                    break
                batch, feats = got
                net = self.engine.inference_net
                with self._autocast():
                    logits = self.method.predict(net, feats, batch).float()
            with self._autocast():
                uni = self.method.unimodal_logits(net, feats).float()
                # the paper's Shapley values on the features already encoded (fusion head only, no encoder pass)
                phi = ModalityValuator(net, "paper").attribute_features(feats, batch["label"]).phi if shapley else None
            loss = nn.functional.cross_entropy(logits, batch["label"], reduction="sum")
            meter.update(logits, batch["label"], uni, loss, phi=phi)
        meter.sync()
        metrics = meter.compute()
        if not math.isfinite(metrics.get("loss", 0.0)):  # the reduced sum: every rank takes this branch
            check_split_finite(dataset, self.splits.name, desc, self.splits.info.get("source", "unknown source"))
        if self.config.count_flops and len(dataset):
            metrics["flops_per_sample"] = float(
                all_reduce_sum(torch.tensor(float(flops.total()), device=self.device))
            ) / len(dataset)
        self.callbacks.after_evaluation(desc, metrics)
        return metrics

    # -- training ---------------------------------------------------------------------
    def train_epoch(self) -> dict[str, Any]:
        """Run one epoch of the method; returns training statistics."""
        ctx = self.ctx
        ctx.epoch = self.epoch
        ctx.log = {}
        self.model.train()
        self.extra.train()
        self.callbacks.on_epoch_start(self.epoch)
        flops = FlopMeter(self.config.count_flops)
        with flops:
            self.method.on_epoch_start(ctx)  # a valuation pass, when the method makes one
        hook_flops = flops.total()
        data = self.method.train_set(ctx).train_mode(True)  # training transforms (augmentation)
        loader = make_loader(
            data,
            self.config.batch_size,
            shuffle=True,
            seed=self.seed,
            epoch=self.epoch,
            distributed=is_distributed(),
            **self.loader_options,
        )
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        seen = 0
        steps0 = ctx.optimizer_steps
        sync = self.device.type == "cuda"
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        bar = progress_bar(
            loader, f"epoch {self.epoch + 1}/{self.config.epochs}", enabled=self.config.progress and is_main()
        )
        with flops:
            for batch in bar:
                batch = batch_to(batch, self.device)
                loss, logits = self.method.train_step(ctx, batch)
                n = batch["label"].shape[0]
                loss_sum += loss.detach().double() * n
                correct += (logits.detach().argmax(-1) == batch["label"]).sum()
                seen += n
            step_flops = flops.total() - hook_flops
            self.method.on_epoch_end(ctx)
        totals = all_reduce_sum(
            torch.stack(
                [
                    loss_sum,
                    correct.double(),
                    torch.tensor(float(seen), device=self.device, dtype=torch.float64),
                    torch.tensor(float(flops.total()), device=self.device, dtype=torch.float64),
                    torch.tensor(float(step_flops), device=self.device, dtype=torch.float64),
                ]
            )
        )
        loss_sum, correct, seen = totals[0], totals[1], int(totals[2])
        epoch_flops, step_flops = int(totals[3]), int(totals[4])
        average_buffers(self.model)  # every rank evaluates, values and saves the same model
        average_buffers(self.extra)
        if self.scheduler is not None:
            self.scheduler.step()
        if sync:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        self.sample_visits += seen
        log = self.method.epoch_log(ctx)
        record = {
            "train_loss": float(loss_sum) / max(seen, 1),
            "train_acc": float(correct) / max(seen, 1),
            "train_units": seen,
            "sample_visits": self.sample_visits,
            "optimizer_steps": ctx.optimizer_steps,
            "epoch_steps": ctx.optimizer_steps - steps0,
            "time_train_s": elapsed,
            "parameters": parameter_count(self.model, self.extra),
        }
        if self.config.count_flops:
            self.train_flops_total += epoch_flops
            record.update(
                train_flops=epoch_flops,
                step_flops_per_unit=step_flops / max(seen, 1),
                train_flops_total=self.train_flops_total,
            )
        record.update(log)
        return record

    @property
    def stopped_early(self) -> bool:
        """Whether early stopping ends training now: ``config.patience > 0`` and the last
        ``patience`` finished epochs did not improve the best validation accuracy."""
        p = self.config.patience
        return p > 0 and self.best_epoch >= 1 and self.epoch - self.best_epoch >= p

    def fit(self, on_epoch_end: EpochCallback | None = None) -> None:
        """Train from `epoch` to ``config.epochs``, evaluating on validation each epoch;
        with ``config.patience`` stop once that many epochs passed without a better validation
        accuracy (checked from the restored state too, so a resumed run stops where it would have).

        Args:
            on_epoch_end: optional ``fn(record, trainer)`` called after every epoch, after the
                callbacks' ``on_epoch_end`` (a shorthand for a one-event callback).
        """
        if on_epoch_end is not None:
            self.callbacks.append(EpochEndFunction(on_epoch_end))
        try:
            self._fit()
        finally:
            if on_epoch_end is not None:
                self.callbacks.callbacks = [
                    c
                    for c in self.callbacks.callbacks
                    if not (isinstance(c, EpochEndFunction) and c.fn is on_epoch_end)
                ]

    def _fit(self) -> None:
        self.callbacks.on_fit_start()
        while self.epoch < self.config.epochs and not self.stopped_early:
            t0 = time.perf_counter()
            record: dict[str, Any] = {"epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            record.update(self.train_epoch())
            val = self.evaluate(self.splits.val, "val")
            record.update({f"val_{k}": v for k, v in val.items()})
            record["is_best"] = val["acc"] > self.best_val
            if record["is_best"]:
                self.best_val, self.best_epoch = val["acc"], self.epoch + 1
                self.best_state = {
                    "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                    "method_modules": {k: v.detach().clone() for k, v in self.extra.state_dict().items()},
                }
            record["best_val_acc"] = self.best_val
            record["seconds"] = time.perf_counter() - t0
            self.epoch += 1
            if self.config.patience > 0:
                record["stopped_early"] = self.stopped_early and self.epoch < self.config.epochs
            self.callbacks.on_epoch_end(record)
        self.callbacks.on_fit_end()

    # -- checkpointing ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: model, optimizer, scheduler, method, RNG, epoch."""
        return {
            "model": self.model.state_dict(),
            "method_modules": self.extra.state_dict(),
            "divergence": self.engine.guard.state_dict(),
            "sample_visits": self.sample_visits,
            "train_flops_total": self.train_flops_total,
            "optimizer_steps": self.ctx.optimizer_steps,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict(),
            "method": self.method.state_dict(),
            "rng": rng_state(),
            "epoch": self.epoch,
            "best_val": self.best_val,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
        }

    def rank_state(self) -> dict[str, Any]:
        """This process's own state under ``torchrun`` (each rank's RNG streams and divergence
        reference differ): gathered from every rank into the checkpoint (``rank_states``)."""
        return {"rng": rng_state(), "divergence": self.engine.guard.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`; under ``torchrun`` each rank restores its own entry of
        ``state["rank_states"]`` (RNG streams, divergence reference) when the checkpoint holds one
        per rank of this world size (else every rank takes rank 0's, as single-process checkpoints do)."""
        self.model.load_state_dict(state["model"])
        self.extra.load_state_dict(state.get("method_modules", {}))
        self.engine.guard.load_state_dict(state.get("divergence", {}))
        self.sample_visits = int(state.get("sample_visits", 0))
        self.train_flops_total = int(state.get("train_flops_total", 0))
        self.ctx.optimizer_steps = int(state.get("optimizer_steps", 0))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.method.load_state_dict(state["method"])
        set_rng_state(state["rng"])
        ranks = state.get("rank_states")
        if ranks is not None and len(ranks) == world_size():
            own = ranks[rank()]
            set_rng_state(own["rng"])
            self.engine.guard.load_state_dict(own.get("divergence", {}))
        self.epoch = int(state["epoch"])
        self.best_val = float(state["best_val"])
        self.best_epoch = int(state["best_epoch"])
        self.best_state = state.get("best_state")

    def load_best(self) -> None:
        """Load the weights of the epoch with the best validation accuracy."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state["model"])
            self.extra.load_state_dict(self.best_state["method_modules"])
