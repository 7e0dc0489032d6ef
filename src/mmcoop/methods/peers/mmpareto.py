"""``mmpareto``: conflict-aware combination of multimodal and unimodal gradients.

Paper: Wei, Hu, "MMPareto: Boosting Multimodal Learning with Innocent Unimodal Assistance",
ICML 2024. Code: GeWu-Lab/MMPareto_ICML2024 ``code/MMPareto.py`` ``train_epoch``,
``code/models/models.py`` ``AVClassifier`` (unimodal heads ``head_audio`` / ``head_video``) and
``code/min_norm_solvers.py``. Arithmetic: `mmcoop.methods.functional.mmpareto_weights` and
`mmpareto_combine`.

Per batch, as the official ``train_epoch``: one forward; the multimodal loss ``CE(fused)`` and
one unimodal loss ``CE(head_u(z_u))`` per modality, each through its own linear head (method
modules). Encoder ``u``'s gradient of the multimodal loss ``g_mm`` and of its unimodal loss
``g_u`` come from *separate* backward passes; their flattened cosine picks the weights
(``1/2, 1/2`` when aligned, the two-task min-norm point when ``cos <= 0``); each encoder
parameter's gradient becomes ``gamma * new * max(1, ||g_mm + g_u|| / ||new||)`` with
``new = 2 (w_mm g_mm + w_u g_u)``; head parameters keep the plain gradient of
``CE(fused) + sum_u CE(head_u)``; then one optimizer step. Evaluation uses the fused logits.

Two backward passes per batch (not one per loss): the unimodal losses first (encoder ``u``
only sees its own unimodal loss, the heads are separate), encoder gradients read and cleared,
then the multimodal loss. Both reads are of one loss alone -- never accumulated.

Defaults (``MMPareto.py``): ``gamma = 1.5``.

Deliberate differences:

* BalanceBenchmark (``MMPareto_trainer.py``) backpropagates all losses before reading any
  gradient, so both "gradients" are the same sum and the cosine is always 1; we keep them
  separate as the official code does.
* ``M > 2``: each encoder ``u`` combines the multimodal gradient with its own unimodal
  loss's gradient (the official per-encoder rule, applied to every encoder).
* Zero-gradient / exactly-opposed cases follow the functional core (exact min-norm weight,
  a Pareto-stationary point gives a zero gradient).
* DDP: both passes run inside ``no_sync``; the two gradients are averaged over ranks before
  the (non-linear) combination, so every rank combines the gradients of the whole distributed
  batch, and ``ctx.step`` averages the (linear) head gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.mmpareto import mmpareto_combine, mmpareto_weights
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    check_number,
    encoder_groups,
    feature_widths,
    mean_over_ranks,
)


@dataclass
class MMParetoOptions(MethodOptions):
    """Options of ``mmpareto``.

    Attributes:
        gamma: gradient magnitude factor (official 1.5), ``> 0``.
    """

    gamma: float = 1.5

    def __post_init__(self) -> None:
        self.gamma = check_number("gamma", self.gamma, low=0.0, low_open=True)


@METHODS.register("mmpareto")
class MMPareto(Method):
    """MMPareto (Wei & Hu, ICML 2024): per-encoder Pareto combination of multimodal and unimodal gradients.

    Official code: GeWu-Lab/MMPareto_ICML2024 ``code/MMPareto.py`` ``train_epoch``. Defaults, deliberate
    differences and ``M > 2`` (each encoder with its own unimodal loss): see the module docstring. Logs
    per epoch ``cos_<modality>`` (mean cosine of ``g_mm`` and ``g_u``), ``conflict_<modality>``
    (fraction of steps with ``cos <= 0``) and ``w_mm_<modality>`` (mean weight of the multimodal
    gradient)."""

    Options = MMParetoOptions
    options: MMParetoOptions

    def setup(self, ctx: MethodContext) -> None:
        self.modalities = list(ctx.model.modalities)
        self.groups = encoder_groups(ctx.model, self.name)
        self.widths = feature_widths(ctx)
        c = int(ctx.train_data.num_classes)
        self.heads = nn.ModuleList([nn.Linear(w, c) for w in self.widths]).to(ctx.device)
        self.stats = EpochMeans()

    def modules(self) -> dict[str, nn.Module]:
        return {"unimodal_heads": self.heads}

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()

    def _encoder_grads(self) -> list[list[Tensor]]:
        """Current gradients of every encoder parameter (zeros where none), cloned."""
        return [
            [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in ps] for ps in self.groups
        ]

    def train_step(self, ctx: MethodContext, batch: Batch) -> tuple[Tensor, Tensor]:
        labels = batch["label"]
        keep = batch["keep"]
        ctx.zero_grad()
        with ctx.no_sync():
            feats, logits = ctx.forward(batch["inputs"], None if bool(keep.all()) else keep)
            with ctx.autocast():
                uni = [head(feats[:, m, :w]) for m, (head, w) in enumerate(zip(self.heads, self.widths))]
            loss_mm = F.cross_entropy(logits.float(), labels)
            loss_uni = torch.stack([F.cross_entropy(u.float(), labels) for u in uni])
            total = loss_mm + loss_uni.sum()
            ctx.check_loss(total)
            ctx.backward(loss_uni.sum(), retain_graph=True)  # encoder u: its own unimodal loss only
            g_uni = self._encoder_grads()
            for ps in self.groups:
                for p in ps:
                    p.grad = None
            ctx.backward(loss_mm)  # heads now hold the plain sum; encoders the multimodal gradient
            g_mm = self._encoder_grads()
        g_mm, g_uni = self._average(g_mm), self._average(g_uni)
        for m, params in enumerate(self.groups):
            if not params:
                continue
            flat_mm = torch.cat([g.reshape(-1) for g in g_mm[m]])
            flat_uni = torch.cat([g.reshape(-1) for g in g_uni[m]])
            weights = mmpareto_weights(flat_mm, flat_uni)
            for p, a, b in zip(params, g_mm[m], g_uni[m]):
                p.grad = mmpareto_combine(a, b, weights, self.options.gamma).to(p.dtype)
            cos = F.cosine_similarity(flat_mm.double(), flat_uni.double(), dim=0)
            self.stats.add(f"cos_{self.modalities[m]}", cos)
            self.stats.add(f"conflict_{self.modalities[m]}", float(cos <= 0))
            self.stats.add(f"w_mm_{self.modalities[m]}", weights[0])
        ctx.step()
        return total.detach(), logits.detach()

    @staticmethod
    def _average(grads: list[list[Tensor]]) -> list[list[Tensor]]:
        """Average per-parameter gradients over DDP ranks with one collective (identity in one process)."""
        flat = [g.reshape(-1) for gs in grads for g in gs]
        if not flat:
            return grads
        avg = mean_over_ranks(torch.cat(flat))
        out, offset = [], 0
        for gs in grads:
            row = []
            for g in gs:
                row.append(avg[offset : offset + g.numel()].view_as(g))
                offset += g.numel()
            out.append(row)
        return out

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)
