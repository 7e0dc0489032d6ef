"""Feature maps: a 2-D t-SNE of each modality's features (BalanceBenchmark ``balancemm/analysis/t_sne.py``
at GeWu-Lab/BalanceBenchmark 4c1482f draws the same per-modality maps).

scikit-learn's `sklearn.manifold.TSNE` (extra ``mmcoop[featuremaps]``): the maps are
drawn on a seeded subsample of at most a few thousand points, where its Barnes-Hut t-SNE takes
seconds, and scikit-learn is the one well-kept library both t-SNE packages installed here need
(openTSNE depends on it too); openTSNE's FFT acceleration pays off only for far larger maps.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from mmcoop.errors import ConfigError
from mmcoop.utils.optional import import_optional

#: Points per map at most (a seeded subsample beyond it).
MAX_POINTS = 2000


def subsample(n: int, max_points: int, seed: int) -> Tensor:
    """Sorted positions of a seeded random subset of ``min(n, max_points)`` of ``n`` rows."""
    if max_points < 1:
        raise ConfigError(f"feature maps need max_points >= 1, got {max_points}")
    if n <= max_points:
        return torch.arange(n)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=g)[:max_points].sort().values


def tsne_maps(
    features: Mapping[str, Tensor],
    labels: Tensor,
    index: Tensor,
    *,
    max_points: int = MAX_POINTS,
    seed: int = 0,
    perplexity: float = 30.0,
) -> dict[str, Any]:
    """A t-SNE map of each feature set on the same seeded subsample.

    Args:
        features: ``name -> [N, d]`` (each modality's features).
        labels: int64 ``[N]``.
        index: int64 ``[N]`` storage rows (to match the valuation table's ``index``).
        max_points: points per map at most.
        seed: seeds the subsample and t-SNE.
        perplexity: t-SNE perplexity (lowered to ``(n - 1) / 3`` for small maps).

    Returns:
        ``{"points", "seed", "perplexity", "index": [n], "label": [n], "coords": {name: [[x, y], ...]}}``
            (plain lists, JSON-ready).
    """
    manifold = import_optional("sklearn.manifold", "featuremaps", "the report's feature maps (t-SNE)")
    n = int(labels.shape[0])
    pick = subsample(n, max_points, seed)
    k = int(pick.shape[0])
    perp = float(min(perplexity, max(1.0, (k - 1) / 3.0)))
    coords: dict[str, list[list[float]]] = {}
    for name, f in features.items():
        x = f[pick].double().cpu().numpy()
        if k < 4:  # t-SNE needs a few points; too few to map
            xy = np.zeros((k, 2))
        else:
            xy = manifold.TSNE(n_components=2, perplexity=perp, init="pca", random_state=int(seed)).fit_transform(x)
        coords[name] = np.round(xy, 4).tolist()
    return {
        "points": k,
        "seed": int(seed),
        "perplexity": perp,
        "index": index[pick].tolist(),
        "label": labels[pick].tolist(),
        "coords": coords,
    }
