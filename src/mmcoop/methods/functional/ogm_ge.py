"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement.

Paper: Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly Gradient
Modulation", CVPR 2022 (Eq. 8-10). Code read: GeWu-Lab/OGM-GE_CVPR2022 ``main.py``
``train_epoch``; the same arithmetic is in GeWu-Lab/BML_TPAMI2024 ``code/main.py`` ``train``
(OGM of "On-the-fly Modulation for Balanced Multimodal Learning", TPAMI 2024) and in
GeWu-Lab/BalanceBenchmark ``balancemm/trainer/OGM_trainer.py`` ``training_step``.

Official arithmetic: ``s_u = sum_i softmax(out_u)_i[y_i]`` from each modality's half of the
fusion head (``concat``: bias halved; ``sum``: the modality's own full bias in ``train_epoch``,
halved only in ``valid``), ``rho_u = s_u / s_other``; ``k_u = 1 - tanh(alpha * relu(rho_u))`` if
``rho_u > 1`` else ``1``; after ``loss.backward()`` each 4-D (conv) weight gradient of encoder
``u`` becomes ``g * k_u + N(0, std(g) + 1e-8)`` (GE), during epochs
``modulation_starts <= epoch <= modulation_ends``. Defaults: CVPR ``alpha`` required
(README: 0.1 VGGSound, 0.8 CREMA-D), window ``0..50``; TPAMI script ``alpha=0.8``, window
``0..60`` and no modulation in warm-up epochs ``<= 5``; BalanceBenchmark ``alpha=0.3``,
window ``10..80``.

Deliberate differences:

* ``M > 2``: one-vs-others ratio averaged pairwise (see `one_vs_others_ratio`).
  BalanceBenchmark's ``OGM_GE3`` divides only the *last* modality's ratio by the pair count
  (an indentation slip), and its ``OGM_GE`` for ``M = 3`` divides by the minimum score.
* ``eps = 1e-5`` in the ratio (CVPR code has none: a zero score gives inf / nan). On an exact
  tie the CVPR code modulates audio (its ``else`` branch); with ``eps`` a tie modulates no one.
* ``offset``: the official code uses ``tanh(alpha * rho)`` (jump from 1 to ``1 - tanh(alpha)``
  at ``rho = 1``); ``offset=1`` gives the continuous ``1 - tanh(alpha * relu(rho - 1))``.
  Default ``0`` (official).
* GE noise std for a one-element gradient is taken as 0 (``Tensor.std`` is nan there).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmcoop.errors import ConfigError
from mmcoop.methods.functional._common import one_vs_others_ratio


def ogm_ge_coefficients(scores: Tensor, alpha: float, offset: float = 0.0, eps: float = 1e-5) -> Tensor:
    """Gradient modulation coefficients ``k_m`` from per-modality scores.

    Args:
        scores: ``[M]`` modality scores (`true_class_scores` of the unimodal logits).
        alpha: modulation strength, ``>= 0``.
        offset: ``0`` = official ``tanh(alpha * rho)``; ``1`` = continuous variant.
        eps: ratio denominator guard.

    Returns:
        ``[M]`` coefficients in ``[0, 1]``; ``1`` for every modality with ratio ``<= 1``
            (always the weakest one).
    """
    if alpha < 0:
        raise ConfigError(f"OGM-GE option 'alpha' must be >= 0, got {alpha}")
    ratio = one_vs_others_ratio(scores.detach().float(), eps)
    coeff = 1.0 - torch.tanh(alpha * torch.relu(ratio - offset))
    return torch.where(ratio > 1, coeff.clamp(min=0.0), torch.ones_like(ratio))


def ogm_ge_modulate(
    grad: Tensor, coeff: float | Tensor, noise: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Return ``grad * coeff`` plus, if ``noise``, GE noise ``N(0, std(grad) + 1e-8)``.

    The noise is ``torch.randn(grad.shape, generator=generator) * (std(grad) + 1e-8)`` with
    the *unscaled* gradient's (unbiased) std, as in the official code.

    Args:
        grad: gradient of one parameter tensor, any shape.
        coeff: this modality's coefficient (float or 0-d tensor).
        noise: add the GE noise (``False`` = plain OGM).
        generator: optional RNG for the noise (on ``grad``'s device).
    """
    out = grad * coeff
    if not noise:
        return out
    std = grad.std() if grad.numel() > 1 else grad.new_zeros(())
    z = torch.randn(grad.shape, generator=generator, dtype=grad.dtype, device=grad.device)
    return out + z * (std + 1e-8)
