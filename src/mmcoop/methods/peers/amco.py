"""``amco``: adaptive class masking of the dominant modality, an extra ``C -> C`` layer on the fusion.

Paper: Zhou, Liang, Zhao, Zhang, "Adaptive Mask Co-Optimization for Modal Dependence in
Multimodal Learning", ICASSP 2024. Code: GeWu-Lab/BalanceBenchmark at commit 4c1482f
``balancemm/trainer/AMCo_trainer.py`` (``AMCoTrainer.train_loop``, ``training_step``) and
``balancemm/models/avclassify_model.py`` (``BaseClassifierAMCoModel``); the authors' own code was
not available to read here. Arithmetic: `mmcoop.methods.functional.amco_mask_ratio`,
`amco_class_mask`, `amco_softmax_shares`.

Wiring, as BalanceBenchmark: the method owns ``linear_star``, a ``Linear(C, C)`` on the fused
logits (a method module: optimizer, checkpoint, resume). Each modality's logits are its share
of the linear head, ``u_m`` (`modality_logits`: ``W_m h_m +
b / M`` for ``concat``), summing to the fused logits. Per batch inside the window: the class mask
of ratio ``p_t`` (``l_t = batch index * epoch * l_rate``) multiplies the logits of every
modality flagged dominant at the previous batch of the epoch (no flag at an epoch's first
batch); loss ``CE(star(sum_m u_m')) + sum_m CE(u_m')`` over the masked logits ``u'``; then the
flags are set from this batch's masked logits (share ``> sigma``). Outside the window
``CE(star(fused))``. Evaluation predicts ``star(fused)``; each modality's accuracy is that of its
``u_m``, as BalanceBenchmark's ``prediction[modality]``.

Defaults (``configs/trainer_config.yaml``): ``eps = 0.3``, ``sigma = 0.5`` (``null`` here means
``1 / M``: 0.5 for two modalities), ``l_rate = 0.1`` (``l_t += epoch / 10``); window every epoch
(BalanceBenchmark 0..80 of 30 epochs). Its ``alpha`` and ``U`` options are read by nothing. A window
outside the run is not refused as a no-op: the extra layer still trains (the model is not ``joint``'s).

Deliberate differences:

* The mask multiplies every sample's logits: BalanceBenchmark expands it to ``[2, C]`` and
  multiplies ``[B, C]`` logits, which broadcasts only for a batch of two (any other batch stops
  with a shape error once a modality is flagged).
* Mask positions come from a generator seeded by (seed, step) (BalanceBenchmark: NumPy's global
  RNG), so every DDP rank and a resumed run mask the same classes.
* ``M > 2``: native (a flag per modality); the default ``sigma = 1 / M`` flags a modality holding
  more than an equal share (BalanceBenchmark's 0.5 for two; a fixed 0.5 could never flag two).
* Only the built-in linear heads (``concat``, ``sum``): their per-modality logits sum to the fused
  logits, which the masking needs; other heads are refused with a message.
* DDP: the shares are summed over ranks (the whole distributed batch), so all ranks flag the same
  modalities.
"""

from __future__ import annotations

from dataclasses import dataclass


import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.amco import amco_class_mask, amco_mask_ratio, amco_softmax_shares
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    check_number,
    check_window,
    in_window,
    linear_head_slices,
    modality_logits,
    require_modalities,
    step_generator,
    sum_over_ranks,
)

SALT_MASK = 0xA3C  # generator salt of the class mask


@dataclass
class AMCoOptions(MethodOptions):
    """Options of ``amco``.

    Attributes:
        eps: ``l_t`` at which the mask ratio reaches 1 (BalanceBenchmark 0.3), ``> 0``.
        sigma: softmax share above which a modality is dominant; ``null`` = ``1 / M``
            (BalanceBenchmark 0.5 for two modalities).
        l_rate: growth of ``l_t`` per batch and epoch, ``l_t = batch * epoch * l_rate``
            (BalanceBenchmark ``epoch / 10``: 0.1), ``>= 0``.
        modulation_starts: first epoch with masking and unimodal losses (0-based; BalanceBenchmark 0).
        modulation_ends: last such epoch (inclusive); ``null`` = no end.
    """

    eps: float = 0.3
    sigma: float | None = None
    l_rate: float = 0.1
    modulation_starts: int = 0
    modulation_ends: int | None = None

    def __post_init__(self) -> None:
        self.eps = check_number("eps", self.eps, low=0.0, low_open=True)
        if self.sigma is not None:
            self.sigma = check_number("sigma", self.sigma, low=0.0, high=1.0)
        self.l_rate = check_number("l_rate", self.l_rate, low=0.0)
        check_window(self.modulation_starts, self.modulation_ends)


@METHODS.register("amco")
class AMCo(Method):
    """AMCo (Zhou et al., ICASSP 2024): mask a growing share of the dominant modality's class logits.

    Code: GeWu-Lab/BalanceBenchmark ``balancemm/trainer/AMCo_trainer.py``. Defaults, deliberate
    differences and ``M > 2`` (one flag per modality, ``sigma = 1 / M``): see the module docstring.
    Logs per epoch ``mask_ratio`` (mean ``p_t``), ``dominant_<modality>`` (share of batches it was
    masked) and ``share_<modality>`` (mean softmax share)."""

    Options = AMCoOptions
    options: AMCoOptions

    def setup(self, ctx: MethodContext) -> None:
        self.m = require_modalities(ctx.model, self.name)
        if linear_head_slices(ctx.model) is None:
            raise ConfigError(
                "method 'amco' masks each modality's share of a linear fusion head: set model.fusion to concat or sum"
            )
        self.modalities = list(ctx.model.modalities)
        c = int(ctx.train_data.num_classes)
        self.star = nn.Linear(c, c).to(ctx.device)
        self.sigma = self.options.sigma if self.options.sigma is not None else 1.0 / self.m
        self.stats = EpochMeans()
        self.dominant = torch.zeros(self.m, dtype=torch.bool)
        self.batch_index = 0
        self._fused: Tensor | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"linear_star": self.star}

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()
        self.dominant = torch.zeros(self.m, dtype=torch.bool)
        self.batch_index = 0

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        o = self.options
        labels = batch["label"]
        if not in_window(ctx.epoch, o.modulation_starts, o.modulation_ends):
            self._fused = self.star(logits)
            return F.cross_entropy(self._fused.float(), labels)
        ratio = amco_mask_ratio(self.batch_index * ctx.epoch * o.l_rate, o.eps)
        self.batch_index += 1
        uni = modality_logits(ctx.model, feats)  # [M, B, C]
        c = uni.shape[-1]
        mask = amco_class_mask(c, ratio, step_generator(ctx, SALT_MASK), uni.device).to(uni.dtype)
        flags = self.dominant.to(uni.device).view(-1, 1, 1)
        masked = torch.where(flags, uni * mask, uni)
        self._fused = self.star(masked.sum(0))
        m, b = masked.shape[:2]
        loss = F.cross_entropy(self._fused.float(), labels) + m * F.cross_entropy(
            masked.float().reshape(m * b, c), labels.repeat(m)
        )
        with torch.no_grad():
            counts = sum_over_ranks(torch.cat([amco_softmax_shares(masked.float()), masked.new_tensor([b]).float()]))
            shares = counts[:m] / counts[m]
        self.stats.add("mask_ratio", ratio)
        self.stats.add_per_modality("dominant", self.modalities, self.dominant.float())
        self.stats.add_per_modality("share", self.modalities, shares)
        self.dominant = (shares > self.sigma).cpu()
        return loss

    def train_step(self, ctx: MethodContext, batch: Batch) -> tuple[Tensor, Tensor]:
        loss, _ = super().train_step(ctx, batch)
        assert self._fused is not None
        return loss, self._fused.detach()  # the training accuracy of what AMCo predicts

    def predict(self, model: nn.Module, feats: Tensor, batch: Batch) -> Tensor:
        return self.star(model.fuse(feats).to(self.star.weight.dtype))  # type: ignore[operator]

    def unimodal_logits(self, model: nn.Module, feats: Tensor) -> Tensor:
        return modality_logits(model, feats).transpose(0, 1)

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)
