"""ReconBoost: alternating boosting with a reconcilement term against the other learners.

Paper: Hua, Xu, Bao, Yang, Huang, "ReconBoost: Boosting Can Achieve Modality Reconcilement",
ICML 2024. Code read: huacong/ReconBoost ``train.py`` ``main`` (stage loop, ``boosting_loss``,
``ga_loss``), ``models/dynamic_net.py`` ``DynamicNet.forward``; ``schedule.py``.

Official arithmetic: stages alternate modalities (fixed order). In a stage the picked
learner ``f_k`` trains for ``epochs_per_stage`` (4) epochs on, per sample,
``-w1 * mean_c(y_c log p_k,c) + w2 * mean_c(y_c q_c log p_k,c)`` where ``y`` is one-hot,
``p_k = softmax(f_k)`` and ``q = softmax(boost_rate * sum_{j != k} f_j)`` (detached ensemble
of the *other* learners; ``boost_rate`` 1.0, a learnable scalar of the ensemble). Since
``y`` is one-hot this is ``-(w1 - w2 q_y) log p_k,y / C``. Defaults ``w1=5, w2=1``
(CREMA-D; AVE ``w1=4``), then ``correct_epoch`` (4) epochs of plain CE on the whole ensemble
(``boost_rate * sum_j f_j``). The "GA" term ``alpha * MSE(softmax(f_k).detach(),
softmax(f_prev).detach())`` (``alpha=0.5``) has both inputs detached, so it contributes no
gradient; we omit it.

All learners share one classification head in the official code (``common_space=True``:
``model.fc = net_ensemble.head``).

The paper presents the ``w2`` term as the reconcilement regulariser (the learner is pushed
away from what the other learners already predict well); we implement the code's form.
Deliberate differences: none in the loss; the ``1/C`` of the official ``mean(-1)`` is kept
(``class_mean=True``) so learning rates transfer. ``M >= 2`` is native (the ensemble sums the
other learners).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmcoop.errors import ConfigError


def reconboost_ensemble_logits(learner_logits: Tensor, exclude: int | None, boost_rate: float = 1.0) -> Tensor:
    """``boost_rate * sum_{j != exclude} learner_logits[j]`` as ``[B, C]`` from ``[M, B, C]``."""
    m_tot = learner_logits.shape[0]
    keep = torch.ones(m_tot, dtype=torch.bool, device=learner_logits.device)
    if exclude is not None:
        keep[exclude] = False
    return boost_rate * learner_logits[keep].sum(dim=0)


def reconboost_loss(
    logits: Tensor,
    others_logits: Tensor | None,
    labels: Tensor,
    weight1: float = 5.0,
    weight2: float = 1.0,
    class_mean: bool = True,
) -> Tensor:
    """Per-batch mean boosting loss of the learner being trained (scalar).

    Args:
        logits: ``[B, C]`` logits of the current learner.
        others_logits: ``[B, C]`` ensemble logits of the other learners (detached here), or None
            at the very first stage without pre-trained learners: the official code then softmaxes
            a ``[B, 1]`` constant, so ``q_y = 1`` and the weight is ``w1 - w2``; we do the same.
        labels: int64 ``[B]``.
        weight1, weight2: the fit and reconcilement weights.
        class_mean: divide by ``C`` as the official ``mean(-1)`` does.
    """
    if weight1 < 0 or weight2 < 0:
        raise ConfigError(f"ReconBoost weights must be >= 0, got weight1={weight1}, weight2={weight2}")
    logp_y = logits.log_softmax(-1).gather(-1, labels.long().view(-1, 1)).squeeze(-1)  # [B]
    if others_logits is None:
        q_y = torch.ones_like(logp_y)
    else:
        q = others_logits.detach().softmax(-1)
        q_y = q.gather(-1, labels.long().view(-1, 1)).squeeze(-1)
    per_sample = -(weight1 - weight2 * q_y) * logp_y
    if class_mean:
        per_sample = per_sample / logits.shape[-1]
    return per_sample.mean()
