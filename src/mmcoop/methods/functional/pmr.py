"""PMR: prototypical modal rebalance.

Paper: Fan, Xu, Wang, Wang, Ding, "PMR: Prototypical Modal Rebalance for Multimodal
Learning", CVPR 2023. Code read: fanyunfeng-bit/Modal-Imbalance-PMR ``main_Prototype_grad.py``
(``calculate_prototype``, ``EU_dist``, ``train_epoch`` branch ``modulation == 'Proto'``);
GeWu-Lab/BalanceBenchmark ``balancemm/trainer/PMR_trainer.py``.

Official arithmetic: before each epoch, class prototypes ``c_k`` = mean encoder feature of class
``k`` over the first 10% of training batches (eval mode), then
``c = (1 - mu) * c_new + mu * c_old`` after epoch 0 (``mu = momentum_coef``, default 0.2;
BalanceBenchmark 0.5). Prototype logits ``-||z - c_k||_2``; prototype scores
``s_m = sum_i softmax(-d)_i[y_i]``; with ``rho = s_a / s_v``: ``rho > 1`` -> weight ``alpha`` on
the *visual* prototype CE, ``rho < 1`` -> on the audio one, tie -> none; loss
``CE(fused) + sum_m w_m * CE(proto_m)``. Defaults: ``alpha=1.0`` (BalanceBenchmark 0.6),
modulation epochs ``0..100`` of 150.

Deliberate differences:

* ``M > 2``: modality ``m`` gets ``alpha`` iff ``s_m < mean_{j != m} s_j`` (for ``M = 2`` exactly
  the official rule, ties included). BalanceBenchmark's ``M > 2`` branch drops the prototype
  loss and applies OGM-like scaling *minus* Gaussian noise instead.
* A class absent from the prototype batches keeps its previous prototype (zeros if none); the
  official code divides by a zero count (nan prototypes).
* The paper also describes a prototype entropy regulariser for the dominant modality in early
  epochs; the official code has none and neither do we.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mmcoop.errors import ConfigError
from mmcoop.methods.functional._common import check_stacked_logits


def pmr_update_prototypes(
    features: Tensor, labels: Tensor, num_classes: int, previous: Tensor | None = None, momentum: float = 0.2
) -> Tensor:
    """Class-mean prototypes ``[C, D]`` of ``features [N, D]``, blended with ``previous``.

    Returns ``(1 - momentum) * mean + momentum * previous`` (just ``mean`` if ``previous`` is
    None); empty classes take ``previous`` (or zeros).
    """
    if not 0.0 <= momentum <= 1.0:
        raise ConfigError(f"PMR option 'momentum' must be in [0, 1], got {momentum}")
    f = features.detach().float()
    sums = f.new_zeros(num_classes, f.shape[1]).index_add_(0, labels.long(), f)
    counts = torch.bincount(labels.long(), minlength=num_classes).to(f.dtype).unsqueeze(1)
    base = previous.detach().float() if previous is not None else f.new_zeros(num_classes, f.shape[1])
    mean = torch.where(counts > 0, sums / counts.clamp(min=1), base)
    return mean if previous is None else (1 - momentum) * mean + momentum * base


def pmr_prototype_logits(features: Tensor, prototypes: Tensor) -> Tensor:
    """Prototype logits ``-||z_i - c_k||_2`` as ``[B, C]`` (differentiable in ``features``)."""
    return -torch.cdist(features.unsqueeze(0), prototypes.to(features.dtype).unsqueeze(0)).squeeze(0)


def pmr_loss_weights(proto_scores: Tensor, alpha: float = 1.0) -> Tensor:
    """Prototype-CE weights ``[M]``: ``alpha`` for modalities below their others' mean score."""
    if alpha < 0:
        raise ConfigError(f"PMR option 'alpha' must be >= 0, got {alpha}")
    s = proto_scores.detach().float()
    m = s.shape[0]
    if m < 2:
        raise ValueError("PMR needs at least two modalities")
    others = (s.sum() - s) / (m - 1)
    return torch.where(s < others, torch.full_like(s, alpha), torch.zeros_like(s))


def pmr_loss(fused_logits: Tensor, proto_logits: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
    """``CE(fused) + sum_m weights[m] * CE(proto_logits[m])``; ``proto_logits`` is ``[M, B, C]``."""
    check_stacked_logits(proto_logits, labels)
    loss = F.cross_entropy(fused_logits, labels)
    for m in range(proto_logits.shape[0]):
        if float(weights[m]) != 0.0:
            loss = loss + weights[m] * F.cross_entropy(proto_logits[m], labels)
    return loss
