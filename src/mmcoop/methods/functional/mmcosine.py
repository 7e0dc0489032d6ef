"""MMCosine: per-modality cosine logits with a shared scale.

Paper: Xu, Wei, Hu, "MMCosine: Multi-Modal Cosine Loss Towards Balanced Audio-Visual
Fine-Grained Learning", ICASSP 2023. Code read: GeWu-Lab/MMCosine_ICASSP23 at 00ba0a9
``main_CD.py`` ``train_epoch`` (``--mmcosine True``, ``--scaling`` default 10, README 10) and
GeWu-Lab/BalanceBenchmark at 4c1482f ``balancemm/trainer/MMCosine_trainer.py``
``training_step`` (``configs/trainer_config.yaml``: ``scaling: 15``).

Official arithmetic: modality ``m``'s logits are ``s * normalize(h_m) @ normalize(W_m^T, dim=0)``,
i.e. the cosine between the feature ``h_m`` and each class's row of modality ``m``'s slice of
the fusion layer's weight (columns of ``fc_out.weight`` that multiply ``h_m``), scaled by
``s``; no bias. The fused logits are the sum over modalities; training is cross-entropy on it.

Deliberate differences: none in the arithmetic. Features narrower than the stacked width
``D`` are zero-padded (`mmcoop.models.protocol`); the padding columns of the weight slice
are left out of its norm (``widths``), so the cosine is the official one on the real columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F


def mmcosine_logits(feats: Tensor, weights: Tensor, scale: float, widths: Sequence[int] | None = None) -> Tensor:
    """Scaled cosine logits of every modality.

    Args:
        feats: ``[B, M, D]`` features (modality ``m`` in ``[:, m, :widths[m]]``, zeros after).
        weights: ``[M, C, D]`` each modality's slice of the linear fusion head's weight.
        scale: the scale ``s`` (official 10; BalanceBenchmark 15).
        widths: each modality's feature width ``d_m`` (``None``: all ``D``).

    Returns:
        ``[M, B, C]`` logits ``s * cos(h_m, W_m[c])``; their sum over ``M`` is the fused logits.
    """
    m, _, d = weights.shape
    if widths is not None:
        cols = torch.arange(d, device=weights.device).view(1, 1, d)
        keep = cols < torch.as_tensor(list(widths), device=weights.device).view(m, 1, 1)
        weights = weights * keep.to(weights.dtype)
    h = F.normalize(feats, dim=-1)  # [B, M, D]
    w = F.normalize(weights, dim=-1)  # [M, C, D]: each class row of each slice
    return scale * torch.einsum("bmd,mcd->mbc", h, w)
