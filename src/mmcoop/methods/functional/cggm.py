"""CGGM: classifier-guided gradient modulation.

Paper: Guo, Jin, Chen, Zhao, "Classifier-guided Gradient Modulation for Enhanced
Multimodal Learning", NeurIPS 2024. Code read: zrguo/CGGM ``src/msatrain.py`` and
``src/foodtrain.py`` ``train_model.train``, ``src/eval_metrics.py`` ``cal_cos``,
``models/msamodel.py`` ``ClassifierGuided.cal_coeff``; ``run/*_run.py`` (defaults).

Official arithmetic, per batch: a separate unimodal classifier per modality is trained on the
*detached* encoder features; its batch accuracy ``a_m`` is compared with the previous batch's
``a'_m``: ``d_m = a_m - a'_m``; magnitude coefficients ``B_m = (sum_j d_j - d_m) /
(sum_j d_j + 1e-8)``; every encoder-``m`` gradient is multiplied by ``B_m * rou``
(``rou = 1.3``). Direction term ``L_gm = (sum_m |B_m| - sum_m B_m cos_m) / M`` with
``cos_m = cos(flat W_cls_m, flat W_fusion)`` between the ``out_layer`` *weights* of
classifier ``m`` and of the fusion head (the code passes parameters, not their gradients);
``lamda * L_gm`` (``lamda = 0.2``) is added to the *next* batch's loss.

Deliberate difference: when ``|sum_j d_j| <= 1e-6`` (no net change in accuracy, e.g.
``d = (+0.1, -0.1)``) the official ``B_m = -d_m / 1e-8`` explodes (``+-1e7``); we return
``B = 1`` for all modalities (no modulation). Otherwise the formula is official, including its
large or negative ``B`` when ``|sum_j d_j|`` is small but real (e.g. ``1/B``), and the start
``a' = 0`` before the first batch. ``M >= 2`` is native.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def cggm_coefficients(acc_now: Tensor, acc_prev: Tensor, zero_tol: float = 1e-6) -> Tensor:
    """Magnitude coefficients ``B_m = (S - d_m) / (S + 1e-8)`` ``[M]``, ``S = sum_m d_m``.

    Args:
        acc_now, acc_prev: ``[M]`` batch accuracies of the unimodal classifiers now and at
            the previous batch.
        zero_tol: ``|S| <= zero_tol`` counts as no change (all ``B = 1``). Batch accuracies
            are multiples of ``1/B``, so a genuine non-zero ``S`` is far above ``1e-6``; below
            it only float rounding is left (``0.6 - 0.5 + 0.4 - 0.5`` is ``3e-8`` in float32).
    """
    d = acc_now.double() - acc_prev.double()
    total = d.sum()
    if float(total.abs()) <= zero_tol:
        return torch.ones_like(d)
    return (total - d) / (total + 1e-8)


def cggm_direction_loss(coeffs: Tensor, classifier_vecs: list[Tensor], fusion_vec: Tensor) -> Tensor:
    """``(sum |B_m| - sum B_m cos(classifier_vecs[m], fusion_vec)) / M`` (differentiable in the vecs).

    Args:
        coeffs: ``[M]`` coefficients (treated as constants).
        classifier_vecs: ``M`` tensors with the same number of elements as ``fusion_vec``
            (official: each unimodal classifier's ``out_layer.weight``).
        fusion_vec: the fusion head's ``out_layer.weight``.
    """
    b = coeffs.detach().to(fusion_vec.dtype)
    f = fusion_vec.reshape(-1)
    cos = torch.stack([F.cosine_similarity(v.reshape(-1), f, dim=0) for v in classifier_vecs])
    return (b.abs().sum() - (b * cos).sum()) / len(classifier_vecs)
