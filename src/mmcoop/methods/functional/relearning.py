"""Diagnosing & Re-learning: learning state by cluster purity, soft re-initialisation.

Paper: Wei, Li, Hu, "Diagnosing and Re-learning for Balanced Multimodal Learning", ECCV 2024.
Code read: GeWu-Lab/Diagnosing_Relearning_ECCV2024 ``code/ours.py`` (``purity_score``,
``reinit_score``, ``reinit``, ``main``); GeWu-Lab/BalanceBenchmark
``balancemm/trainer/ReLearning_trainer.py`` (defaults).

Official arithmetic: every ``reinit_epoch`` epochs (script 20, BalanceBenchmark 15; epoch > 0),
at most ``reinit_num`` times (3; BalanceBenchmark 2): each encoder's features on the train
and the validation set are min-max scaled to ``[-1, 1]`` per feature, clustered by k-means
with ``k = n_classes`` (``sklearn.cluster.KMeans(random_state=0)``), and scored by purity
(each cluster votes its majority label). ``w_u = tanh(move_lambda * |purity_train -
purity_val|)`` (``move_lambda = 3``); every encoder parameter becomes
``w_u * theta_init + (1 - w_u) * theta_now`` (``theta_init`` = the weights at the start).

Deliberate differences: k-means is a small seeded torch implementation (k-means++ start,
Lloyd iterations, best of ``n_init`` runs by inertia), so cluster labels are not
bit-identical to scikit-learn's; purity is invariant to label permutation, so only a
different local optimum can change the score.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mmcoop.errors import ConfigError


def minmax_scale(x: Tensor, low: float = -1.0, high: float = 1.0) -> Tensor:
    """Per-column min-max scaling of ``[N, D]`` to ``[low, high]``; constant columns -> ``low``."""
    mn, mx = x.min(dim=0).values, x.max(dim=0).values
    span = torch.where(mx > mn, mx - mn, torch.ones_like(mx))
    return low + (x - mn) / span * (high - low)


def kmeans(x: Tensor, k: int, iters: int = 100, n_init: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """Cluster labels ``[N]`` of ``x [N, D]`` into ``k`` clusters (seeded, best inertia)."""
    x = x.double()
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= N, got k={k}, N={n}")
    best, best_inertia = None, math.inf
    for _ in range(n_init):
        centers = x[torch.randint(n, (1,), generator=generator)]
        for _c in range(1, k):  # k-means++ seeding
            d2 = torch.cdist(x, centers).min(dim=1).values ** 2
            probs = d2 / d2.sum() if float(d2.sum()) > 0 else torch.full_like(d2, 1.0 / n)
            centers = torch.cat([centers, x[torch.multinomial(probs, 1, generator=generator)]])
        for _it in range(iters):
            labels = torch.cdist(x, centers).argmin(dim=1)
            sums = torch.zeros_like(centers).index_add_(0, labels, x)
            counts = torch.bincount(labels, minlength=k).unsqueeze(1).to(x.dtype)
            new = torch.where(counts > 0, sums / counts.clamp(min=1), centers)
            if torch.equal(new, centers):
                break
            centers = new
        labels = torch.cdist(x, centers).argmin(dim=1)
        inertia = float(((x - centers[labels]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    assert best is not None
    return best


def purity(labels: Tensor, clusters: Tensor) -> float:
    """``(1/N) sum_clusters max_class |cluster ∩ class|`` for int ``[N]`` label/cluster ids."""
    lab, clu = labels.long(), clusters.long()
    table = torch.zeros(int(clu.max()) + 1, int(lab.max()) + 1, dtype=torch.long)
    table.index_put_((clu, lab), torch.ones_like(lab), accumulate=True)
    return float(table.max(dim=1).values.sum()) / lab.numel()


def learning_state_purity(
    features: Tensor, labels: Tensor, num_classes: int, generator: torch.Generator | None = None
) -> float:
    """Purity of k-means (``k = num_classes``) clusters of min-max-scaled ``features [N, D]``."""
    return purity(labels, kmeans(minmax_scale(features.detach().double()), num_classes, generator=generator))


def relearning_strength(purity_train: float, purity_val: float, move_lambda: float = 3.0) -> float:
    """Re-initialisation strength ``tanh(move_lambda * |purity_train - purity_val|)`` in ``[0, 1)``."""
    if move_lambda < 0:
        raise ConfigError(f"Re-learning option 'move_lambda' must be >= 0, got {move_lambda}")
    return math.tanh(move_lambda * abs(purity_train - purity_val))


def relearn_blend(initial: Tensor, current: Tensor, strength: float) -> Tensor:
    """Soft re-initialisation ``strength * initial + (1 - strength) * current``."""
    return strength * initial + (1.0 - strength) * current
