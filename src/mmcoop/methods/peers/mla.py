"""``mla``: multimodal learning with alternating unimodal adaptation.

Paper: Zhang, Yoon, Bansal, Yao, "Multimodal Representation Learning by Alternating Unimodal
Adaptation", CVPR 2024. Code: Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation
``main.py`` (``train_epoch`` with ``--gs_flag``, ``valid`` with ``--dynamic``,
``calculate_gating_weights``) and ``utils/utils.py`` (``GSPlugin.before_update``). Arithmetic:
`mmcoop.methods.functional.mla_projection_alpha`, `mla_update_projector`,
`mla_project_grad` and `mla_fuse`.

Training, as the official ``gs_flag`` branch: ONE linear head shared by all modalities (a
method module here: ``Linear(D, C)`` on each modality's feature); per batch, for each
modality ``m`` in turn: its encoder's features, ``CE(head(z_m))``, backward, the head's weight
gradient replaced by ``g P^T`` after the projector update from the batch-mean feature
(``P`` shared by all modalities, starts at ``I``, no projection on the very first update),
optimizer step -- ``M`` optimizer steps per batch. Only modality ``m``'s encoder runs for its
step (the model's keep-mask), as the official separate encoders make the other encoders'
gradients zero. Evaluation: ``sum_m w_m head(z_m)`` with per-sample weights ``softmax_m(-H_m)``
of the prediction entropies (``--dynamic``), or uniform weights (``av_alpha = 0.5``).

Defaults: projection on, dynamic fusion on (the paper's method).

Deliberate differences:

* The projection runs, as the paper says: the official ``before_update`` matches a parameter
  named ``"module.weight"`` that the plain ``nn.Linear`` head does not have, so at HEAD it
  never projects (``projection: false`` reproduces that); its update also divides by
  ``alpha + k r`` with ``k r`` an outer product where the paper has the scalar ``r k``
  (see the functional core).
* Entropy per sample (softmax over classes) for the fusion weights; the official
  ``calculate_entropy`` uses ``softmax(dim=0)`` over the batch (one weight per batch).
* ``M > 2``: the same alternation over all modalities (the official code has a 3-modality
  branch); uniform static weights replace the official fixed 0.35 / 0.25 / 0.4.
* The model's own fusion head is not trained (the shared head replaces it), so the per-modality
  validation accuracies ``val_acc_<modality>`` that the training loop computes from the fusion
  head are not MLA's; ``val_acc`` is (it uses `MLA.predict`).
* DDP: every per-modality backward runs inside ``no_sync`` (the model's fusion head gets no
  gradient) and ``ctx.step`` averages; the projector update uses the batch-mean feature of the
  whole distributed batch (mean over ranks), so ``P`` stays identical on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.mla import mla_fuse, mla_project_grad, mla_projection_alpha, mla_update_projector
from mmcoop.methods.peers._wiring import EpochMeans, batches_per_epoch, check_bool, feature_widths, mean_over_ranks


@dataclass
class MLAOptions(MethodOptions):
    """Options of ``mla``.

    Attributes:
        projection: project the shared head's gradient (the paper; ``false`` = the official code at HEAD).
        dynamic: entropy-weighted fusion at evaluation (official ``--dynamic``); ``false`` = uniform weights.
    """

    projection: bool = True
    dynamic: bool = True

    def __post_init__(self) -> None:
        check_bool("projection", self.projection)
        check_bool("dynamic", self.dynamic)


@METHODS.register("mla")
class MLA(Method):
    """MLA (Zhang et al., CVPR 2024): alternating unimodal steps through one shared head.

    Official code: Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation ``main.py``
    (``train_epoch``, ``valid``) and ``utils/utils.py`` (``GSPlugin.before_update``). Defaults,
    deliberate differences and ``M > 2`` (one step per modality): see the module docstring. Logs per
    epoch ``loss_<modality>`` (mean unimodal loss); ``epoch_steps`` (from the loop) is ``M`` times the
    number of batches."""

    Options = MLAOptions
    options: MLAOptions

    def setup(self, ctx: MethodContext) -> None:
        self.modalities = list(ctx.model.modalities)
        width = max(feature_widths(ctx))
        self.head = nn.Linear(width, int(ctx.train_data.num_classes)).to(ctx.device)
        #: the gradient projector ``P`` ``[D, D]`` and the number of head updates so far
        self.projector = torch.eye(width, device=ctx.device)
        self.updates = 0
        self.batch_index = 0
        self.num_batches = 1
        self.stats = EpochMeans()

    def modules(self) -> dict[str, nn.Module]:
        return {"shared_head": self.head}

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()
        self.batch_index = 0
        self.num_batches = batches_per_epoch(len(self.train_set(ctx)), ctx.batch_size)

    def head_logits(self, feats: Tensor) -> Tensor:
        """Shared-head logits of every modality: ``feats [B, M, D]`` -> ``[M, B, C]``."""
        return self.head(feats).transpose(0, 1)

    def unimodal_logits(self, model: nn.Module, feats: Tensor) -> Tensor:
        """Each modality alone at evaluation: the shared head on its feature, ``[B, M, C]``
        (the model's own fusion head is never trained by MLA)."""
        return self.head(feats.to(self.head.weight.dtype))

    def train_step(self, ctx: MethodContext, batch: Batch) -> tuple[Tensor, Tensor]:
        labels = batch["label"]
        keep = batch["keep"]
        m_tot = len(self.modalities)
        alpha = mla_projection_alpha(self.batch_index, self.num_batches)
        losses, outs = [], []
        for m in range(m_tot):
            only = torch.zeros_like(keep)
            only[:, m] = keep[:, m]
            ctx.zero_grad()
            with ctx.no_sync():
                feats, _ = ctx.forward(batch["inputs"], only)
                z = feats[:, m]
                with ctx.autocast():
                    out = self.head(z)
                loss = F.cross_entropy(out.float(), labels)
                ctx.check_loss(loss)
                ctx.backward(loss)
            if self.options.projection and self.updates != 0 and self.head.weight.grad is not None:
                r = mean_over_ranks(z.detach().float().mean(0, keepdim=True))  # [1, D]
                self.projector = mla_update_projector(self.projector, r, alpha)
                self.head.weight.grad = mla_project_grad(self.head.weight.grad, self.projector)
            self.updates += 1
            ctx.step()
            losses.append(loss.detach())
            outs.append(out.detach().float())
        self.batch_index += 1
        loss_t = torch.stack(losses)
        self.stats.add_per_modality("loss", self.modalities, loss_t)
        fused = mla_fuse(torch.stack(outs)) if self.options.dynamic else torch.stack(outs).mean(0)
        return loss_t.mean(), fused

    def predict(self, model: nn.Module, feats: Tensor, batch: Batch) -> Tensor:
        logits = self.head_logits(feats.to(self.head.weight.dtype))
        if self.options.dynamic:
            return mla_fuse(logits.float())
        return logits.float().mean(0)

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)

    def state_dict(self) -> dict[str, Any]:
        return {"projector": self.projector.detach().cpu().clone(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.projector = state["projector"].to(self.head.weight.device)
        self.updates = int(state["updates"])
