"""``di-mml``: detached and interactive multimodal learning (ACM MM 2024).

Paper: Fan, Xu, Wu, Zhang, Hu, "Detached and Interactive Multimodal Learning", ACM MM 2024.
Code read: fanyunfeng-bit/DI-MML at 83b9b7a (``main_CFT.py`` ``train_epoch`` / ``get_indices``
/ ``main``, ``loss/contrast_loss.py``, ``main_CFT_stage2.py``, README). BalanceBenchmark
(4c1482f) has no DI-MML trainer. Arithmetic: `mmcoop.methods.functional.dimml`.

Training, as the official stage 1: the encoders never see the fused loss. Per batch: each
modality's own classifier (a method module, official ``model1.classifier``) with
``CE(head_m(z_m))``, ONE classifier shared by all modalities with ``weight * CE(shared(z_m))``
(official ``classifier``, the "align" losses), and from epoch ``duc_starts`` on the
dimension-decoupled unidirectional contrastive loss on each modality's specific dimensions,
chosen once at the start of that epoch by a pass over the training data. The model's fusion
head is trained on *detached* features with ``CE(fuse(z.detach()))``: the official stage 2
(a fusion classifier on the frozen encoders), run alongside stage 1 here. Evaluation uses the
fusion head (``val_acc``) and each modality's own classifier (``val_acc_<modality>``).

Defaults (README, CREMA-D): ``temperature = 50``, ``weight = 1``, ``duc_starts = 20``.

Deliberate differences:

* One run instead of two scripts: the fusion head learns on detached features during
  training instead of in a second run on the final frozen encoders (the encoders' training
  is unchanged by it; the head sees moving features). The official stage-2 head is the
  ``concat``-style classifier; here it is the model's own fusion head.
* Specific dimensions from a pass in eval mode over the training split in batches (the
  official pass uses batch size 1 in eval mode: the same features).
* The contrastive loss uses ``cross_entropy`` over the batch (the official per-sample loop of
  ``-log(exp(s_ii) / sum_j exp(s_ij))``: the same value, stable for large ``<a, v>``).
* Features of different widths: the dimensions compared are the first ``min_m d_m``.
* ``M > 2``: see `mmcoop.methods.functional.dimml`.
* DDP: the centroids and hit counts are summed over ranks, so every rank chooses the same
  dimensions; all losses' backward passes run inside ``no_sync`` and the step averages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.methods.functional._common import stacked_cross_entropy
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.dimml import dimml_dimension_hits, dimml_duc_loss, dimml_specific_dims
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    OwnHeadsEvaluation,
    check_int,
    check_number,
    heads_logits,
    require_modalities,
    sum_over_ranks,
    unimodal_heads,
)


@dataclass
class DIMMLOptions(MethodOptions):
    """Options of ``di-mml``.

    Attributes:
        temperature: ``T`` of the contrastive loss (README: 50 on CREMA-D, 10 on AVE), ``> 0``.
        weight: weight of the shared-classifier losses (official 1), ``>= 0``.
        duc_starts: epoch (0-based) whose start chooses the specific dimensions and from which the
            contrastive loss runs (official 20).
    """

    temperature: float = 50.0
    weight: float = 1.0
    duc_starts: int = 20

    def __post_init__(self) -> None:
        self.temperature = check_number("temperature", self.temperature, low=0.0, low_open=True)
        self.weight = check_number("weight", self.weight, low=0.0)
        self.duc_starts = check_int("duc_starts", self.duc_starts, 0)


@METHODS.register("di-mml")
class DIMML(OwnHeadsEvaluation, Method):
    """DI-MML (ACM MM 2024): encoders trained apart by unimodal losses, interacting by a one-way contrastive loss.

    Official code: fanyunfeng-bit/DI-MML at 83b9b7a. Defaults, deliberate differences and
    ``M > 2``: see the module docstring. Logs per epoch ``loss_<modality>`` (own-head loss),
    ``duc_loss`` and ``specific_dims_<modality>`` (once chosen)."""

    Options = DIMMLOptions
    options: DIMMLOptions
    presets: ClassVar[dict[str, dict[str, Any]]] = {"cremad": {"temperature": 50.0}, "ave": {"temperature": 10.0}}

    def setup(self, ctx: MethodContext) -> None:
        require_modalities(ctx.model, self.name)
        self.modalities = list(ctx.model.modalities)
        self.heads, self.widths = unimodal_heads(ctx)
        self.width = min(self.widths)
        self.shared = nn.Linear(self.width, int(ctx.train_data.num_classes)).to(ctx.device)
        #: bool ``[M, d]`` specific dimensions (``None`` until ``duc_starts``)
        self.specific: Tensor | None = None
        self.stats = EpochMeans()

    def modules(self) -> dict[str, nn.Module]:
        return {"unimodal_heads": self.heads, "shared_head": self.shared}

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()
        if ctx.epoch >= self.options.duc_starts and self.specific is None:
            self.specific = self.choose_dimensions(ctx)

    def choose_dimensions(self, ctx: MethodContext) -> Tensor:
        """Specific dimensions ``[M, d]`` from two eval passes over the training split (centroids, then hits)."""
        c, m, d = int(ctx.train_data.num_classes), len(self.modalities), self.width
        sums = torch.zeros(c, m * d + 1, dtype=torch.float64, device=ctx.device)
        for batch, feats in ctx.inference(ctx.train_data):
            z = feats[:, :, :d].double().reshape(feats.shape[0], -1)
            sums.index_add_(0, batch["label"], torch.cat([z, z.new_ones(z.shape[0], 1)], 1))
        sums = sum_over_ranks(sums)
        centroids = (sums[:, :-1] / sums[:, -1:].clamp(min=1)).view(c, m, d)
        hits = torch.zeros(m, d, dtype=torch.float64, device=ctx.device)
        for batch, feats in ctx.inference(ctx.train_data):
            hits += dimml_dimension_hits(feats[:, :, :d].double(), batch["label"], centroids)
        specific = dimml_specific_dims(sum_over_ranks(hits)).cpu()
        for name, row in zip(self.modalities, specific):
            ctx.log[f"specific_dims_{name}"] = int(row.sum())
        return specific

    def train_step(self, ctx: MethodContext, batch: Batch) -> tuple[Tensor, Tensor]:
        labels = batch["label"]
        keep = batch["keep"]
        ctx.zero_grad()
        with ctx.no_sync():
            feats, _ = ctx.forward(batch["inputs"], None if bool(keep.all()) else keep)
            with ctx.autocast():
                own = heads_logits(self.heads, feats, self.widths).float()  # [M, B, C]
                shared = self.shared(feats[:, :, : self.width]).transpose(0, 1).float()  # [M, B, C]
                fused = ctx.model.fuse(feats.detach()).float()
            m = own.shape[0]
            ce_own = stacked_cross_entropy(own, labels)
            ce_shared = F.cross_entropy(shared.flatten(0, 1), labels.repeat(m)) * m
            loss = ce_own.sum() + self.options.weight * ce_shared + F.cross_entropy(fused, labels)
            if self.specific is not None and ctx.epoch >= self.options.duc_starts:
                duc = dimml_duc_loss(
                    feats[:, :, : self.width].float(), self.specific.to(feats.device), self.options.temperature
                )
                loss = loss + duc
                self.stats.add("duc_loss", duc.detach())
            ctx.check_loss(loss)
            ctx.backward(loss)
        ctx.step()
        self.stats.add_per_modality("loss", self.modalities, ce_own.detach())
        return loss.detach(), fused.detach()

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)

    def state_dict(self) -> dict[str, Any]:
        return {"specific": None if self.specific is None else self.specific.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        s = state.get("specific")
        self.specific = None if s is None else s.bool().cpu()
