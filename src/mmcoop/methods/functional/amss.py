"""AMSS / AMSS+: adaptive masking of sub-networks by importance sampling.

Paper: Yang, Xu, Wu, Chen, Zhou, Zhang, Zhang, "Learning to Rebalance Multi-Modal
Optimization by Adaptively Masking Subnetworks", IEEE TPAMI 2025. Code read:
njustkmg/TPAMI-AMSS at 3161ecc, ``AMSS/train_test.py`` (``modal_caculate_MI``, the masking
loop of ``train_epoch``, the parser defaults ``temperature = 0.2``, ``gn_mode = gn``; the
README's runs use ``sample_mode = Adaptive``; ``isbias = 0`` is AMSS, ``isbias = 1`` AMSS+).

Official arithmetic per batch:

* label term ``H_Y = CE(p, p)`` with ``p`` the batch's label frequencies (``bincount / B``)
  passed to ``CrossEntropyLoss`` as *logits* and target: ``-sum_c p_c log softmax(p)_c``;
* modality score ``s_m = -CE(o_m, y)`` of its logits (the fusion head's slice);
* feature entropy ``H_m`` = mean over the batch of the entropy of ``softmax`` over the
  feature vector's dimensions;
* ``ratio_m = (s_m + H_Y + 0.5) / H_m``, ``t_m = ratio_m / T`` and
  ``coeff_a = e^{t_v} / (e^{t_a} + e^{t_v})`` (and symmetrically), clamped to ``[0.1, 0.9]``
  (0.5 for a nan), or 0.5 for both when some ``s_m + H_Y + 0.5 <= 0``;
* per convolution weight of encoder ``m``: importance of output filter ``i``
  ``q_i = ||g_i||^2 / sum_j ||g_j||^2``, ``ceil(N * coeff_m)`` filters drawn by
  ``torch.multinomial(q, k, replacement=False)``; the mask keeps them (AMSS: 1) and
  AMSS+ rescales them by ``1 / (q_i + 1 / N)``; the gradient is multiplied by the mask.

``M > 2`` (ours): ``coeff_m = M / (2 (M - 1)) * (1 - softmax(t)_m)``: the others' softmax
share as for two modalities (for ``M = 2`` exactly the official coefficients), scaled so that
balanced modalities keep half their filters as with two.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

COEFF_MIN, COEFF_MAX, COEFF_NEUTRAL = 0.1, 0.9, 0.5


def amss_label_term(counts: Tensor) -> Tensor:
    """The official ``H_Y = CE(p, p)`` of the batch's label frequencies (a 0-d float64).

    Args:
        counts: ``[C]`` label counts of the batch. The official ``torch.bincount(labels)`` stops
            at the largest label present, so trailing absent classes are cut off here too (they
            change the softmax of ``p``).
    """
    present = torch.nonzero(counts > 0)
    if present.numel() == 0:
        raise ValueError("amss_label_term needs at least one label")
    c = counts[: int(present.max()) + 1].double()
    p = c / c.sum()
    return -(p * torch.log_softmax(p, dim=0)).sum()


def amss_feature_entropy(feats: Tensor) -> Tensor:
    """Mean entropy of ``softmax`` over each feature vector's dimensions: ``[B, d]`` -> 0-d."""
    p = feats.detach().double().softmax(-1)
    return -(p * p.clamp(min=1e-300).log()).sum(-1).mean()


def amss_coefficients(scores: Tensor, label_term: Tensor | float, entropies: Tensor, temperature: float) -> Tensor:
    """Keep ratios ``coeff_m`` ``[M]`` in ``[0.1, 0.9]``.

    Args:
        scores: ``[M]`` ``s_m = -CE(o_m, y)`` (batch means).
        label_term: ``H_Y`` of `amss_label_term`.
        entropies: ``[M]`` feature entropies ``H_m``.
        temperature: ``T`` (official 0.2).
    """
    m = scores.shape[0]
    num = scores.double() + float(label_term) + 0.5
    if bool((num <= 0).any()):
        return torch.full((m,), COEFF_NEUTRAL, dtype=torch.float64)
    t = num / entropies.double() / temperature
    share = torch.softmax(t, dim=0)
    coeff = m / (2.0 * (m - 1)) * (1.0 - share)
    coeff = torch.where(torch.isnan(coeff), torch.full_like(coeff, COEFF_NEUTRAL), coeff)
    return coeff.clamp(COEFF_MIN, COEFF_MAX)


def amss_unit_importance(grad: Tensor) -> Tensor:
    """``||g_i||^2`` of each output unit (dim 0: a filter, a neuron) of a weight gradient, ``[N]``."""
    return grad.detach().double().pow(2).reshape(grad.shape[0], -1).sum(1)


def amss_mask(importance: Tensor, keep: float, generator: torch.Generator, unbiased: bool = False) -> Tensor:
    """The gradient mask ``[N]`` over output units.

    Draws ``ceil(N * keep)`` units without replacement with probabilities ``q = importance /
    sum``; a drawn unit gets 1 (AMSS) or ``1 / (q_i + 1 / N)`` (AMSS+, ``unbiased``), the rest 0.
    An all-zero ``importance`` (no gradient) gives all ones (nothing to mask).

    Args:
        importance: ``[N]`` non-negative unit importances (`amss_unit_importance`).
        keep: fraction of units kept, in ``(0, 1]``.
        generator: the draw's generator (CPU; the same on every rank and on resume).
        unbiased: AMSS+ rescaling.
    """
    n = importance.shape[0]
    total = importance.sum()
    if not bool(total > 0):
        return torch.ones(n, dtype=torch.float64)
    q = (importance / total).cpu()
    k = min(n, max(1, math.ceil(n * keep)))
    # multinomial without replacement draws only among non-zero q; keep the rest out
    k = min(k, int((q > 0).sum()))
    drawn = torch.multinomial(q, k, replacement=False, generator=generator)
    mask = torch.zeros(n, dtype=torch.float64)
    mask[drawn] = 1.0 / (q[drawn] + 1.0 / n) if unbiased else 1.0
    return mask
