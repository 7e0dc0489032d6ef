"""``gblending``: Gradient-Blending, one loss per head weighted by its overfitting-to-generalisation ratio.

Paper: Wang, Tran, Feiszli, "What Makes Training Multi-modal Classification Networks Hard?",
CVPR 2020 (Sec. 4, Eq. 8, Alg. 1 "offline" and Alg. 2 "online" G-Blend). The official
release (facebookresearch/VMZ, ``c2/tutorials/gradient_blending.md``) only *consumes* fixed
``audio_weight / visual_weight / av_weight`` estimated offline and ships no estimator; the
online estimator read for the arithmetic is GeWu-Lab/BalanceBenchmark
``balancemm/trainer/GBlending_trainer.py`` (``GBlendingTrainer.super_epoch_origin``,
``training_step``; ``configs/trainer_config.yaml``: ``super_epoch: 10``). The weight formula
is `mmcoop.methods.functional.gblend_weights` (its docstring lists how it differs
from BalanceBenchmark's ``abs``); the loss is `gblend_loss`.

Wiring. The method owns one side classifier per modality (``nn.Linear(D, C)`` on that
modality's feature ``feats[:, m]``, `GBlending.modules`: in the optimizer, the
checkpoint and exact resume); the model's fusion head is the fused head. Heads are
ordered ``[modality_0, ..., modality_{M-1}, fused]`` (``K = M + 1``). Every batch the loss is
``sum_k w_k CE(head_k)``; evaluation predicts with the fused head (the paper's).
Every ``window`` epochs the weights are re-estimated from per-sample mean cross-entropies
of every head on the training split and on ``ctx.val_data`` (one inference pass each, eval
mode, via ``ctx.inference``), measured at the window's start and end.

Deliberate differences, and why:

* The weights come from the main model's own trajectory over the last window, not from
  ``K`` copies trained from the checkpoint, one per head, for ``window`` epochs each
  (BalanceBenchmark's online G-Blend, Alg. 2 of the paper): that would cost ``K x window``
  extra epochs per window. Consequence: a head's generalisation/overfitting is measured
  while the encoders are trained by the blend of the previous window, not by that head alone.
* Before the first window ends there is no estimate: the weights are uniform (``1/K``);
  BalanceBenchmark estimates at epoch 0 by training the copies.
* Losses are per-sample means over whole splits in eval mode (BalanceBenchmark subtracts
  epoch *sums* over different numbers of train and validation batches, and its training
  loss is the running loss in train mode while weights move).

``M >= 2``: native (one side head per modality, ``K = M + 1`` weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch, MultimodalDataset
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.gblending import gblend_loss, gblend_weights
from mmcoop.methods.peers._wiring import check_int, check_number, require_modalities, stacked_width, sum_over_ranks

FUSED = "fused"  # name of the fused head in logs


@dataclass
class GBlendingOptions(MethodOptions):
    """Options of ``gblending``.

    Attributes:
        window: epochs between weight estimates (BalanceBenchmark ``super_epoch``: 10).
        eps: floor of the squared overfitting change ``dO^2`` in the weight formula.
    """

    window: int = 10
    eps: float = 1e-8

    def __post_init__(self) -> None:
        self.window = check_int("window", self.window, 1)
        self.eps = check_number("eps", self.eps, 0.0, low_open=True)


@METHODS.register("gblending")
class GBlending(Method):
    """Gradient-Blending (CVPR 2020): side unimodal heads, losses blended by estimated weights."""

    Options = GBlendingOptions
    options: GBlendingOptions

    def __init__(self, options: GBlendingOptions | None = None) -> None:
        super().__init__(options)
        self.heads: nn.ModuleList | None = None
        self.head_names: list[str] = []
        self.weights: Tensor | None = None  # float64 [K]
        self.start: Tensor | None = None  # float64 [2, K]: (train, val) losses at the window's start

    def setup(self, ctx: MethodContext) -> None:
        m = require_modalities(ctx.model, self.name)
        if ctx.val_data is None:
            raise ConfigError("method 'gblending' estimates its weights on a validation split; the run has none")
        d, c = stacked_width(ctx), ctx.train_data.num_classes
        self.heads = nn.ModuleList([nn.Linear(d, c) for _ in range(m)])
        self.head_names = list(ctx.model.modalities) + [FUSED]
        if FUSED in ctx.model.modalities:
            raise ConfigError(f"method 'gblending' names its fused head {FUSED!r}; rename that modality")
        self.weights = torch.full((m + 1,), 1.0 / (m + 1), dtype=torch.float64)
        self.start = None

    def modules(self) -> dict[str, nn.Module]:
        return {"side_heads": self.heads} if self.heads is not None else {}

    def head_logits(self, feats: Tensor, fused: Tensor) -> Tensor:
        """Logits of every head ``[K, B, C]`` from features ``[B, M, D]`` and fused logits ``[B, C]``."""
        assert self.heads is not None
        side = [head(feats[:, k]) for k, head in enumerate(self.heads)]
        return torch.stack(side + [fused])

    def head_losses(self, logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        """Cross-entropy of every head: ``[K]`` (``mean``) or ``[K]`` sums (``sum``) from ``[K, B, C]``."""
        k, b, _ = logits.shape
        ce = F.cross_entropy(logits.float().flatten(0, 1), labels.repeat(k), reduction="none").view(k, b)
        return ce.mean(dim=1) if reduction == "mean" else ce.sum(dim=1)

    # -- training ------------------------------------------------------------------
    def on_epoch_start(self, ctx: MethodContext) -> None:
        if self.start is None:  # the first window starts before any training
            self.start = self.measure(ctx)
            self._log_losses(ctx, self.start, "gblend_start_")
        assert self.weights is not None
        for name, w in zip(self.head_names, self.weights.tolist()):
            ctx.log[f"weight_{name}"] = w

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        assert self.weights is not None
        losses = self.head_losses(self.head_logits(feats, logits), batch["label"])
        return gblend_loss(losses, self.weights.to(losses.device))

    def on_epoch_end(self, ctx: MethodContext) -> None:
        if (ctx.epoch + 1) % self.options.window != 0:
            return
        assert self.start is not None
        end = self.measure(ctx)
        self.weights = gblend_weights(self.start[0], self.start[1], end[0], end[1], self.options.eps).cpu()
        self._log_losses(ctx, end, "gblend_")
        for name, w in zip(self.head_names, self.weights.tolist()):
            ctx.log[f"next_weight_{name}"] = w
        self.start = end

    @torch.no_grad()
    def measure(self, ctx: MethodContext) -> Tensor:
        """Mean cross-entropy of every head on the training and validation splits: float64 ``[2, K]``."""
        out = []
        for data in (ctx.train_data, ctx.val_data):
            out.append(self._mean_losses(ctx, data))
        return torch.stack(out).cpu()

    def _mean_losses(self, ctx: MethodContext, data: MultimodalDataset) -> Tensor:
        k = len(self.head_names)
        sums = torch.zeros(k + 1, dtype=torch.float64, device=ctx.device)  # K loss sums, then the count
        for batch, feats in ctx.inference(data):
            with ctx.autocast():
                logits = self.head_logits(feats, ctx.inference_model.fuse(feats))
            sums[:k] += self.head_losses(logits, batch["label"], "sum").double()
            sums[k] += batch["label"].shape[0]
        sums = sum_over_ranks(sums)
        return sums[:k] / sums[k].clamp(min=1)

    def _log_losses(self, ctx: MethodContext, losses: Tensor, prefix: str) -> None:
        for split, row in zip(("train", "val"), losses.tolist()):
            for name, v in zip(self.head_names, row):
                ctx.log[f"{prefix}{split}_loss_{name}"] = v

    # -- checkpoint --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "weights": None if self.weights is None else self.weights.clone(),
            "start": None if self.start is None else self.start.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("weights") is not None:
            self.weights = state["weights"].detach().cpu().double()
        self.start = None if state.get("start") is None else state["start"].detach().cpu().double()
