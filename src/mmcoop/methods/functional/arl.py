"""ARL: asymmetric representation learning (imbalanced learning for balanced multimodal learning).

Paper: Wei et al., "Improving Multimodal Learning via Imbalanced Learning", ICCV 2025.
Code read: shicaiwei123/ICCV2025-ARL at 358af4f, ``main_arl_variance.py`` ``train_epoch``
("determine the weight for ARL", the README's key line), ``models/backbone.py``
(``GradScale``: the gradient at each encoder's output becomes ``g + g * w_m``) and
``models/fusion_modules.py`` (``ConcatFusion_AUXI``: each modality's logits are the shared
fusion layer with the other modality's features zeroed); ``cramed_arl.sh``:
``gamma = 4``, ``T = 8``.

Official arithmetic per batch, from each modality's logits ``o_m [B, C]``:

* magnitude ``a_m = sum_c mean_b |o_m|``, normalised ``a_m / sum_j a_j``;
* confidence: mean prediction entropy ``H_m``, normalised ``H_m / sum_j H_j``, clamped
  below at 0.3, and ``u_m = (1 / H_m) / sum_j (1 / H_j)``;
* weights ``w = softmax(T [a_v u_a, a_a u_v])`` (audio first): a modality whose *partner*
  is large and that is itself confident gets the larger share of the asymmetric step.

``M > 2`` (ours): ``w = softmax_m(T * u_m * mean_{j != m} a_j)`` and the entropy clamp is
``0.6 / M`` (``0.3`` for ``M = 2``), so two modalities give exactly the official weights.
"""

from __future__ import annotations

import torch
from torch import Tensor


def arl_statistics(logits: Tensor) -> Tensor:
    """Per-modality batch means ``[2, M]``: row 0 ``sum_c mean_b |o_m|``, row 1 the mean entropy.

    Args:
        logits: ``[M, B, C]`` each modality's own logits.
    """
    if logits.dim() != 3:
        raise ValueError(f"expected stacked logits [M, B, C], got shape {tuple(logits.shape)}")
    x = logits.detach().double()
    magnitude = x.abs().mean(1).sum(-1)
    p = x.softmax(-1)
    entropy = (-p * torch.log(p + 1e-16)).sum(-1).mean(1)
    return torch.stack([magnitude, entropy])


def arl_weights(magnitude: Tensor, entropy: Tensor, temperature: float) -> Tensor:
    """ARL's asymmetric weights ``w [M]`` (sum 1) from the batch statistics of `arl_statistics`.

    Args:
        magnitude: ``[M]`` mean summed absolute logits.
        entropy: ``[M]`` mean prediction entropies.
        temperature: ``T`` (official 8).

    Returns:
        ``[M]`` softmax weights; the gradient of encoder ``m`` is multiplied by ``1 + w_m``.
    """
    m = magnitude.shape[0]
    if m < 2 or entropy.shape != magnitude.shape:
        raise ValueError(f"need [M] statistics with M >= 2, got {tuple(magnitude.shape)} and {tuple(entropy.shape)}")
    a = magnitude / magnitude.sum()
    h = (entropy / entropy.sum()).clamp(min=0.6 / m)
    u = (1.0 / h) / (1.0 / h).sum()
    partner = (a.sum() - a) / (m - 1)
    return torch.softmax(temperature * partner * u, dim=0)
