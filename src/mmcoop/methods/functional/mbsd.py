"""MBSD: unimodal cross-entropies plus per-sample-weighted distillation between modality pairs.

Paper: after Liu et al., WSDM 2023, as GeWu-Lab/BalanceBenchmark implements it (the method's
name there, "MBSD"). Code read: GeWu-Lab/BalanceBenchmark at 4c1482f
``balancemm/trainer/MBSD_trainer.py`` ``MBSDTrainer.training_step`` (unimodal logits from
``balancemm/models/avclassify_model.py`` ``unimodality_calculate``: ``W_m h_m + b / M``).

BalanceBenchmark's arithmetic, for a pair of modalities ``(j, k)`` and sample ``i`` with true
class ``y``: ``p_s = max(p_j[y], p_k[y])``, ``p_w = min(...)`` (true-class softmax probabilities);
weight ``w_i = p_s - p_w`` if either modality predicts ``y`` (argmax), else ``0``;
``RS_i = mean_c (u_j - u_k)^2`` on the logits; ``KL_i = F.kl_div(p_s, p_w) = p_w (log p_w - p_s)``
(the scalar probability ``p_s`` passed where ``kl_div`` expects a log-probability);
terms ``sum_i w_i RS_i / B`` and ``sum_i w_i KL_i / B``. Nothing is detached: the weight, ``p_s``
and ``p_w`` all carry gradients. With three modalities both terms are averaged over the three pairs.

Deliberate differences:

* ``M > 2``: every pair, both terms averaged over the ``M (M - 1) / 2`` pairs (BalanceBenchmark's
  3-modality branch); the consistency term is on the logits for every ``M`` (BalanceBenchmark's
  3-modality branch switches to probabilities).
* ``kl="distribution"`` (an option, not the default): the KL of the whole class distributions,
  ``KL(p_weak || p_strong) = sum_c p_w,c (log p_w,c - log p_s,c)``, with ``strong`` the modality of
  the pair with the larger true-class probability: what BalanceBenchmark's ``kl_div(p_s, p_w)`` reads
  as once the input is a log-distribution. The default reproduces BalanceBenchmark.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmcoop.methods.functional._common import check_stacked_logits

KL_FORMS = ("balancebenchmark", "distribution")


def mbsd_terms(uni: Tensor, labels: Tensor, kl: str = "balancebenchmark") -> tuple[Tensor, Tensor]:
    """MBSD's distillation and logit-consistency terms, averaged over modality pairs.

    Args:
        uni: ``[M, B, C]`` each modality's logits (with gradients).
        labels: int64 ``[B]``.
        kl: ``balancebenchmark`` (its scalar ``kl_div(p_s, p_w)``) or ``distribution``.

    Returns:
        ``(kl_term, rs_term)``: scalars, each ``mean_pairs sum_i w_i * term_i / B``.
    """
    check_stacked_logits(uni, labels)
    if kl not in KL_FORMS:
        raise ValueError(f"kl must be one of {KL_FORMS}; got {kl!r}")
    m, b, _ = uni.shape
    j, k = torch.triu_indices(m, m, offset=1, device=uni.device)  # the pairs, [P] each
    prob = uni.softmax(dim=-1)  # [M, B, C]
    true = prob.gather(-1, labels.view(1, b, 1).expand(m, b, 1)).squeeze(-1)  # [M, B]
    right = uni.argmax(dim=-1) == labels.view(1, b)  # [M, B]
    strong = torch.maximum(true[j], true[k])  # [P, B]
    weak = torch.minimum(true[j], true[k])
    w = torch.where(right[j] | right[k], strong - weak, torch.zeros_like(strong))
    rs = (uni[j] - uni[k]).pow(2).mean(dim=-1)  # [P, B]
    if kl == "balancebenchmark":
        div = weak * (weak.log() - strong)
    else:
        j_strong = (true[j] >= true[k]).unsqueeze(-1)  # [P, B, 1]
        p_s = torch.where(j_strong, prob[j], prob[k])
        p_w = torch.where(j_strong, prob[k], prob[j])
        div = (p_w * (p_w.log() - p_s.log())).sum(dim=-1)
    return (w * div).sum(dim=-1).div(b).mean(), (w * rs).sum(dim=-1).div(b).mean()
