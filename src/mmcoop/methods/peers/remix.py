"""``remix``: Data Remixing (ICML 2025).

Paper: Ma, Chen, Deng, "Improving Multimodal Learning Balance and Sufficiency through Data
Remixing", ICML 2025. Code read: MatthewMaxy/Remix_ICML2025 at 80898aa (``train.py``,
``models/models.py``, ``scripts/run_train.sh``). Arithmetic:
`mmcoop.methods.functional.remix`. Chosen from the 2025 wave (DynCIM, AUG, Data
Remixing) because its code is public and complete (the DynCIM and AUG repositories could not
be found), and because it is a data-side method, beside the many gradient-side ones here.

Warm-up epochs (``epoch < warmup``): ``CE(fused) + sum_m w_m CE(head_m(z_m))`` with each
modality's own classifier (a method module; official ``head_audio`` / ``head_video``,
``alpha = beta = 0.5``). Afterwards, at the start of every epoch, a pass over the training
split (eval mode) assigns each sample to the modality whose own prediction is closest to
uniform (`remix_assign`); each training batch is then
reassembled into one optimizer step per modality, on that modality's samples only with the
other modalities removed (the model's keep-mask; official: the other features zeroed), with
``CE(fused) + gamma * CE(head_m(z_m))``. Every sample is seen once per epoch, by one modality.

Defaults (parser, ``run_train.sh``): ``warmup = 10``, ``warmup_weight = 0.5``, ``gamma = 1``.

Deliberate differences:

* Reassembling: the official epoch runs the whole video subset, then the whole audio subset,
  in full batches. Here each loaded batch is split by assignment into (up to) ``M``
  single-modality steps, in modality order: every step is still unimodal (the paper's point:
  no cross-modal gradient interference within a step), the steps are smaller and interleaved.
  ``epoch_steps`` counts them.
* Each modality's step forwards the whole batch with only that modality kept and weights the
  loss by membership (samples of other modalities weigh 0; the mean is over the modality's
  samples in the whole distributed batch): every rank takes the same steps (DDP-safe), and a
  one-sample group is no problem for BatchNorm; the encoder's batch statistics then include
  the batch's other samples.
* The assignment is recomputed from the model at each epoch start, so a resumed run
  recomputes the same one (exact resume with no extra state).
* ``M > 2``: the same rule over all modalities (smallest divergence, ties to the later one).
* A warm-up as long as the run is not refused as a no-op: the warm-up trains the multi-loss
  baseline (``CE(fused)`` plus the own-head losses), not ``joint``.
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
from mmcoop.methods.functional.remix import remix_assign, remix_divergence
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
from mmcoop.utils.dist import all_gather_rows, world_size


@dataclass
class RemixOptions(MethodOptions):
    """Options of ``remix``.

    Attributes:
        warmup: joint multi-loss epochs before remixing (official 10).
        warmup_weight: weight of each own-head loss in the warm-up (official 0.5), ``>= 0``.
        gamma: weight of the own-head loss in a remixed step (official 1), ``>= 0``.
    """

    warmup: int = 10
    warmup_weight: float = 0.5
    gamma: float = 1.0

    def __post_init__(self) -> None:
        self.warmup = check_int("warmup", self.warmup, 0)
        self.warmup_weight = check_number("warmup_weight", self.warmup_weight, low=0.0)
        self.gamma = check_number("gamma", self.gamma, low=0.0)


@METHODS.register("remix")
class Remix(OwnHeadsEvaluation, Method):
    """Data Remixing (ICML 2025): each sample trains only the modality that finds it hardest, in unimodal steps.

    Official code: MatthewMaxy/Remix_ICML2025 at 80898aa. Defaults, deliberate differences and
    ``M > 2``: see the module docstring. Logs per epoch ``assigned_<modality>`` (fraction of the
    training samples assigned to it; remixed epochs)."""

    Options = RemixOptions
    options: RemixOptions
    presets: ClassVar[dict[str, dict[str, Any]]] = {"cremad": {"warmup": 10}}

    def skips_encoders(self) -> bool:
        """A remixed step runs one encoder only (the others are removed by the keep-mask)."""
        return True

    def setup(self, ctx: MethodContext) -> None:
        require_modalities(ctx.model, self.name)
        self.modalities = list(ctx.model.modalities)
        self.heads, self.widths = unimodal_heads(ctx)
        #: modality of every source row of the training split (``None`` in the warm-up)
        self.assignment: Tensor | None = None
        self.stats = EpochMeans()

    def modules(self) -> dict[str, nn.Module]:
        return {"unimodal_heads": self.heads}

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()
        self.assignment = self.assign(ctx) if ctx.epoch >= self.options.warmup else None

    def assign(self, ctx: MethodContext) -> Tensor:
        """The modality of every training row ``[N_source]`` (int64, CPU), from an eval pass."""
        rows, divs = [], []
        for batch, feats in ctx.inference(ctx.train_data):
            probs = (
                heads_logits(self.heads, feats.to(next(self.heads.parameters()).dtype), self.widths).float().softmax(-1)
            )
            divs.append(remix_divergence(probs).T)  # [B, M]
            rows.append(batch["index"].to(ctx.device))
        div = torch.cat(divs) if divs else torch.zeros(0, len(self.modalities), dtype=torch.float64, device=ctx.device)
        row = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long, device=ctx.device)
        div, row = all_gather_rows(div), all_gather_rows(row)
        table = torch.full((ctx.train_data.num_samples,), -1, dtype=torch.long)
        chosen = remix_assign(div.T).cpu()
        table[row.cpu()] = chosen
        for k, name in enumerate(self.modalities):
            ctx.log[f"assigned_{name}"] = float((chosen == k).double().mean()) if len(chosen) else 0.0
        return table

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        """The warm-up loss ``CE(fused) + w sum_m CE(head_m(z_m))``."""
        labels = batch["label"]
        uni = heads_logits(self.heads, feats, self.widths).float()
        ce = stacked_cross_entropy(uni, labels)
        return F.cross_entropy(logits.float(), labels) + self.options.warmup_weight * ce.sum()

    def train_step(self, ctx: MethodContext, batch: Batch) -> tuple[Tensor, Tensor]:
        if self.assignment is None:
            return super().train_step(ctx, batch)
        labels = batch["label"]
        owner = self.assignment.to(labels.device)[batch["index"]]  # [B]
        owner = torch.where(batch["keep"][torch.arange(len(owner), device=owner.device), owner.clamp(min=0)], owner, -1)
        groups = sum_over_ranks(torch.stack([(owner == k).sum() for k in range(len(self.modalities))]).double())
        losses, fused = [], torch.zeros(labels.shape[0], int(ctx.train_data.num_classes), device=labels.device)
        for k in range(len(self.modalities)):
            if float(groups[k]) == 0:
                continue
            member = (owner == k).float()
            only = torch.zeros_like(batch["keep"])
            only[:, k] = True
            ctx.zero_grad()
            feats, logits = ctx.forward(batch["inputs"], only)
            with ctx.autocast():
                own = self.heads[k](feats[:, k, : self.widths[k]])
            per = F.cross_entropy(logits.float(), labels, reduction="none") + self.options.gamma * F.cross_entropy(
                own.float(), labels, reduction="none"
            )
            loss = (per * member).sum() * world_size() / groups[k].to(per.dtype)
            ctx.check_loss(loss)
            ctx.backward(loss)
            ctx.step()
            losses.append(loss.detach())
            fused = torch.where(member.bool().unsqueeze(1), logits.detach().float(), fused)
        return torch.stack(losses).mean(), fused

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)
