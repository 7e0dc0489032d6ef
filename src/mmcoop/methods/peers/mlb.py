"""``mlb``: multi-loss balanced gradient modulation.

Paper: Kontras, Chatzichristodoulou, Blaschko, De Vos, "Improving Multimodal Learning with
Multi-Loss Gradient Modulation", BMVC 2024 / IJCV 2025. Code read: kkontras/MLB at 357b5ce
(``agents/general_agent/helpers/Bias_Infusion.py`` ``Bias_Infusion_MLB`` and
``Bias_Infusion_MLB_3d``; ``agents/general_agent/helpers/Trainer.py`` ``calculate_loss``;
``models/OGM_Model.py`` ``ConcatClassifier_CREMAD_OGM_pre``; ``configs/CREMA_D/res/MLB.json``).
BalanceBenchmark (GeWu-Lab/BalanceBenchmark at 4c1482f) has no MLB trainer. Arithmetic:
`mmcoop.methods.functional.mlb_coefficients`.

Per batch, as the official trainer: one forward; the loss is
``CE(fused) + sum_m w_m CE(head_m(z_m))`` with each modality's own linear classifier (a
method module here; official ``enc_m``'s classifier, ``multi_supervised_w`` 1 each); backward;
scores ``s_m`` (batch mean true-class probability of ``head_m``), coefficients
``k_m = 1 + tanh(alpha (rho_m - 1))``; inside the window every gradient of modality ``m``'s
branch -- its encoder, its own head, and its slice of a linear fusion head (official
``fc_m_lin.weight``) -- is multiplied by ``k_m``; then the optimizer step.

Defaults (``configs/CREMA_D/res/MLB.json``): ``alpha = 0.8``, ``unimodal_weight = 1``,
``modulation_starts = 0``, ``modulation_ends = null`` (official 1500: no end in practice).

Deliberate differences:

* The fusion-head slice is scaled for ``concat`` and ``sum`` fusion (the heads linear per
  modality, `linear_head_slices`); other heads
  (``film``, ``gated``) keep their gradients (the official code has no such head in MLB runs).
* ``M > 2``: ``rho_m = mean_{j != m} s_j / s_m``, exactly the official three-modality class
  ``Bias_Infusion_MLB_3d`` and, for ``M = 2``, the two-modality one.
* DDP: the scores are means over the whole distributed batch (sums and counts summed over
  ranks), and the gradients are already averaged, so every rank applies the same factors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.methods.functional._common import stacked_cross_entropy
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional._common import true_class_probs
from mmcoop.methods.functional.mlb import mlb_coefficients, mlb_ratios
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    OwnHeadsEvaluation,
    check_number,
    check_window,
    encoder_groups,
    heads_logits,
    in_window,
    linear_head_slices,
    require_modalities,
    sum_over_ranks,
    unimodal_heads,
)


@dataclass
class MLBOptions(MethodOptions):
    """Options of ``mlb``.

    Attributes:
        alpha: modulation strength (official 0.8), ``>= 0``.
        unimodal_weight: weight of each modality's own cross-entropy (official 1).
        modulation_starts: first modulated epoch (0-based, official 0).
        modulation_ends: last modulated epoch (inclusive); ``null`` = no end (official 1500).
    """

    alpha: float = 0.8
    unimodal_weight: float = 1.0
    modulation_starts: int = 0
    modulation_ends: Optional[int] = None

    def __post_init__(self) -> None:
        self.alpha = check_number("alpha", self.alpha, low=0.0)
        self.unimodal_weight = check_number("unimodal_weight", self.unimodal_weight, low=0.0)
        check_window(self.modulation_starts, self.modulation_ends)


@METHODS.register("mlb")
class MLB(OwnHeadsEvaluation, Method):
    """MLB (Kontras et al., BMVC 2024): multi-loss training, each branch's gradient times ``1 + tanh(alpha (rho - 1))``.

    Official code: kkontras/MLB at 357b5ce. Defaults, deliberate differences and ``M > 2``
    (``rho_m`` = mean of the others' scores over ``s_m``): see the module docstring. Logs per
    epoch ``coeff_<modality>`` (mean applied factor, 1 outside the window) and ``ratio_<modality>``."""

    Options = MLBOptions
    options: MLBOptions
    presets: ClassVar[dict[str, dict[str, Any]]] = {"cremad": {"alpha": 0.8}}

    def setup(self, ctx: MethodContext) -> None:
        require_modalities(ctx.model, self.name)
        self.modalities = list(ctx.model.modalities)
        self.groups = encoder_groups(ctx.model, self.name)
        self.heads, self.widths = unimodal_heads(ctx)
        self.stats = EpochMeans()
        #: factors ``[M]`` applied at the last step (tests and diagnostics)
        self.last_coeffs: Tensor | None = None
        self._uni: Tensor | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"unimodal_heads": self.heads}

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        labels = batch["label"]
        uni = heads_logits(self.heads, feats, self.widths).float()  # [M, B, C]
        self._uni = uni.detach()
        ce = stacked_cross_entropy(uni, labels)
        return F.cross_entropy(logits.float(), labels) + self.options.unimodal_weight * ce.sum()

    def scores(self, uni: Tensor, labels: Tensor) -> Tensor:
        """Batch means ``s_m`` ``[M]`` of the true-class probabilities over the whole distributed batch."""
        probs = true_class_probs(uni, labels).double()  # [M, B]
        total = sum_over_ranks(torch.cat([probs.sum(1), probs.new_tensor([probs.shape[1]])]))
        return total[:-1] / total[-1]

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        o = self.options
        if self._uni is None or not in_window(ctx.epoch, o.modulation_starts, o.modulation_ends):
            self.stats.add_per_modality("coeff", self.modalities, torch.ones(len(self.modalities)))
            return
        scores = self.scores(self._uni, batch["label"])
        coeffs = mlb_coefficients(scores, o.alpha)
        self.scale_gradients(ctx, coeffs)
        self.last_coeffs = coeffs
        self.stats.add_per_modality("coeff", self.modalities, coeffs)
        self.stats.add_per_modality("ratio", self.modalities, mlb_ratios(scores))

    def scale_gradients(self, ctx: MethodContext, coeffs: Tensor) -> None:
        """Multiply modality ``m``'s encoder, own head and fusion-head slice gradients by ``coeffs[m]``."""
        for m, k in enumerate(coeffs.tolist()):
            for p in [*self.groups[m], *self.heads[m].parameters()]:
                if p.grad is not None:
                    p.grad.mul_(k)
        sliced = linear_head_slices(ctx.model)
        grad = None if sliced is None else sliced[0].grad
        if sliced is not None and grad is not None:
            view = sliced[1](grad)  # [M, C, D] view of the gradient
            view.mul_(coeffs.to(view.dtype).view(-1, 1, 1))

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)
