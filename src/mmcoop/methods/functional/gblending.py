"""G-Blending: gradient-blending weights from the overfitting-to-generalisation ratio.

Paper: Wang, Tran, Feiszli, "What Makes Training Multi-modal Classification Networks Hard?",
CVPR 2020 (Sec. 4, Eq. 8 and Alg. 1/2). The official release (facebookresearch/VMZ,
``c2/tutorials/gradient_blending.md``) only *consumes* fixed ``audio_weight / visual_weight /
av_weight`` computed offline (e.g. Kinetics R3D-50: 0.014 / 0.630 / 0.356) and ships no
estimator; arithmetic checked against GeWu-Lab/BalanceBenchmark
``balancemm/trainer/GBlending_trainer.py`` ``super_epoch_origin`` / ``training_step``.

Arithmetic: for each head ``k`` (every unimodal head and the fused head), over a window of
``n`` epochs from checkpoint ``N``: overfitting ``O = L_val - L_train``, generalisation gain
``dG = L_val(N) - L_val(N+n)``, overfitting change ``dO = O(N+n) - O(N)``; weights
``w_k = (dG_k / dO_k^2) / Z`` with ``Z`` making them sum to 1; training loss
``sum_k w_k CE(head_k)``. BalanceBenchmark recomputes them every ``super_epoch`` (10) epochs
("online" G-Blend) by training a copy of the model.

Deliberate differences: a head whose validation loss did not improve (``dG <= 0``) gets weight
0 (the paper's ratio would be negative; BalanceBenchmark takes ``abs``, rewarding a head that
got worse); ``dO`` is floored at ``eps`` in magnitude; if no head improved, uniform weights.
Losses must be per-sample means (BalanceBenchmark subtracts epoch *sums* over different
numbers of train and validation batches, so its ``O`` mixes scales).
"""

from __future__ import annotations

import torch
from torch import Tensor


def gblend_weights(
    train_start: Tensor, val_start: Tensor, train_end: Tensor, val_end: Tensor, eps: float = 1e-8
) -> Tensor:
    """Blending weights ``[K]`` (non-negative, sum 1) from mean losses of ``K`` heads.

    Args:
        train_start, val_start: ``[K]`` train / validation losses at the window's start.
        train_end, val_end: ``[K]`` the same at its end.
    """
    t0, v0, t1, v1 = (x.double() for x in (train_start, val_start, train_end, val_end))
    d_g = v0 - v1
    d_o = (v1 - t1) - (v0 - t0)
    raw = d_g.clamp(min=0) / d_o.pow(2).clamp(min=eps)
    total = raw.sum()
    if float(total) <= 0:
        return torch.full_like(raw, 1.0 / raw.shape[0])
    return raw / total


def gblend_loss(head_losses: Tensor, weights: Tensor) -> Tensor:
    """``sum_k weights[k] * head_losses[k]`` for ``[K]`` per-head losses."""
    return (weights.to(head_losses.dtype).detach() * head_losses).sum()
