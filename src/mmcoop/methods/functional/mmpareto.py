"""MMPareto: conflict-aware combination of multimodal and unimodal gradients.

Paper: Wei, Hu, "MMPareto: Boosting Multimodal Learning with Innocent Unimodal Assistance",
ICML 2024. Code read: GeWu-Lab/MMPareto_ICML2024 ``code/MMPareto.py`` ``train_epoch`` and
``code/min_norm_solvers.py`` (``MinNormSolver._min_norm_element_from2``);
GeWu-Lab/BalanceBenchmark ``balancemm/trainer/MMPareto_trainer.py``.

Official arithmetic, per encoder ``u`` with gradients ``g_mm`` (multimodal loss) and ``g_u``
(its unimodal loss), each from its *own* backward pass: ``cos(g_mm, g_u) > 0`` -> weights
``(1/2, 1/2)``; else the two-task min-norm (MGDA) point ``c g_mm + (1 - c) g_u`` with
``c = (g_u.g_u - g_mm.g_u) / ||g_mm - g_u||^2``. The cosine and ``c`` use the whole encoder's
flattened gradient. Then, *per parameter tensor*, ``new = 2 w_mm g_mm + 2 w_u g_u`` and
``grad = gamma * new * max(1, ||g_mm + g_u|| / ||new||)`` with ``gamma = 1.5`` (BalanceBenchmark
``alpha = 1.5``); head parameters keep the plain summed gradient.

Deliberate differences:

* We take two separate gradients. BalanceBenchmark backpropagates every loss before reading
  any gradient, so both read the accumulated sum and the cosine is always 1; and its
  ``cos <= 0`` branch assigns the solver output to the loop variable, leaving weights ``(0, 0)``.
* Degenerate cases (a zero gradient) use the exact min-norm weight clipped to ``[0, 1]``; the
  official solver returns 0.999 / 0.001 there. For ``cos <= 0`` and non-zero gradients the
  official ``c`` is always strictly inside ``(0, 1)`` and equals ours.
* When the min-norm point is 0 (exactly opposed gradients, Pareto-stationary) the combined
  gradient is 0: ``||new||`` at rounding level (``<= 10 eps (||g_mm|| + ||g_u||)``) counts as 0.
  The official rescale divides by it (0/0, or rounding noise blown up to ``||g_mm + g_u||``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def min_norm_weight(g1: Tensor, g2: Tensor) -> Tensor:
    """Weight ``c`` in ``[0, 1]`` minimising ``||c g1 + (1 - c) g2||`` (0-d tensor)."""
    a, b = g1.reshape(-1).double(), g2.reshape(-1).double()
    diff = (a - b).dot(a - b)
    if float(diff) == 0.0:
        return torch.tensor(0.5, dtype=torch.float64)
    return ((b.dot(b) - a.dot(b)) / diff).clamp(0.0, 1.0)


def mmpareto_weights(g_mm: Tensor, g_uni: Tensor) -> Tensor:
    """``[2]`` weights ``(w_mm, w_uni)`` summing to 1: ``(1/2, 1/2)`` if aligned, else min-norm.

    Args:
        g_mm: flattened encoder gradient of the multimodal loss ``[P]`` (any shape).
        g_uni: the same encoder's gradient of its unimodal loss, same shape.
    """
    a, b = g_mm.reshape(-1).double(), g_uni.reshape(-1).double()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=0)
    if float(cos) > 0:
        return torch.tensor([0.5, 0.5], dtype=torch.float64)
    c = min_norm_weight(a, b)
    return torch.stack([c, 1 - c])


def mmpareto_combine(g_mm: Tensor, g_uni: Tensor, weights: Tensor, gamma: float = 1.5) -> Tensor:
    """Combined gradient of one parameter tensor with the official magnitude rescale.

    ``new = 2 (w_mm g_mm + w_uni g_uni)``; returns ``gamma * new * max(1, ||g_mm + g_uni|| / ||new||)``.
    """
    w = weights.to(g_mm.dtype)
    new = 2 * (w[0] * g_mm + w[1] * g_uni)
    new_norm = new.norm()
    scale = float(g_mm.norm() + g_uni.norm())
    if float(new_norm) <= 10 * torch.finfo(new.dtype).eps * scale:  # Pareto-stationary: d = 0
        return torch.zeros_like(new)
    factor = ((g_mm + g_uni).norm() / new_norm).clamp(min=1.0)
    return gamma * factor * new
