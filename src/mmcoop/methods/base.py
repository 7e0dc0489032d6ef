"""Training strategies as small classes with hooks, registered by name.

The training loop (``mmcoop.train``) calls, per epoch::

    method.on_epoch_start(ctx)                 # e.g. valuate and build a re-sampling plan
    data = method.train_set(ctx)               # the epoch's training set (a dataset view)
    for batch in loader(data):
        loss, logits = method.train_step(ctx, batch)   # default below
    method.on_epoch_end(ctx)                   # e.g. a pass over ctx.val_data
    log = method.epoch_log(ctx)                # extra fields for metrics.jsonl

The default `Method.train_step` is::

    ctx.zero_grad()
    feats, logits = ctx.forward(batch["inputs"], keep)        # [B, M, D], [B, C]
    loss = method.loss(ctx, batch, feats, logits)             # scalar
    ctx.backward(loss); ctx.unscale_gradients()           # true gradients (fp16 AMP), once
    method.after_backward(ctx, batch, feats, logits); ctx.step()

A method may replace all of it: call `MethodContext.forward` / ``backward`` /
``step`` several times, use its own modules (`Method.modules`: their parameters
join the optimizer, the device, the checkpoint and exact resume), read ``ctx.val_data``,
run inference passes with `MethodContext.inference`, and change what evaluation
predicts (`Method.predict`). A method never imports the training loop:
everything it may touch is in `MethodContext`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch, MultimodalDataset
from mmcoop.errors import ConfigError
from mmcoop.models.protocol import unimodal_logits
from mmcoop.utils.registry import Registry
from mmcoop.utils.seeding import epoch_generator


class MethodContext:
    """What a method may read and call during training (built by the training loop).

    Attributes:
        model: the model being trained (`mmcoop.models.protocol`; unwrapped).
        train_data: the original training split (storage of all training samples).
        val_data: the validation split (a method may read it, e.g. once per epoch).
        device: where the model lives.
        epoch: current epoch (0-based).
        seed: run seed; derive every random draw from it (and ``epoch``) so all DDP ranks agree.
        batch_size: training batch size.
        eval_batch_size: inference batch size (evaluation; valuation by default).
        fold_batchnorm: run inference passes on a BatchNorm-folded copy.
        amp_dtype: autocast dtype or ``None``.
        optimizer: the optimizer over the model's and the method's module parameters.
        log: scratch dict a method may fill during the epoch; merged into metrics.jsonl.
        optimizer_steps: optimizer steps taken so far in the run (all epochs).
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: MultimodalDataset,
        device: torch.device,
        *,
        val_data: MultimodalDataset | None = None,
        epoch: int = 0,
        seed: int = 0,
        batch_size: int = 64,
        eval_batch_size: int = 128,
        fold_batchnorm: bool = True,
        amp_dtype: torch.dtype | None = None,
        optimizer: Any = None,
        engine: Any = None,
    ) -> None:
        # Any: a model of the protocol (modalities, encode, fuse, ...) whose attributes nn.Module's
        # typing would report as ``Tensor | Module``
        self.model: Any = model
        self.train_data = train_data
        self.val_data = val_data
        self.device = device
        self.epoch = epoch
        self.seed = seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.fold_batchnorm = fold_batchnorm
        self.amp_dtype = amp_dtype
        self.optimizer = optimizer
        self.log: dict[str, Any] = {}
        self.optimizer_steps = 0
        self._engine = engine  # the loop's step engine (forward/backward/step under DDP and AMP)
        self.listener: Any = None  # the loop's event dispatcher (mmcoop.train.callbacks); None outside a loop

    def attach(self, engine: Any) -> None:
        """Give the context the loop's step engine (called by the loop once the optimizer over
        the method's modules exists, i.e. after `Method.setup`): from then on
        `forward`, `backward`, `step` and `inference` work."""
        self._engine = engine

    def _require_engine(self) -> Any:
        if self._engine is None:
            raise RuntimeError(
                "this MethodContext has no step engine yet: forward/backward/step/inference work from "
                "on_epoch_start on (Method.setup runs before the loop builds the optimizer and engine), "
                "or attach one with ctx.attach(engine)"
            )
        return self._engine

    def generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator seeded by (seed, epoch, salt): identical on every rank and on resume."""
        return epoch_generator(self.seed, self.epoch, salt)

    def after_valuation(self, table: Any, plan: Any = None) -> None:
        """Tell the loop's callbacks that the method valued the data (a
        `ValuationTable`) and planned (a ``ResamplingPlan`` or ``None``);
        the run writes the table as ``valuation/epoch_XXX.parquet``. A no-op outside a loop."""
        if self.listener is not None:
            self.listener.after_valuation(table, plan)

    # -- the training step's building blocks (DDP- and AMP-aware) -------------------------
    def forward(self, inputs: dict[str, Tensor], keep: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(features [B, M, D], logits [B, C])`` of a training batch, through the DDP wrapper
        and under autocast; ``keep`` bool ``[B, M]`` removes modalities (``None`` = all kept)."""
        return self._require_engine().forward(inputs, keep)

    def autocast(self) -> Any:
        """The run's autocast context (a no-op without ``train.amp``)."""
        if self._engine is None:  # a context built outside the loop (tests, scripts)
            if self.amp_dtype is None:
                return contextlib.nullcontext()
            return torch.autocast(self.device.type, dtype=self.amp_dtype)
        return self._engine.autocast()

    def zero_grad(self) -> None:
        """Clear the gradients of every trained parameter."""
        self._require_engine().zero_grad()

    def backward(self, loss: Tensor, retain_graph: bool = False) -> None:
        """``loss.backward()`` with the AMP scaler; call it several times (with ``retain_graph``)
        inside `no_sync` to combine several losses' gradients by hand."""
        self._require_engine().backward(loss, retain_graph)

    def no_sync(self) -> Any:
        """Context in which backward passes do not all-reduce under DDP; the next `step`
        averages the gradients over ranks itself. Needed for several backward passes per
        forward (DDP reduces once per forward): put the forward *and* the backward passes
        inside it. A no-op in one process."""
        return self._require_engine().no_sync()

    def unscale_gradients(self) -> None:
        """Make every ``.grad`` final before a hook reads or edits it: under fp16 AMP divided by the
        GradScaler's loss scale (once per step; `step` does not divide again) and averaged
        over ranks; otherwise a no-op. The default `Method.train_step` calls it before
        `Method.after_backward`, so every method's hook sees true gradients; a method with
        its own ``train_step`` that edits gradients calls it between its last backward and step."""
        if self._engine is not None:
            self._engine.unscale_()

    def step(self) -> None:
        """Average gradients over ranks where DDP did not, unscale (AMP) and take an optimizer step."""
        self._require_engine().step()
        self.optimizer_steps += 1

    def check_loss(self, loss: Tensor) -> None:
        """Stop with a clear error when the loss is non-finite or explodes (``train.divergence_factor``)."""
        self._require_engine().check_loss(loss, self.epoch, self.optimizer_steps)

    def inference(self, dataset: MultimodalDataset, batch_size: int | None = None) -> Iterator[tuple[Batch, Tensor]]:
        """Batches of ``dataset`` with their features ``[B, M, D]``, in eval mode without gradients
        (eval transforms, BatchNorm-folded copy when enabled); the model's modes are restored
        after the loop. Use ``coalition_logits(ctx.inference_model, feats, masks)`` or
        ``ctx.inference_model.fuse(feats)`` on the features."""
        return self._require_engine().inference(dataset, batch_size or self.eval_batch_size)

    @property
    def inference_model(self) -> nn.Module:
        """The model used by the current `inference` loop (folded copy or the model)."""
        return self._require_engine().inference_net


@dataclass
class MethodOptions:
    """Options of a method; subclasses add fields. Unknown keys are config errors.

    Attributes:
        allow_noop: run the method even where its options make it train exactly like ``joint``
            over the run's epochs (e.g. a re-sampling warm-up as long as the run); such a run
            is refused by default (see `Method.noop_reason`). Every method accepts it.
    """

    allow_noop: bool = field(default=False, kw_only=True)


class Method:
    """Base training strategy: plain cross-entropy on the fused logits (``joint``)."""

    #: The registered name (set by ``@METHODS.register(name)``: written once).
    name: ClassVar[str] = "base"
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    #: The option a short variant selects: ``compare --methods name:value`` and run names
    #: (e.g. ``execution`` for the re-sampling methods); ``None`` = no variants.
    variant_option: ClassVar[str | None] = None
    #: The most modalities the method is defined for (``None`` = any M >= 2); the loop refuses
    #: more with a clear error before training starts.
    max_modalities: ClassVar[int | None] = None
    #: An option without which ``compare --methods all`` leaves the method out (``unimodal``:
    #: ``modality``, since "all" should not silently pick one); ``None`` = always included.
    all_needs_option: ClassVar[str | None] = None
    #: Published options per preset name (``--preset``); ``"*"`` applies to every preset (the
    #: preset's own entry wins). Read through `preset_options`.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, options: MethodOptions | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @classmethod
    def variant_to_options(cls, variant: str) -> dict[str, Any]:
        """Options selected by the short variant ``variant`` (``compare --methods name:variant``);
        default: ``{variant_option: variant}``. Override for variants that set several options."""
        if cls.variant_option is None:
            raise ConfigError(f"method {cls.name!r} has no variants; write it without ':{variant}'")
        return {cls.variant_option: variant}

    @classmethod
    def variant_label(cls, options: dict[str, Any]) -> str | None:
        """The variant shown in run names for ``options`` (default: the `variant_option` value)."""
        return None if cls.variant_option is None else options.get(cls.variant_option)

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> "Method":
        """Build from a config dict; unknown keys raise `ConfigError` listing the valid ones."""
        options = dict(options or {})
        valid = {f.name for f in dataclasses.fields(cls.Options)}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ConfigError(
                f"unknown option(s) {unknown} for method {cls.name!r}; valid options: {', '.join(sorted(valid)) or '(none)'}"
            )
        built = cls.Options(**options)
        if not isinstance(built.allow_noop, bool):
            raise ConfigError(f"method_options.allow_noop must be true or false; got {built.allow_noop!r}")
        return cls(built)

    def noop_reason(self, epochs: int) -> str | None:
        """Why this method's options make it train exactly like ``joint`` over ``epochs`` epochs,
        naming the option and its value (``None``: they don't; the default).

        Checked once before training by `check_not_noop` (``mmcoop train`` and
        ``compare``); a method whose effect can be switched off by an option or a window
        overrides it.

        Example:
            >>> build_method("sample-level", {"warmup": 5}).noop_reason(5)
            'method_options.warmup=5 >= train.epochs=5: re-sampling starts at (0-based) epoch warmup, so no epoch re-samples'
        """
        return None

    def skips_encoders(self) -> bool:
        """Whether a training step may leave an encoder (or any model parameter) out of the loss,
        e.g. a batch of re-sampled units that all drop one modality. Under DDP this turns on
        PyTorch's unused-parameter detection (a graph search per step) so such a step neither
        stops nor desynchronises the gradient all-reduce; default ``False`` (every parameter
        gets a gradient in every step that DDP reduces; steps inside `MethodContext.no_sync`
        do not count). ``train.find_unused_parameters`` overrides it."""
        return False

    @classmethod
    def preset_options(cls, preset: str) -> dict[str, Any]:
        """The method's published options for preset ``preset`` (a fresh dict; ``{}`` if none).

        Example:
            >>> METHODS.get("ogm-ge").preset_options("cremad")["alpha"]
            0.8
        """
        return copy.deepcopy({**cls.presets.get("*", {}), **cls.presets.get(preset, {})})

    # -- hooks ------------------------------------------------------------------
    def setup(self, ctx: MethodContext) -> None:
        """Called once before training (and again after resume, before load_state_dict).
        Create the method's own modules here (see `modules`)."""

    def modules(self) -> dict[str, nn.Module]:
        """The method's own trainable modules (e.g. extra heads), created in `setup`:
        moved to the device, their parameters added to the optimizer, saved in checkpoints
        and restored exactly on resume. Default: none."""
        return {}

    def on_epoch_start(self, ctx: MethodContext) -> None:
        """Called at the start of every epoch, model in train mode."""

    def train_set(self, ctx: MethodContext) -> MultimodalDataset:
        """The dataset view iterated this epoch (default: the original training split)."""
        return ctx.train_data

    def train_step(self, ctx: MethodContext, batch: Batch) -> tuple[Tensor, Tensor]:
        """One optimisation step on ``batch``; returns ``(loss, fused logits [B, C])`` for the
        epoch statistics (both may be detached). Default: forward, `loss`, backward,
        `after_backward`, step."""
        keep = batch["keep"]
        keep_arg = None if bool(keep.all()) else keep
        ctx.zero_grad()
        feats, logits = ctx.forward(batch["inputs"], keep_arg)
        with ctx.autocast():
            loss = self.loss(ctx, batch, feats, logits)
        ctx.check_loss(loss)
        ctx.backward(loss)
        ctx.unscale_gradients()
        self.after_backward(ctx, batch, feats, logits)
        ctx.step()
        return loss.detach(), logits.detach()

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        """Scalar loss of one batch: ``feats [B, M, D]``, ``logits [B, C]``."""
        return F.cross_entropy(logits.float(), batch["label"])

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        """Called after the backward pass, before the optimizer step (gradient modulation).

        The gradients are final here: averaged over ranks and, under fp16 AMP, already divided
        by the loss scale (`MethodContext.unscale_gradients`), so norms, clipping and noise
        need no AMP special case."""

    def on_epoch_end(self, ctx: MethodContext) -> None:
        """Called after the epoch's last step, before validation (model in train mode)."""

    def predict(self, model: nn.Module, feats: Tensor, batch: Batch) -> Tensor:
        """Logits ``[B, C]`` used at evaluation from features ``[B, M, D]`` (default: ``model.fuse``)."""
        return model.fuse(feats)  # type: ignore[operator]  # nn.Module types attributes as Tensor | Module

    def unimodal_logits(self, model: nn.Module, feats: Tensor) -> Tensor:
        """Each modality alone ``[B, M, C]`` at evaluation (per-modality accuracies); default:
        the model's fusion head with the other modalities removed."""
        return unimodal_logits(model, feats)

    def epoch_log(self, ctx: MethodContext) -> dict[str, Any]:
        """Extra per-epoch fields for ``metrics.jsonl`` (default: ``ctx.log``)."""
        return dict(ctx.log)

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint for exact resume (modules of `modules` are saved by the loop)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`."""


#: Every method, by name. Built-ins register themselves with ``@METHODS.register(name)`` (which
#: also sets the class's `Method.name`) in their module under `mmcoop.methods`, imported
#: on the first read; installed packages add theirs through the ``mmcoop.methods`` entry-point group.
METHODS: Registry[type[Method]] = Registry(
    "method", builtins="mmcoop.methods", group="mmcoop.methods", name_attr="name", expects=Method
)


def variant_options(name: str, variant: str) -> dict[str, Any]:
    """Options selected by ``name:variant`` (the method's `Method.variant_option`)."""
    cls = METHODS.get(name)
    if not variant:
        return {}
    return cls.variant_to_options(variant)


def variant_of(name: str, options: dict[str, Any]) -> str | None:
    """The variant value set in ``options`` for method ``name`` (for run names), if any."""
    return METHODS.get(name).variant_label(options)


def build_method(name: str, options: dict[str, Any] | None = None) -> Method:
    """Instantiate registered method ``name`` with validated ``options``."""
    return METHODS.get(name).from_dict(options)


def window_noop(starts: int, epochs: int, what: str = "the modulation", key: str = "modulation_starts") -> str | None:
    """The `Method.noop_reason` of an epoch window that opens at (0-based) epoch ``starts``."""
    if starts >= epochs:
        return f"method_options.{key}={starts} >= train.epochs={epochs}: {what} never starts"
    return None


NOOP_WAYS_OUT = "Change that option or train.epochs (--epochs), or set method_options.allow_noop=true to run it anyway"


def noop_problem(method: Method, epochs: int) -> str | None:
    """``"method 'x' would train exactly like joint: <reason>"``, or ``None`` (it would not, or
    ``method_options.allow_noop`` is set)."""
    if method.options.allow_noop:
        return None
    reason = method.noop_reason(int(epochs))
    return f"method {method.name!r} would train exactly like joint: {reason}" if reason else None


def check_not_noop(method: Method, epochs: int) -> None:
    """Refuse a run in which ``method`` would train exactly like ``joint`` (a silent no-op).

    Args:
        method: the built method (its options are validated).
        epochs: the run's ``train.epochs``.

    Raises:
        ConfigError: `Method.noop_reason` gave a reason and ``method_options.allow_noop``
            is not set; the message names the option, its value, the epochs and the ways out.
    """
    problem = noop_problem(method, epochs)
    if problem:
        raise ConfigError(f"{problem}. {NOOP_WAYS_OUT}")
