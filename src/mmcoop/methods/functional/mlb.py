"""MLB: multi-loss balanced gradient modulation.

Paper: Kontras, Chatzichristodoulou, Blaschko, De Vos, "Improving Multimodal Learning with
Multi-Loss Gradient Modulation", BMVC 2024 (extended in IJCV 2025). Code read:
kkontras/MLB at 357b5ce, ``agents/general_agent/helpers/Bias_Infusion.py``
(``Bias_Infusion_MLB.on_backward_end`` for two modalities, ``Bias_Infusion_MLB_3d`` for
three) and ``configs/CREMA_D/res/MLB.json`` (``alpha = 0.8``, losses ``combined, c, g`` with
weight 1, window ``0..1500``).

Official arithmetic: ``s_m`` = batch *mean* of the true-class softmax probability of
modality ``m``'s own classifier; ``rho_m = mean_{j != m} s_j / s_m`` (two modalities:
``s_other / s_m``; three: ``((s_j + s_k) / 2) / s_m``, exactly the 3-d class);
``k_m = 1 + tanh(alpha (rho_m - 1))``: the weaker modality (``rho_m > 1``) is accelerated
(``k_m in (1, 2)``), the stronger slowed (``k_m in (0, 1)``) -- unlike OGM-GE, which only
slows the stronger one. Every parameter of modality ``m``'s branch has its gradient
multiplied by ``k_m``.

Deliberate differences: none in the arithmetic; ``tanh_mode: 2`` (an unused config option
capping the slowing at ``beta``) is not offered.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mlb_ratios(scores: Tensor) -> Tensor:
    """``rho_m = mean_{j != m} s_j / s_m`` from ``[M]`` mean scores (``M >= 2``), ``[M]``."""
    if scores.dim() != 1 or scores.shape[0] < 2:
        raise ValueError(f"scores must be [M] with M >= 2, got shape {tuple(scores.shape)}")
    m = scores.shape[0]
    others = (scores.sum() - scores) / (m - 1)
    return others / scores


def mlb_coefficients(scores: Tensor, alpha: float) -> Tensor:
    """Gradient factors ``k_m = 1 + tanh(alpha (rho_m - 1))`` ``[M]`` in ``(0, 2)``.

    Args:
        scores: ``[M]`` batch means of true-class probabilities (positive).
        alpha: modulation strength (official 0.8 on CREMA-D).
    """
    return 1.0 + torch.tanh(alpha * (mlb_ratios(scores.detach().double()) - 1.0))
