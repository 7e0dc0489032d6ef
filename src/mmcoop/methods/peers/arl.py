"""``arl``: asymmetric representation learning (ICCV 2025).

Paper: Wei et al., "Improving Multimodal Learning via Imbalanced Learning", ICCV 2025.
Code read: shicaiwei123/ICCV2025-ARL at 358af4f (``main_arl_variance.py`` ``train_epoch``,
``models/backbone.py`` ``GradScale`` and ``ResNet.forward``, ``models/fusion_modules.py``
``ConcatFusion_AUXI``, ``cramed_arl.sh``). BalanceBenchmark (4c1482f) has no ARL trainer.
Arithmetic: `mmcoop.methods.functional.arl_statistics` and
`arl_weights`.

Per batch: one forward; each modality's logits are the model's fusion head with the other
modalities removed (official ``ConcatFusion_AUXI``: the shared layer on zero-filled partners,
full bias); the loss is ``CE(fused) + gamma * sum_m CE(o_m)`` (unimodal regularisation
through the shared head; ``gamma = 1`` until epoch ``start``); after the backward, from
epoch ``start + 1`` on (official ``epoch > args.start``), encoder ``m``'s gradients are
multiplied by ``1 + w_m`` -- exactly what ``GradScale`` (``g + g * w``) does at the encoder's
output, since an encoder's parameters reach the loss only through that output.

Defaults (``cramed_arl.sh`` and the parser): ``gamma = 4``, ``temperature = 8``,
``start = 5``, ``weights: paper``.

Deliberate differences:

* ``weights: paper`` (default) applies the weights ``w`` computed from the batch. The
  official script computes them (``weight = F.softmax(...)``) but never writes them back to
  ``model.module.args.audio_weight`` / ``visual_weight``, which keep the value 0.5 set in the
  warm-up epochs: at 358af4f every encoder's gradient is multiplied by 1.5 and nothing is
  asymmetric. ``weights: official`` reproduces that (``w_m = 0.5`` for every modality).
* The weights of the current batch scale its own gradients; written back as the script
  intends, they would reach ``GradScale`` only at the next batch's forward (a one-step lag).
* Not included: the script's ``clip_grad_norm_(max_norm=40)`` (the run's own optimizer
  settings apply) and its ``(acc_a + acc_v) != 0`` test on the previous validation.
* ``M > 2``: see `mmcoop.methods.functional.arl` (exactly the official weights for ``M = 2``).
* DDP: the batch statistics are averaged over ranks (means of equal-sized rank batches) and
  the gradients are already averaged, so every rank applies the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.errors import ConfigError
from mmcoop.methods.functional._common import stacked_cross_entropy
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.arl import arl_statistics, arl_weights
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    check_int,
    check_number,
    encoder_groups,
    mean_over_ranks,
    require_modalities,
)
from mmcoop.models.protocol import unimodal_logits

WEIGHTS = ("paper", "official")
OFFICIAL_WEIGHT = 0.5  # what model.module.args.audio_weight / visual_weight keep at 358af4f


@dataclass
class ARLOptions(MethodOptions):
    """Options of ``arl``.

    Attributes:
        gamma: weight of the unimodal losses after ``start`` (official script 4), ``>= 0``.
        temperature: ``T`` of the weights' softmax (official 8), ``> 0``.
        start: the asymmetric step runs in epochs ``> start`` (0-based, official 5).
        weights: ``paper`` (the computed weights) or ``official`` (0.5 for every modality, what
            the script at 358af4f applies).
    """

    gamma: float = 4.0
    temperature: float = 8.0
    start: int = 5
    weights: str = "paper"

    def __post_init__(self) -> None:
        self.gamma = check_number("gamma", self.gamma, low=0.0)
        self.temperature = check_number("temperature", self.temperature, low=0.0, low_open=True)
        self.start = check_int("start", self.start, 0)
        if self.weights not in WEIGHTS:
            raise ConfigError(
                f"method_options.weights={self.weights!r} is not valid; valid values: {', '.join(WEIGHTS)}"
            )


@METHODS.register("arl")
class ARL(Method):
    """ARL (ICCV 2025): unimodal losses through the shared head and encoder gradients times ``1 + w_m``.

    Official code: shicaiwei123/ICCV2025-ARL at 358af4f. Defaults, deliberate differences (the
    weights applied, ``weights: official`` for the script's behaviour) and ``M > 2``: see the
    module docstring. Logs per epoch ``weight_<modality>`` (mean ``w_m`` in the asymmetric epochs)."""

    Options = ARLOptions
    options: ARLOptions
    variant_option: ClassVar[str | None] = "weights"

    def setup(self, ctx: MethodContext) -> None:
        require_modalities(ctx.model, self.name)
        self.modalities = list(ctx.model.modalities)
        self.groups = encoder_groups(ctx.model, self.name)
        self.stats = EpochMeans()
        self._uni: Tensor | None = None
        #: weights ``[M]`` applied at the last step (tests and diagnostics)
        self.last_weights: Tensor | None = None

    def active(self, epoch: int) -> bool:
        """Whether the asymmetric step (and ``gamma``) applies in ``epoch`` (official ``epoch > start``)."""
        return epoch > self.options.start

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        labels = batch["label"]
        uni = unimodal_logits(ctx.model, feats).transpose(0, 1).float()  # [M, B, C]: f({m})
        self._uni = uni.detach()
        ce = stacked_cross_entropy(uni, labels)
        gamma = self.options.gamma if self.active(ctx.epoch) else 1.0
        return F.cross_entropy(logits.float(), labels) + gamma * ce.sum()

    def weights(self, uni: Tensor) -> Tensor:
        """``w [M]`` of this batch (``official``: 0.5 each), the statistics averaged over ranks."""
        if self.options.weights == "official":
            return torch.full((uni.shape[0],), OFFICIAL_WEIGHT, dtype=torch.float64)
        stats = mean_over_ranks(arl_statistics(uni))
        return arl_weights(stats[0], stats[1], self.options.temperature)

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        if self._uni is None or not self.active(ctx.epoch):
            return
        w = self.weights(self._uni)
        for params, k in zip(self.groups, (1.0 + w).tolist()):
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(k)
        self.last_weights = w
        self.stats.add_per_modality("weight", self.modalities, w)

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)
