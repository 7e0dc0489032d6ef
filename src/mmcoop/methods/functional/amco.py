"""AMCo: adaptive masking of the dominant modality's class logits.

Paper: Zhou, Liang, Zhao, Zhang, "Adaptive Mask Co-Optimization for Modal Dependence in
Multimodal Learning", ICASSP 2024. Code read: GeWu-Lab/BalanceBenchmark at 4c1482f
``balancemm/trainer/AMCo_trainer.py`` (``AMCoTrainer.train_loop``, ``training_step``) and
``balancemm/models/avclassify_model.py`` (``BaseClassifierAMCoModel``: ``linear_star``,
``unimodality_calculate``); ``configs/trainer_config.yaml``: ``eps: 0.3``, ``sigma: 0.5``.

BalanceBenchmark's arithmetic: per batch, mask ratio ``p_t = sin(pi/2 * min(eps, l_t) / eps)``
with ``l_t`` starting at 0 each epoch and growing by ``epoch / 10`` after every batch; a mask
over the ``C`` classes with ``int(p_t * C)`` zeros at random positions; the logits of each
modality found dominant at the previous batch are multiplied by it. A modality is dominant
when its share of the softmax over the *concatenated* unimodal logits ``[B, M * C]``, summed
over its ``C`` columns and averaged over the batch, exceeds ``sigma``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def amco_mask_ratio(l_t: float, eps: float) -> float:
    """``p_t = sin(pi/2 * min(eps, l_t) / eps)``: 0 at ``l_t = 0``, 1 from ``l_t = eps`` on."""
    if eps <= 0:
        raise ValueError(f"eps must be > 0; got {eps}")
    return math.sin(math.pi / 2 * min(eps, max(l_t, 0.0)) / eps)


def amco_class_mask(
    num_classes: int, ratio: float, generator: torch.Generator | None = None, device: torch.device | None = None
) -> Tensor:
    """Float ``[C]`` of ones with ``int(ratio * C)`` zeros at random classes (BalanceBenchmark's
    ``np.pad`` + ``np.random.shuffle``, drawn from ``generator``)."""
    n = int(ratio * num_classes)
    mask = torch.ones(num_classes)
    mask[torch.randperm(num_classes, generator=generator)[:n]] = 0.0
    return mask.to(device) if device is not None else mask


def amco_softmax_shares(uni: Tensor) -> Tensor:
    """Each modality's softmax mass over the concatenated logits, summed over the batch.

    Args:
        uni: ``[M, B, C]`` per-modality logits.

    Returns:
        ``[M]``: ``sum_b sum_{c in block m} softmax(concat_m uni[m, b])``; divided by ``B`` it is
            BalanceBenchmark's ``sft_uni`` (the shares of a sample sum to 1 over ``M``).
    """
    m, b, c = uni.shape
    flat = uni.transpose(0, 1).reshape(b, m * c).softmax(dim=-1)  # [B, M * C]
    return flat.view(b, m, c).sum(dim=(0, 2))
