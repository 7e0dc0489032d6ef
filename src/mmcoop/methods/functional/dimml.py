"""DI-MML: detached and interactive multimodal learning.

Paper: Fan, Xu, Wu, Zhang, Hu, "Detached and Interactive Multimodal Learning", ACM MM 2024.
Code read: fanyunfeng-bit/DI-MML at 83b9b7a, ``main_CFT.py`` (``train_epoch``,
``get_indices``), ``loss/contrast_loss.py`` (``SupConLoss``), ``main_CFT_stage2.py`` and
the README commands (CREMA-D: ``temperature = 50``, ``weight = 1``; the contrastive term from
epoch 20, the dimensions chosen once at that epoch).

Official arithmetic:

* modality-specific dimensions (``get_indices``, once): class centroids ``mu_{c, m}`` of each
  modality's training features; a sample is a *hit* in dimension ``d`` of modality ``m`` when
  its nearest centroid in that single dimension, ``argmin_c |z_{m, d} - mu_{c, m, d}|``, is its
  own class; ``top_m`` = dimensions whose hit rate exceeds the mean hit rate over dimensions;
  the audio-only set is ``top_a - top_v``, the visual-only set ``top_v - top_a``.
* the dimension-decoupled unidirectional contrastive loss (``SupConLoss``): on the audio-only
  dimensions ``S_a`` the visual features learn from the (detached) audio ones,
  ``-1/B sum_i log( exp(<v_i, a_i>/T) / sum_j exp(<v_i, a_j>/T) )`` restricted to ``S_a``, and
  symmetrically on ``S_v``; the two are added.

``M > 2`` (ours): ``S_m = top_m`` minus the union of the other modalities' tops, and on
``S_m`` every other modality learns from modality ``m`` (the loss sums over the ordered pairs);
for ``M = 2`` exactly the official sets and loss.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def dimml_dimension_hits(feats: Tensor, labels: Tensor, centroids: Tensor) -> Tensor:
    """Hits per modality and dimension ``[M, d]`` of a batch: how many samples' nearest class
    centroid *in that dimension alone* is their own class.

    Args:
        feats: ``[B, M, d]`` features.
        labels: int64 ``[B]``.
        centroids: ``[C, M, d]`` class means of the features.
    """
    dist = (feats.unsqueeze(1) - centroids.unsqueeze(0)).abs()  # [B, C, M, d]
    nearest = dist.argmin(dim=1)  # [B, M, d]
    return (nearest == labels.view(-1, 1, 1)).double().sum(0)


def dimml_specific_dims(hit_rates: Tensor) -> Tensor:
    """Modality-specific dimensions ``[M, d]`` (bool) from hit rates ``[M, d]``: above the
    modality's mean rate, and above it in no other modality."""
    top = hit_rates > hit_rates.mean(dim=1, keepdim=True)
    others = top.sum(0, keepdim=True) - top.long()
    return top & (others == 0)


def dimml_duc_loss(feats: Tensor, specific: Tensor, temperature: float) -> Tensor:
    """Dimension-decoupled unidirectional contrastive loss (a 0-d tensor).

    ``sum_m sum_{k != m} CE( z_k[:, S_m] z_m[:, S_m]^T.detach() / T, diag )``: on modality
    ``m``'s specific dimensions every other modality is pulled to modality ``m``'s (detached)
    features of the same sample, against the other samples of the batch.

    Args:
        feats: ``[B, M, d]`` features (with gradients).
        specific: bool ``[M, d]`` from `dimml_specific_dims`.
        temperature: ``T`` (official 50 on CREMA-D).
    """
    b, m, _ = feats.shape
    target = torch.arange(b, device=feats.device)
    total = feats.new_zeros(())
    for src in range(m):
        dims = specific[src].nonzero().squeeze(1)
        if dims.numel() == 0:
            continue
        anchor = feats[:, src, dims].detach()
        for dst in range(m):
            if dst != src:
                sim = feats[:, dst, dims] @ anchor.T / temperature  # [B, B]
                total = total + F.cross_entropy(sim.float(), target)
    return total
