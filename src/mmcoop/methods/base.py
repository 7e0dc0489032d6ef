"""Training strategies as small classes with hooks, registered by name.

The training loop (``mmcoop.train``) calls, per epoch::

    method.on_epoch_start(ctx)                 # e.g. valuate and build a re-sampling plan
    data = method.train_set(ctx)               # the epoch's training set (a dataset view)
    for batch in loader(data):
        feats = model.encode(batch["inputs"], batch["keep"])    # [B, M, d]
        logits = model.fuse(feats, batch["keep"])               # [B, C]
        loss = method.loss(ctx, batch, feats, logits)           # scalar
        loss.backward(); method.after_backward(ctx, batch, feats, logits); optimizer.step()
    log = method.epoch_log(ctx)                # extra fields for metrics.jsonl

A method never imports the training loop: everything it may touch is in
:class:`MethodContext`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch, MultimodalDataset
from mmcoop.errors import ConfigError
from mmcoop.utils.registry import Registry


@dataclass
class MethodContext:
    """What a method may read during training.

    Attributes:
        model: the :class:`~mmcoop.models.MultimodalClassifier` being trained.
        train_data: the original training split (storage of all training samples).
        device: where the model lives.
        epoch: current epoch (0-based).
        seed: run seed; derive every random draw from it (and ``epoch``) so all DDP ranks agree.
        batch_size: training batch size.
        eval_batch_size: inference batch size (evaluation; valuation by default).
        fold_batchnorm: run inference passes (valuation) on a BatchNorm-folded copy.
        amp_dtype: autocast dtype or ``None``.
        log: scratch dict a method may fill during the epoch; merged into metrics.jsonl.
    """

    model: nn.Module
    train_data: MultimodalDataset
    device: torch.device
    epoch: int = 0
    seed: int = 0
    batch_size: int = 64
    eval_batch_size: int = 128
    fold_batchnorm: bool = True
    amp_dtype: torch.dtype | None = None
    optimizer: Any = None
    log: dict[str, Any] = field(default_factory=dict)

    def generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator seeded by (seed, epoch, salt): identical on every rank and on resume."""
        g = torch.Generator()
        g.manual_seed((self.seed * 1_000_003 + self.epoch * 1009 + salt) % (2**63))
        return g


@dataclass
class MethodOptions:
    """Options of a method; subclasses add fields. Unknown keys are config errors."""


class Method:
    """Base training strategy: plain cross-entropy on the fused logits (``joint``)."""

    name: ClassVar[str] = "base"
    Options: ClassVar[type[MethodOptions]] = MethodOptions

    def __init__(self, options: MethodOptions | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> "Method":
        """Build from a config dict; unknown keys raise :class:`ConfigError` listing the valid ones."""
        options = dict(options or {})
        valid = {f.name for f in dataclasses.fields(cls.Options)}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ConfigError(
                f"unknown option(s) {unknown} for method {cls.name!r}; valid options: {', '.join(sorted(valid)) or '(none)'}"
            )
        return cls(cls.Options(**options))

    # -- hooks ------------------------------------------------------------------
    def setup(self, ctx: MethodContext) -> None:
        """Called once before training (and again after resume, before load_state_dict)."""

    def on_epoch_start(self, ctx: MethodContext) -> None:
        """Called at the start of every epoch, model in train mode."""

    def train_set(self, ctx: MethodContext) -> MultimodalDataset:
        """The dataset view iterated this epoch (default: the original training split)."""
        return ctx.train_data

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        """Scalar loss of one batch: ``feats [B, M, d]``, ``logits [B, C]``."""
        return F.cross_entropy(logits.float(), batch["label"])

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        """Called after ``loss.backward()``, before the optimizer step (gradient modulation)."""

    def epoch_log(self, ctx: MethodContext) -> dict[str, Any]:
        """Extra per-epoch fields for ``metrics.jsonl`` (default: ``ctx.log``)."""
        return dict(ctx.log)

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint for exact resume."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


METHODS: Registry[type[Method]] = Registry("method")


def build_method(name: str, options: dict[str, Any] | None = None) -> Method:
    """Instantiate registered method ``name`` with validated ``options``."""
    return METHODS.get(name).from_dict(options)
