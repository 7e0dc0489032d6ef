"""Helpers shared by several peer methods: true-class scores and one-vs-others ratios.

Conventions used across `mmcoop.methods.functional`:

* per-modality logits are stacked as ``[M, B, C]`` (modality, batch, class);
* per-modality scalars (scores, coefficients, weights) are ``[M]`` float tensors;
* nothing here touches an ``nn.Module``, an optimizer or data.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_stacked_logits(logits: Tensor, labels: Tensor) -> None:
    """Raise ``ValueError`` unless ``logits`` is ``[M, B, C]`` and ``labels`` is ``[B]``."""
    if logits.dim() != 3:
        raise ValueError(f"expected stacked logits [M, B, C], got shape {tuple(logits.shape)}")
    if labels.dim() != 1 or labels.shape[0] != logits.shape[1]:
        raise ValueError(f"labels must be [B] with B = {logits.shape[1]}, got shape {tuple(labels.shape)}")


def true_class_probs(logits: Tensor, labels: Tensor) -> Tensor:
    """Softmax probability of the true class per modality and sample.

    Args:
        logits: ``[M, B, C]`` per-modality logits.
        labels: int64 ``[B]`` class indices.

    Returns:
        ``[M, B]`` probabilities ``softmax(logits[m, i])[labels[i]]``.
    """
    check_stacked_logits(logits, labels)
    index = labels.long().view(1, -1, 1).expand(logits.shape[0], -1, 1)
    return logits.softmax(dim=-1).gather(-1, index).squeeze(-1)


def true_class_scores(logits: Tensor, labels: Tensor) -> Tensor:
    """OGM-style modality score: the batch *sum* of true-class softmax probabilities.

    This is ``s^u = sum_i softmax(W^u phi^u(x_i) + b/2)_{y_i}`` of OGM-GE (CVPR 2022, Eq. 8),
    also used by OPM/OGM (TPAMI 2024), PMR (on prototype logits) and InfoReg.

    Args:
        logits: ``[M, B, C]`` per-modality logits.
        labels: int64 ``[B]``.

    Returns:
        ``[M]`` scores in ``[0, B]``.
    """
    return true_class_probs(logits, labels).sum(dim=-1)


def one_vs_others_ratio(scores: Tensor, eps: float = 1e-5) -> Tensor:
    """Discrepancy ratio of each modality against the others, averaged pairwise.

    ``rho_m = mean_{j != m} s_m / (s_j + eps)``. For ``M = 2`` this is the paper's
    ``s_a / s_v``. For ``M > 2`` it is the extension the OGM-GE maintainers suggest
    (GeWu-Lab/OGM-GE_CVPR2022 issue #16: "calculate the one-to-others discrepancy ratios
    pair-wise, then average the results"). ``eps`` keeps a zero score finite (the CVPR
    code divides without it; BalanceBenchmark adds ``1e-5``).

    Args:
        scores: ``[M]`` non-negative scores, ``M >= 2``.
        eps: added to each denominator.

    Returns:
        ``[M]`` ratios; the weakest modality's ratio is ``< 1`` whenever ``eps > 0``.
    """
    if scores.dim() != 1 or scores.shape[0] < 2:
        raise ValueError(f"scores must be [M] with M >= 2, got shape {tuple(scores.shape)}")
    m = scores.shape[0]
    pair = scores.view(m, 1) / (scores.view(1, m) + eps)  # [M, M], pair[i, j] = s_i / s_j
    off_diag = ~torch.eye(m, dtype=torch.bool, device=scores.device)
    return (pair * off_diag).sum(dim=1) / (m - 1)


def stacked_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of each modality's logits: ``[M, B, C]``, ``[B]`` -> ``[M]`` (float32 or wider)."""
    check_stacked_logits(logits, labels)
    m = logits.shape[0]
    ce = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.repeat(m), reduction="none")
    return ce.view(m, -1).mean(1)
