"""CML: calibrating multimodal learning -- confidence must not rise when a modality is removed.

Paper: Ma, Zhang, Zhang, Wu, Fu, Zhou, Hu, "Calibrating Multimodal Learning", ICML 2023.
Code read: GeWu-Lab/BalanceBenchmark at 4c1482f ``balancemm/trainer/CML_trainer.py``
(``conf_loss``, ``CMLTrainer.training_step``, ``train_loop``; ``configs/trainer_config.yaml``:
``lam: 0.1``).

Official arithmetic (BalanceBenchmark): once per epoch the modalities are put in a random
order; per batch the logits are reduced along it -- full, without the first modality, without
the first two, ... (``M - 1`` reductions, the last keeps one modality) -- each reduction the
previous logits minus the removed modality's share of the linear head (its features' product,
the bias kept). Confidence is the maximum softmax probability. Loss
``(CE(full) + sum_i CE(reduced_i)) / M + lam * sum_i max(0, sum_b (conf_i[b] - conf_{i-1}[b]))``:
the penalty of each step is the hinge of the *batch sum* of confidence increases.

Deliberate differences: none in the arithmetic by default; ``per_sample=True`` puts the hinge
on each sample (``sum_b max(0, conf_i[b] - conf_{i-1}[b])``, the paper's per-sample
regulariser) instead of on the batch sum.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def max_confidence(logits: Tensor) -> Tensor:
    """Confidence of each prediction: the largest softmax probability, ``[..., C]`` -> ``[...]``."""
    return logits.softmax(dim=-1).max(dim=-1).values


def cml_confidence_rises(chain: Tensor) -> Tensor:
    """How much each removal raised each sample's confidence.

    Args:
        chain: ``[K, B, C]`` logits: the full model first, then each reduction in turn.

    Returns:
        ``[K - 1, B]``: ``conf(chain[k + 1]) - conf(chain[k])``.
    """
    conf = max_confidence(chain)  # [K, B]
    return conf[1:] - conf[:-1]


def cml_penalty(rises: Tensor, per_sample: bool = False, gate: Tensor | None = None) -> Tensor:
    """CML's confidence penalty, summed over the reduction steps.

    Args:
        rises: ``[K - 1, B]`` from `cml_confidence_rises`.
        per_sample: hinge each sample (``sum_b relu(rise)``) instead of each step's batch sum
            (``relu(sum_b rise)``, BalanceBenchmark's ``conf_loss``).
        gate: bool ``[K - 1]``, for the batch-sum hinge under DDP: whether each step's sum over
            the *whole distributed* batch is positive (the hinge is then ``gate * sum_b rise``);
            ``None``: decided from ``rises`` itself.

    Returns:
        A scalar ``>= 0`` (one process).
    """
    if per_sample:
        return torch.relu(rises).sum()
    sums = rises.sum(dim=-1)
    if gate is None:
        return torch.relu(sums).sum()
    return (sums * gate.to(sums.dtype)).sum()


def cml_loss(chain: Tensor, labels: Tensor, lam: float, per_sample: bool = False, gate: Tensor | None = None) -> Tensor:
    """CML's loss over a chain of ever smaller modality sets.

    Args:
        chain: ``[K, B, C]`` logits: the full model first, then each reduction in turn
            (``K = M`` for ``M`` modalities).
        labels: int64 ``[B]``.
        lam: weight of the confidence penalty (BalanceBenchmark 0.1).
        per_sample, gate: see `cml_penalty`.

    Returns:
        ``mean_k CE(chain[k]) + lam * penalty``.
    """
    k, b, c = chain.shape
    ce = F.cross_entropy(chain.reshape(k * b, c), labels.repeat(k))  # the mean of the K means (equal sizes)
    return ce + lam * cml_penalty(cml_confidence_rises(chain), per_sample, gate)
