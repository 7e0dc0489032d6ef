"""OPM: on-the-fly prediction modulation (drop the dominant modality's feature).

Paper: Wei, Hu, Du, Wen, "On-the-fly Modulation for Balanced Multimodal Learning", TPAMI 2024.
Code read: GeWu-Lab/BML_TPAMI2024 ``code/models/Classifier.py`` (``calcu_q``,
``Modality_drop.execute_drop``, ``custom_autograd``) and ``code/main.py`` ``train``; also
GeWu-Lab/BalanceBenchmark ``balancemm/trainer/OPM_trainer.py``. The paper's gradient
counterpart (OGM, TPAMI) is `ogm_ge_coefficients` with the TPAMI defaults.

Official arithmetic (M = 2): ``r_m = tanh(relu(s_m / s_other - 1))``;
``q_m = q_base * (1 + lam * r_m)`` if ``r_m > 0`` else ``0``, clipped to ``[0, 1]``. With
probability ``p_exe`` per batch a Bernoulli(``1 - q_m``) keep-mask ``[B, M]`` is drawn; kept
features are divided by ``1 - theta`` with ``theta = sum_m d_m q_m / sum_m d_m`` (``d_m`` the
feature widths); samples with every modality dropped are removed from the loss. Defaults
(script ``train_opm.sh``): ``q_base=0.5, lam=0.5, p_exe=0.7``; no drop in warm-up epochs
``<= 5``. BalanceBenchmark: ``alpha(=lam)=0.5, q_base=0.4, p_exe=0.7``.

Deliberate differences: ``M > 2`` uses the pairwise-averaged one-vs-others ratio
(BalanceBenchmark divides by the *sum* of the other scores, so ``r > 0`` almost never
happens); ``eps = 1e-5`` in the ratio; ``1 - theta`` is floored at ``eps`` (the TPAMI code
divides by zero when every ``q = 1``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmcoop.errors import ConfigError
from mmcoop.methods.functional._common import one_vs_others_ratio


def opm_drop_probabilities(scores: Tensor, q_base: float = 0.5, lam: float = 0.5, eps: float = 1e-5) -> Tensor:
    """Per-modality feature-drop probabilities ``q_m`` (``0`` unless the modality dominates).

    Args:
        scores: ``[M]`` true-class score sums of the unimodal logits.
        q_base, lam: base probability and its growth with the discrepancy.

    Returns:
        ``[M]`` probabilities in ``[0, 1]``.
    """
    if not 0.0 <= q_base <= 1.0 or lam < 0:
        raise ConfigError(f"OPM options need 0 <= q_base <= 1 and lam >= 0, got {q_base}, {lam}")
    r = torch.tanh(torch.relu(one_vs_others_ratio(scores.detach().float(), eps) - 1.0))
    q = torch.where(r > 0, q_base * (1.0 + lam * r), torch.zeros_like(r))
    return q.clamp(0.0, 1.0)


def opm_keep_mask(q: Tensor, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
    """Bernoulli keep-mask ``[B, M]`` (1 = keep) with ``P(keep m) = 1 - q_m``."""
    u = torch.rand((batch_size, q.shape[0]), generator=generator, device=q.device)
    return (u >= q.view(1, -1)).to(q.dtype)


def opm_drop_features(
    features: list[Tensor], keep: Tensor, q: Tensor, eps: float = 1e-5
) -> tuple[list[Tensor], Tensor]:
    """Apply a keep-mask with the official rescaling; return features and the kept-sample flag.

    Args:
        features: ``M`` tensors ``[B, D_m]``.
        keep: ``[B, M]`` 0/1 mask from `opm_keep_mask`.
        q: ``[M]`` drop probabilities (for ``theta``).

    Returns:
        ``(masked, update)``: ``masked[m] = features[m] * keep[:, m] / (1 - theta)`` for all
            ``B`` rows, and ``update`` bool ``[B]`` (at least one modality kept); the caller
            computes the loss on ``update`` rows only.
    """
    dims = torch.tensor([f.shape[1] for f in features], dtype=q.dtype, device=q.device)
    theta = (dims * q).sum() / dims.sum()
    scale = 1.0 / (1.0 - theta).clamp(min=eps)
    masked = [f * keep[:, m : m + 1].to(f.dtype) * scale.to(f.dtype) for m, f in enumerate(features)]
    return masked, keep.sum(dim=1) > 0
