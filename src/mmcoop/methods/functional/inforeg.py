"""InfoReg: information-acquisition regulation in the prime learning window.

Paper: Huang, Wei, Yang, Hu, "Adaptive Unimodal Regulation for Balanced Multimodal Information
Acquisition", CVPR 2025. Code read: GeWu-Lab/InfoReg_CVPR2025 ``main.py`` (``train_epoch``,
``main``).

Official arithmetic. Per epoch ``e``: the Fisher trace of the audio encoder,
``tr_e = sum_layers mean(sum_batches g^2)`` over its Conv2d/Linear weights, is appended to a
list that starts with ten zeros; the acquisition rate is ``k = 1`` at epoch 0, else
``k = (T1 - T2) / T1`` with ``T1 = mean(list[-10:])``, ``T2 = mean(list[-11:-1])``. Per batch,
with OGM scores ``s_m = sum_i softmax(out_m)_i[y_i]`` and while ``k > 0.05``: if
``s_a > s_v`` audio gets ``beta_a = 0.95 * exp(tanh(s_a - s_v))``, if ``s_v > s_a`` visual gets
``beta_v = 0.1 * exp(tanh(s_v - s_a))``, else none; after the backward of
``CE(out) + CE(out_a) + CE(out_v)`` each encoder parameter's gradient gets
``beta_m * (theta - theta_epoch_start)`` (a proximal term towards the weights at the start of
the epoch). Defaults: SGD lr 0.002, 50 epochs, window 10, threshold 0.05.

Deliberate differences: ``M > 2`` compares each score with the mean of the others (for
``M = 2`` exactly the official rule, ties included); the rate may be given per modality (the
official code uses the audio encoder's rate for both). A zero trace window (no gradient at
all) gives rate 0 instead of the official 0/0.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def inforeg_fisher_trace(sum_sq_grads: Sequence[Tensor]) -> float:
    """Epoch Fisher trace ``sum_l mean(F_l)`` from per-layer accumulated squared gradients."""
    return float(sum(float(f.double().mean()) for f in sum_sq_grads))


def inforeg_acquisition_rate(history: Sequence[float], window: int = 10) -> float:
    """Relative change of the ``window``-epoch mean trace; ``1.0`` before any epoch.

    ``history`` holds the traces of the finished epochs (without the official leading zeros,
    which are added here).
    """
    if len(history) == 0:
        return 1.0
    padded = [0.0] * window + [float(h) for h in history]
    t1 = sum(padded[-window:]) / window
    t2 = sum(padded[-window - 1 : -1]) / window
    return 0.0 if t1 == 0 else (t1 - t2) / t1


def inforeg_coefficients(
    scores: Tensor, rate: float | Tensor, base: float | Tensor = 0.95, threshold: float = 0.05
) -> Tensor:
    """Proximal coefficients ``beta_m`` ``[M]``: ``base_m * exp(tanh(s_m - mean_{j!=m} s_j))`` for
    modalities ahead of the others while their rate exceeds ``threshold``, else 0.

    Args:
        scores: ``[M]`` OGM scores (batch sums of true-class probabilities).
        rate: acquisition rate ``k`` (scalar, or ``[M]`` per modality).
        base: ``[M]`` or scalar (official: 0.95 audio, 0.1 visual).
    """
    s = scores.detach().double()
    m_tot = s.shape[0]
    # mean_{j != m} (s_m - s_j) from the pairwise differences: exactly 0 for tied scores (the
    # form s_m - mean_{j != m} s_j can round a tie to a tiny positive gap and regulate it)
    gap = (s[:, None] - s[None, :]).sum(1) / (m_tot - 1)
    k = torch.as_tensor(rate, dtype=torch.float64).expand(m_tot)
    b = torch.as_tensor(base, dtype=torch.float64).expand(m_tot)
    active = (gap > 0) & (k > threshold)
    return torch.where(active, b * torch.exp(torch.tanh(gap)), torch.zeros_like(s))


def inforeg_proximal_grad(param: Tensor, anchor: Tensor, coeff: float | Tensor) -> Tensor:
    """Gradient ``coeff * (param - anchor)`` of ``coeff/2 * ||param - anchor||^2``, to add to ``.grad``."""
    return coeff * (param.detach() - anchor.detach())
