"""LFM: learning-fitted weights between fusion cross-entropy and unimodal alignment.

Paper: Yang, Wang, et al., "Facilitating Multimodal Classification via Dynamically Learning
Modality Gap", NeurIPS 2024. Code read: njustkmg/NeurIPS24-LFM at ad44fa0
``Crema_epoch_learnable.py`` (``Alignment``, ``getAlpha_Learnable``,
``getAlpha_Learnable_Fitted``, ``train_audio_video``) and GeWu-Lab/BalanceBenchmark at 4c1482f
``balancemm/trainer/LFM_trainer.py`` (``manual_combinations``, ``Alignment``,
``getAlpha_Learnable``, ``LFMTrainer.training_step``).

Official arithmetic: loss ``2 (k_0 CE(fused) + k_1 A)`` with the alignment
``A(p, q) = 0.5 (kl_div(log p, m) + kl_div(log q, m))``, ``m = (p + q) / 2`` of the unimodal
softmax predictions (``batchmean``; note ``kl_div(log p, m)`` is ``KL(m || p)``), averaged over
modality pairs in BalanceBenchmark. Before every epoch the weights are learnt on a validation
batch: ``g = mean(H_total v)[first parameter]`` with ``H_total`` the Hessian of
``k_0 CE + k_1 A`` and ``v`` the gradient of ``CE`` (``torch.autograd.grad`` with
``grad_outputs``); ``k_1 <- clip(k_1 - lr g, 0.05, 0.95)``, ``k_0 = 1 - k_1``; ``lr`` (``1e-4``)
is halved at every epoch that is a positive multiple of 20. Official start ``k = (0.05, 0.95)``
(CE weight first); BalanceBenchmark starts at ``(0.95, 0.05)``. The official script also carries
a fitted polynomial of the epoch (``getAlpha_Learnable_Fitted``, commented out there).

Deliberate differences: none in the arithmetic; ``scope="all"`` averages the Hessian-vector
product over every parameter instead of the first parameter tensor only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

#: ``getAlpha_Learnable_Fitted``'s coefficients (CE weight, alignment weight), lowest power first
FITTED = (
    (2.04623704e-01, 3.35472727e-03, 1.22989557e-04, -2.92947416e-06, 2.23835486e-08, -5.39717505e-11),
    (7.95376296e-01, -3.35472727e-03, -1.22989557e-04, 2.92947416e-06, -2.23835486e-08, 5.39717505e-11),
)
WEIGHT_RANGE = (0.05, 0.95)


def lfm_alignment(uni: Tensor) -> Tensor:
    """The official ``Alignment`` averaged over modality pairs.

    Args:
        uni: ``[M, B, C]`` each modality's logits.

    Returns:
        ``mean_{j < k} 0.5 (KL(m || p_j) + KL(m || p_k))`` per sample averaged (``batchmean``),
            ``m = (p_j + p_k) / 2``, ``p = softmax``.
    """
    m_, b, _ = uni.shape
    j, k = torch.triu_indices(m_, m_, offset=1, device=uni.device)
    p, q = uni[j].softmax(-1), uni[k].softmax(-1)  # [P, B, C]
    mid = 0.5 * p + 0.5 * q
    kl_p = F.kl_div(p.log(), mid, reduction="none").sum(dim=(1, 2)) / b
    kl_q = F.kl_div(q.log(), mid, reduction="none").sum(dim=(1, 2)) / b
    return (0.5 * (kl_p + kl_q)).mean()


def lfm_loss(fused: Tensor, uni: Tensor, labels: Tensor, weights: Sequence[float]) -> Tensor:
    """``2 (k_0 CE(fused) + k_1 alignment(uni))`` (``train_audio_video`` / ``training_step``)."""
    return 2.0 * (weights[0] * F.cross_entropy(fused, labels) + weights[1] * lfm_alignment(uni))


def lfm_hvp_signal(total: Tensor, cls: Tensor, params: Sequence[Tensor], scope: str = "first") -> Tensor:
    """The official hypergradient signal ``mean(H_total v)``, ``v = d cls / d theta``.

    Args:
        total: scalar ``k_0 CE + k_1 A`` on the validation batch (graph kept).
        cls: scalar ``CE`` on the same batch.
        params: the parameters ``theta`` (official: ``model.parameters()``).
        scope: ``first`` (official: the first parameter tensor's product) or ``all``.

    Returns:
        A 0-d tensor.
    """
    if scope not in ("first", "all"):
        raise ValueError(f"scope must be 'first' or 'all'; got {scope!r}")
    params = list(params)
    grads = torch.autograd.grad(total, params, create_graph=True, allow_unused=True)
    vec = torch.autograd.grad(cls, params, retain_graph=True, allow_unused=True)
    used = [(g, v) for g, v in zip(grads, vec) if g is not None and v is not None and g.requires_grad]
    if not used:
        return params[0].new_zeros(())
    hvp = torch.autograd.grad([g for g, _ in used], params, grad_outputs=[v for _, v in used], allow_unused=True)
    parts = [h if h is not None else torch.zeros_like(p) for h, p in zip(hvp, params)]
    if scope == "first":
        return parts[0].detach().mean()
    return torch.cat([h.detach().reshape(-1) for h in parts]).mean()


def lfm_step_size(epoch: int, lr: float) -> float:
    """``lr`` halved at every positive multiple of 20 up to ``epoch`` (``getAlpha_Learnable``)."""
    return lr / 2 ** (epoch // 20)


def lfm_update_weight(align_weight: float, signal: float, lr: float) -> float:
    """``clip(k_1 - lr * signal, 0.05, 0.95)``: the new alignment weight (the CE weight is ``1 - k_1``)."""
    return min(WEIGHT_RANGE[1], max(WEIGHT_RANGE[0], align_weight - lr * signal))


def lfm_fitted_weights(epoch: int) -> tuple[float, float]:
    """``getAlpha_Learnable_Fitted(epoch)``: (CE weight, alignment weight) from the fitted polynomials."""
    ce, align = (sum(c * float(epoch) ** i for i, c in enumerate(coef)) for coef in FITTED)
    return ce, align
