"""Data Remixing: decouple each sample to the modality that finds it hardest, reassemble by batch.

Paper: Ma, Chen, Deng, "Improving Multimodal Learning Balance and Sufficiency through Data
Remixing", ICML 2025. Code read: MatthewMaxy/Remix_ICML2025 at 80898aa, ``train.py``
(``kl_divergence``, ``remix``, ``train_epoch``, ``special_train_epoch``, parser defaults
``warmup = 10``, ``alpha = beta = 0.5``, ``gamma1 = gamma2 = 1``) and ``models/models.py``
(``AVClassifier.forward``: the other modality's features zeroed for a unimodal batch).

Official arithmetic: after the warm-up, before every epoch, each training sample's unimodal
predictions ``p_m`` (softmax of each modality's own head, eval mode) give
``KL(p_m || U) = sum_c p_mc log2(p_mc C)`` (``p`` clipped to ``[1e-9, 1]``); the sample is
assigned to the modality with the *smallest* divergence (the least confident one: its hard
sample), ties to the later modality (``KL_audio < KL_video`` picks audio, else video).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def remix_divergence(probs: Tensor) -> Tensor:
    """``KL(p || uniform)`` in bits of each prediction: ``[..., C]`` probabilities -> ``[...]``."""
    c = probs.shape[-1]
    p = probs.double().clamp(1e-9, 1.0)
    return (p * (torch.log2(p) + math.log2(c))).sum(-1)


def remix_assign(divergence: Tensor) -> Tensor:
    """The modality each sample trains ``[N]`` (int64) from divergences ``[M, N]``: the smallest,
    ties to the later modality (as the official ``if KL_audio < KL_video``)."""
    m = divergence.shape[0]
    flipped = divergence.flip(0)  # argmin returns the first minimum: flip so that ties go to the later
    return (m - 1) - flipped.argmin(dim=0)
