"""PyTorch Lightning callbacks: modality valuation and the paper's re-sampling in a ``LightningModule``.

Needs ``pip install 'mmcoop[lightning]'`` (``pytorch-lightning``; tested with 2.6 on torch 2.14).

What the ``LightningModule`` needs: nothing of the mmcoop model contract by hand. One of

* ``self.encoders`` (an ``nn.ModuleDict``: modality name -> encoder ``[B, *shape] -> [B, d_k]``,
  in modality order) and ``self.head`` (the list of per-modality features -> logits); or
* ``self.model = mmcoop.models.from_modules(encoders, head)`` (or any model with
  ``modalities``, ``encode``, ``fuse``); or
* the module itself implements ``modalities``, ``encode(inputs, keep)``, ``fuse(features, keep)``.

`contract_model` finds it (sharing the module's parameters). Batches are dicts
``{"inputs": {modality: Tensor}, "label": Tensor}`` (a ``Dataset`` of such items, the
convention of `DictDatasetSource`); the re-sampled batches add
``"keep"`` (bool ``[B, M]``) and, under ``weighted``, ``"copies"``. A ``training_step``
that works with and without re-sampling::

    def training_step(self, batch, batch_idx):
        net = contract_model(self)
        feats = net.encode(batch["inputs"], batch.get("keep"))
        logits = net.fuse(feats, batch.get("keep"))
        return resampling_loss(net, feats, logits, batch, log=self)  # CE (+ the weighted units); logs loss/*

Callbacks:

* `ModalityValuation` -- values a split every N epochs, logs the dataset-level
  contribution and each modality's accuracy alone through the module's logger
  (``pl_module.log``), writes ``valuation/<split>_epoch_XXX.parquet``.
* `SampleLevelResampling` / `ModalityLevelResampling` -- value the training set
  at the end of each epoch and train the next one on the re-sampled dataset (the training
  dataloader is replaced each epoch; ``execution="weighted"`` keeps the originals and the
  loss hook `resampling_loss` adds the units).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from mmcoop.enhance import (
    EXECUTIONS,
    ModalityLevelResampler,
    ResampledDataset,
    Resampler,
    ResamplingPlan,
    SampleLevelResampler,
    collate_units,
    weighted_unit_parts,
)
from mmcoop.errors import ConfigError
from mmcoop.models import from_modules
from mmcoop.models.protocol import MultimodalModel
from mmcoop.valuation import ValuationTable, valuate_dataset

try:
    import pytorch_lightning as pl
except ImportError:  # pragma: no cover - the extra is installed in dev/CI
    try:
        import lightning.pytorch as pl  # type: ignore[no-redef]
    except ImportError:
        raise ImportError(
            "mmcoop.integrations.lightning needs PyTorch Lightning: pip install 'mmcoop[lightning]'"
        ) from None

DDPStrategy = pl.strategies.DDPStrategy
rank_zero_info = pl.utilities.rank_zero_info


def contract_model(pl_module: nn.Module) -> Any:
    """The mmcoop model of a ``LightningModule`` (see the module docstring), sharing its parameters.

    Raises:
        ConfigError: the module has none of ``model``, ``encoders`` + ``head``, or ``encode``/``fuse``.
    """
    inner = getattr(pl_module, "model", None)
    if isinstance(inner, MultimodalModel):
        return inner
    if all(hasattr(pl_module, a) for a in ("modalities", "encode", "fuse")):
        return pl_module
    cached = pl_module.__dict__.get("_mmcoop_model")
    if cached is not None:
        return cached
    encoders, head = getattr(pl_module, "encoders", None), getattr(pl_module, "head", None)
    if isinstance(encoders, (Mapping, nn.ModuleDict)) and isinstance(head, nn.Module):
        model = from_modules(dict(encoders.items()), head)  # the same modules: parameters shared
        pl_module.__dict__["_mmcoop_model"] = model  # not a submodule: no duplicate parameters
        return model
    raise ConfigError(
        f"{type(pl_module).__name__} exposes no multimodal model: give it self.encoders (nn.ModuleDict modality -> "
        "encoder) and self.head (list of features -> logits), or self.model = mmcoop.models.from_modules(encoders, "
        "head), or implement modalities, encode(inputs, keep) and fuse(features, keep)"
    )


def resampling_loss(
    model: Any,
    feats: Tensor,
    logits: Tensor,
    batch: Mapping[str, Any],
    normalize: str = "batch",
    log: Any = None,
) -> Tensor:
    """The loss hook of the re-sampling callbacks: mean cross-entropy of ``logits [B, C]``, plus the
    ``weighted`` execution's copies-weighted unimodal terms when ``batch`` has ``"copies"``
    (`weighted_unit_parts`).

    Args:
        model: the contract model (`contract_model`).
        feats: its features ``[B, M, D]`` of ``batch``.
        logits: its fused logits ``[B, C]`` of ``batch``.
        batch: the training batch (``label``; ``copies`` under ``weighted``).
        normalize: ``weighted`` only, see `weighted_unit_loss`.
        log: the ``LightningModule`` (``self``): logs ``loss/total`` (the returned loss) and
            ``loss/fused_ce`` (the originals' fused cross-entropy) every step. Under ``weighted``
            the total holds the units' terms and steps up when re-sampling starts after warm-up;
            ``loss/fused_ce`` is the curve to compare with plain training.

    Returns:
        The scalar loss to back-propagate.
    """
    if "copies" in batch:
        parts = weighted_unit_parts(model, feats, logits, batch["label"], batch["copies"], normalize)
        loss, fused = parts.total, parts.fused_ce
    else:
        loss = F.cross_entropy(logits.float(), batch["label"])
        fused = loss.detach()
    if log is not None:
        log.log_dict({"loss/total": loss.detach(), "loss/fused_ce": fused}, batch_size=int(batch["label"].shape[0]))
    return loss


def _base_dataset(loader: Any) -> Dataset:
    ds = getattr(loader, "dataset", None)
    if ds is None:
        raise ConfigError(
            f"the training dataloader ({type(loader).__name__}) has no .dataset; the re-sampling "
            "callbacks need a DataLoader over a map-style Dataset of dict items"
        )
    return ds.base if isinstance(ds, ResampledDataset) else ds


def _loader_of(trainer: Any, split: str) -> Any:
    loaders = trainer.train_dataloader if split == "train" else trainer.val_dataloaders
    if isinstance(loaders, (list, tuple)):
        loaders = loaders[0] if loaders else None
    if loaders is None:
        raise ConfigError(f"ModalityValuation(split={split!r}): the trainer has no {split} dataloader; pass dataset=")
    return loaders


def _detect_unused_parameters(trainer: Any, who: str) -> None:
    """Turn on DDP's unused-parameter detection for a callback whose batches can skip an encoder.

    A batch of ``duplicate`` units that all drop one modality runs no encoder of it: that rank's
    step leaves the encoder's parameters without a gradient, and DDP without
    ``find_unused_parameters`` then waits in backward for a gradient all-reduce the other ranks
    never join (a silent hang). ``strategy="ddp"`` (the option not given) gets the detection
    here, before the strategy wraps the model, as ``mmcoop train`` turns it on for such methods
    (`Method.skips_encoders`); an explicit ``find_unused_parameters=False``
    is refused with one message.

    Raises:
        ConfigError: the DDP strategy was given ``find_unused_parameters=False``.
    """
    strategy = trainer.strategy
    kwargs = getattr(strategy, "_ddp_kwargs", None)
    if not isinstance(strategy, DDPStrategy) or not isinstance(kwargs, dict):
        return
    if kwargs.get("find_unused_parameters", False) is True:
        return
    if "find_unused_parameters" in kwargs:
        raise ConfigError(
            f"{who}(execution='duplicate') under DDP needs unused-parameter detection: a batch of re-sampled "
            "units can drop a modality on one rank and leave its encoder without a gradient, which stalls "
            "DDP; use strategy='ddp_find_unused_parameters_true' (or execution='weighted', which runs every encoder)"
        )
    kwargs["find_unused_parameters"] = True
    rank_zero_info(
        f"{who}(execution='duplicate'): DDP's find_unused_parameters turned on (a batch of units can skip an encoder)"
    )


def _log(pl_module: Any, values: dict[str, float]) -> None:
    """Log epoch values that every rank holds alike (the gathered valuation): the DDP mean is the value."""
    if values:
        pl_module.log_dict({k: float(v) for k, v in values.items()}, on_step=False, on_epoch=True, sync_dist=True)


class ModalityValuation(pl.Callback):
    """Value a split every ``every_n_epochs`` epochs (at the end of the training epoch).

    Logs ``contribution_<split>/<modality>`` (mean Shapley value), ``acc_alone_<split>/<modality>``
    and ``time/valuation_<split>_s`` through ``pl_module.log`` (so every Lightning logger gets them)
    and writes ``<dirpath>/<split>_epoch_XXX.parquet`` (rank 0). (The re-sampling callbacks log the
    training set's ``contribution/<modality>``, ``copies/<modality>`` and ``time/valuation_s``,
    the tags of ``mmcoop train``'s loggers.)

    Args:
        dataset: the dataset to value (a Dataset of dict items or a MultimodalDataset); default:
            the trainer's ``split`` dataloader's dataset.
        split: ``"val"`` or ``"train"`` (the originals, never re-sampled units).
        every_n_epochs: value after every this many epochs.
        value: coalition value function.
        batch_size: samples per valuation batch.
        dirpath: where the parquet files go (default ``<trainer.log_dir or default_root_dir>/valuation``;
            ``False``: no files).

    Attributes:
        tables: ``{epoch (1-based): ValuationTable}`` of the valuations made.
    """

    def __init__(
        self,
        dataset: Dataset | None = None,
        split: str = "val",
        every_n_epochs: int = 1,
        value: str = "paper",
        batch_size: int = 128,
        dirpath: str | Path | bool | None = None,
    ) -> None:
        if split not in ("train", "val"):
            raise ConfigError(f"ModalityValuation: split must be 'train' or 'val', got {split!r}")
        if int(every_n_epochs) < 1:
            raise ConfigError(f"ModalityValuation: every_n_epochs must be >= 1, got {every_n_epochs}")
        self.dataset, self.split, self.every = dataset, split, int(every_n_epochs)
        self.value, self.batch_size, self.dirpath = value, int(batch_size), dirpath
        self.tables: dict[int, ValuationTable] = {}
        self._wrapped: tuple[Any, Any] | None = None
        self._root: Path | None = None  # the resolved dirpath (set in setup, on every rank)

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Resolve ``dirpath`` on every rank: ``trainer.log_dir`` is a collective (a broadcast from
        rank 0) under DDP, so reading it on rank 0 only would stall the other ranks forever."""
        if self.dirpath is False:
            self._root = None
        elif isinstance(self.dirpath, (str, Path)) and str(self.dirpath):
            self._root = Path(self.dirpath)
        else:
            self._root = Path(trainer.log_dir or trainer.default_root_dir) / "valuation"

    def _data(self, trainer: Any) -> Any:
        from mmcoop.enhance import as_multimodal

        ds = self.dataset if self.dataset is not None else _base_dataset(_loader_of(trainer, self.split))
        if self._wrapped is None or self._wrapped[0] is not ds:
            self._wrapped = (ds, as_multimodal(ds))
        return self._wrapped[1]

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every:
            return
        t0 = time.perf_counter()
        table = valuate_dataset(
            contract_model(pl_module),
            self._data(trainer),
            batch_size=self.batch_size,
            value=self.value,
            device=pl_module.device,
            distributed=True,
            split=self.split,
        )
        table.info.update({"epoch": epoch - 1})
        seconds = time.perf_counter() - t0
        self.tables[epoch] = table
        sp = self.split
        values = {f"contribution_{sp}/{m}": v for m, v in table.mean_contribution().items()}
        values.update({f"acc_alone_{sp}/{m}": v for m, v in table.unimodal_accuracy().items()})
        values[f"time/valuation_{sp}_s"] = seconds
        _log(pl_module, values)
        if self._root is not None and trainer.is_global_zero:
            table.to_parquet(self._root / f"{self.split}_epoch_{epoch:03d}.parquet")


class _Resampling(pl.Callback):
    """Shared machinery: plan at the end of each epoch for the next one, swap the training dataloader."""

    def __init__(
        self,
        resampler: Resampler,
        execution: str = "duplicate",
        normalize: str = "batch",
        batch_size: int | None = None,
    ) -> None:
        if execution not in EXECUTIONS:
            raise ConfigError(f"execution={execution!r} is not valid; valid values: {', '.join(EXECUTIONS)}")
        self.resampler, self.execution, self.normalize = resampler, execution, normalize
        self.batch_size = batch_size
        self.plans: dict[int, ResamplingPlan | None] = {}  # epoch (0-based) -> the plan it trains on
        self._base: Dataset | None = None
        self._loader_kwargs: dict[str, Any] = {}

    def loss(self, model: Any, feats: Tensor, logits: Tensor, batch: Mapping[str, Any]) -> Tensor:
        """The loss hook (see `resampling_loss`) with this callback's ``normalize``."""
        return resampling_loss(model, feats, logits, batch, self.normalize)

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.execution == "duplicate":
            _detect_unused_parameters(trainer, type(self).__name__)

    def _install(self, trainer: Any, pl_module: Any, epoch: int) -> None:
        """Plan ``epoch`` (0-based) from the current weights and make it the training dataloader."""
        assert self._base is not None
        plan = self.resampler.step(epoch, contract_model(pl_module), self._base)
        self.plans[epoch] = plan
        ds = ResampledDataset(self._base, plan, self.execution)
        loader = DataLoader(ds, shuffle=True, collate_fn=collate_units, **self._loader_kwargs)
        trainer.fit_loop._data_source.instance = loader  # Lightning reads it at the next (re)load

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        original = trainer.fit_loop._data_source.dataloader()
        self._base = _base_dataset(original)
        self._loader_kwargs = {
            "batch_size": self.batch_size or getattr(original, "batch_size", None) or 1,
            "num_workers": getattr(original, "num_workers", 0),
        }
        trainer.reload_dataloaders_every_n_epochs = 1  # a new dataset every epoch
        self._install(trainer, pl_module, trainer.current_epoch)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        plan, table = self.plans.get(epoch), self.resampler.last_table
        if plan is not None:  # what this epoch trained on
            values: dict[str, float] = {
                f"copies/{m}": float(c) for m, c in zip(plan.modalities or [], plan.units_per_modality().tolist())
            }
            if table is not None and self.resampler.plan_epoch == epoch:
                values.update({f"contribution/{m}": v for m, v in table.mean_contribution().items()})
                values["time/valuation_s"] = self.resampler.last_seconds
            _log(pl_module, values)
        last = trainer.max_epochs is not None and trainer.max_epochs >= 0 and epoch + 1 >= trainer.max_epochs
        if not last:  # plan the next epoch from the weights at the end of this one
            self._install(trainer, pl_module, epoch + 1)

    def state_dict(self) -> dict[str, Any]:
        return self.resampler.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.resampler.load_state_dict(state_dict)


class SampleLevelResampling(_Resampling):
    """The paper's sample-level re-sampling in a Lightning ``Trainer``.

    Args:
        warmup, thresholds, max_copies, value, every, batch_size (valuation): the options of
            `SampleLevelResampler` (passed as keywords).
        execution: ``duplicate`` (units appended to the dataset) or ``weighted`` (originals
            with ``copies``; use `resampling_loss` in ``training_step``).
        normalize: ``weighted`` only, see `weighted_unit_loss`.
        train_batch_size: batch size of the re-sampled loader (default: the original loader's).

    Example:
        >>> trainer = pl.Trainer(max_epochs=10, callbacks=[SampleLevelResampling(warmup=5)])
    """

    def __init__(
        self,
        execution: str = "duplicate",
        normalize: str = "batch",
        train_batch_size: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(SampleLevelResampler(**options), execution, normalize, train_batch_size)


class ModalityLevelResampling(_Resampling):
    """The paper's modality-level re-sampling (the subset Z only is valued) in a Lightning ``Trainer``.

    Args:
        part_ratio, alpha, func, warmup, value, every, seed, batch_size (valuation): the options
            of `ModalityLevelResampler` (passed as keywords).
        execution, normalize, train_batch_size: see `SampleLevelResampling`.
    """

    def __init__(
        self,
        execution: str = "duplicate",
        normalize: str = "batch",
        train_batch_size: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(ModalityLevelResampler(**options), execution, normalize, train_batch_size)


__all__ = ["ModalityValuation", "SampleLevelResampling", "ModalityLevelResampling", "contract_model", "resampling_loss"]
