"""AGM: adaptive gradient modulation with Shapley-based mono-modal responses.

Paper: Li, Li, Hu, Lei, Li, Zhou, "Boosting Multi-modal Model Performance with Adaptive Gradient
Modulation", ICCV 2023. Code read: lihong2303/AGM_ICCV2023 ``model/AVMNIST_net.py``
(``Modality_Audio``, ``Modality_Visual``, ``GradMod`` hooks) and ``run/AVMNIST_main.py`` ``train``;
GeWu-Lab/BalanceBenchmark ``balancemm/trainer/AGM_trainer.py``.

Official arithmetic (M = 2): mono responses ``m_a = (f(a,v) - f(0,v) + f(a,0)) / 2`` (inputs
zeroed, padded passes in eval mode), ``out = m_a + m_v = f(a,v)``; scores
``s_u = mean_i -log max(p_u,i[y_i], 1e-8)``; ``ratio_u = exp(2 (mean(s) - s_u))``; the same with
the running means ``S_u`` gives ``opt_u``; ``k_u = exp(alpha (opt_u - ratio_u))`` scales the
gradient flowing into ``m_u`` (backward hook); then ``S_u <- S_u t/(t+1) + s_u/(t+1)`` with the
global step ``t`` starting at 0 and ``S = 0`` initially. Gradients are clipped to norm 1 when
the head weight gradient leaves ``[-1, 1]``. Defaults: ``alpha=1.0`` (README example 2.5 on
AV-MNIST), modulation epochs ``0..20``.

Deliberate differences:

* ``M > 2``: mono responses are exact Shapley values over the ``2^M`` coalitions with the empty
  coalition's output taken as 0 (for ``M = 2`` exactly the official formula), and the constant
  2 becomes ``M / (M - 1)`` (as BalanceBenchmark). BalanceBenchmark flips the sign,
  ``exp(k (s_u - mean))``, which boosts instead of damps a modality that is ahead of its
  running average; we keep the official sign. ``max_exponent`` (BalanceBenchmark: 7) is
  optional, off by default.
"""

from __future__ import annotations

import math
from itertools import combinations

import torch
from torch import Tensor

from mmcoop.methods.functional._common import check_stacked_logits


def shapley_weights(num_modalities: int) -> Tensor:
    """``[M, 2^M]`` matrix ``W`` with ``phi = W @ v`` the Shapley values of coalition values ``v``.

    Coalition ``S`` is indexed by its bitmask (bit ``m`` set = modality ``m`` present).
    """
    m_tot = num_modalities
    w = torch.zeros(m_tot, 2**m_tot, dtype=torch.float64)
    for m in range(m_tot):
        others = [j for j in range(m_tot) if j != m]
        for size in range(m_tot):
            c = math.factorial(size) * math.factorial(m_tot - size - 1) / math.factorial(m_tot)
            for subset in combinations(others, size):
                mask = sum(1 << j for j in subset)
                w[m, mask | (1 << m)] += c
                w[m, mask] -= c
    return w


def agm_mono_responses(coalition_outputs: Tensor, empty_is_zero: bool = True) -> Tensor:
    """Shapley mono-modal responses ``[M, B, C]`` from coalition outputs ``[2^M, B, C]``.

    ``coalition_outputs[S]`` is the model output with only the modalities in bitmask ``S``
    present (others zeroed). ``empty_is_zero`` ignores ``coalition_outputs[0]`` (official);
    then the responses sum to the full output ``coalition_outputs[-1]``.
    """
    n = coalition_outputs.shape[0]
    m_tot = n.bit_length() - 1
    if n != 2**m_tot or m_tot < 1:
        raise ValueError(f"need 2^M coalition outputs, got {n}")
    v = coalition_outputs
    if empty_is_zero:
        v = torch.cat([torch.zeros_like(v[:1]), v[1:]])
    w = shapley_weights(m_tot).to(v.dtype).to(v.device)
    return torch.einsum("ms,sbc->mbc", w, v)


def agm_scores(mono: Tensor, labels: Tensor) -> Tensor:
    """``[M]`` mean over the batch of ``-log max(p[y], 1e-8)`` of ``softmax(mono[m])``."""
    check_stacked_logits(mono, labels)
    logp = mono.detach().float().log_softmax(-1)
    idx = labels.long().view(1, -1, 1).expand(mono.shape[0], -1, 1)
    return -logp.gather(-1, idx).squeeze(-1).clamp(min=math.log(1e-8)).mean(-1)


def agm_coefficients(scores: Tensor, running: Tensor, alpha: float, max_exponent: float | None = None) -> Tensor:
    """``k_m = exp(alpha * (opt_m - ratio_m))`` with ``ratio_m = exp(M/(M-1) (mean(s) - s_m))``."""
    m_tot = scores.shape[0]
    k = m_tot / (m_tot - 1)
    ratio = torch.exp(k * (scores.mean() - scores))
    opt = torch.exp(k * (running.mean() - running))
    expo = opt - ratio
    if max_exponent is not None:
        expo = expo.clamp(max=max_exponent)
    return torch.exp(alpha * expo)


def agm_update_running(running: Tensor, scores: Tensor, step: int) -> Tensor:
    """Running mean after ``step`` previous updates: ``S t/(t+1) + s/(t+1)``."""
    return running * (step / (step + 1)) + scores / (step + 1)


def scale_grad(x: Tensor, coeff: Tensor | float) -> Tensor:
    """Identity in the forward pass; multiplies the incoming gradient by ``coeff``."""
    return x.detach() + (x - x.detach()) * coeff


def agm_fuse(mono: Tensor, coeffs: Tensor) -> Tensor:
    """``sum_m mono[m]`` ``[B, C]`` with the gradient into ``mono[m]`` scaled by ``coeffs[m]``."""
    return sum(scale_grad(mono[m], coeffs[m].detach()) for m in range(mono.shape[0]))
