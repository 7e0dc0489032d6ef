"""Issue 26.3: t-SNE feature maps: seeded subsample under a size limit, deterministic, in the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmcoop.diagnostics.feature_map import subsample, tsne_maps
from mmcoop.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_subsample_is_seeded_sorted_and_limited():
    a, b = subsample(100, 30, seed=4), subsample(100, 30, seed=4)
    assert torch.equal(a, b) and len(a) == 30 and len(set(a.tolist())) == 30
    assert torch.equal(a, a.sort().values) and int(a.max()) < 100
    assert not torch.equal(a, subsample(100, 30, seed=5))
    assert torch.equal(subsample(20, 30, seed=0), torch.arange(20))
    with pytest.raises(ConfigError, match="max_points"):
        subsample(10, 0, seed=0)


def test_tsne_maps_are_deterministic_and_keep_clusters_apart():
    g = np.random.default_rng(0)
    y = torch.tensor(g.integers(0, 2, 120))
    x = torch.tensor(g.normal(size=(120, 5)) + 20.0 * y.numpy()[:, None])  # two far-apart blobs
    index = torch.arange(1000, 1120)
    out = tsne_maps({"a": x}, y, index, max_points=80, seed=3)
    again = tsne_maps({"a": x}, y, index, max_points=80, seed=3)
    assert out == again and out["points"] == 80
    pick = subsample(120, 80, 3)
    assert out["index"] == (index[pick]).tolist() and out["label"] == y[pick].tolist()
    xy, lab = np.asarray(out["coords"]["a"]), np.asarray(out["label"])
    c0, c1 = xy[lab == 0].mean(0), xy[lab == 1].mean(0)
    spread = max(xy[lab == 0].std(0).max(), xy[lab == 1].std(0).max())
    assert np.linalg.norm(c0 - c1) > 3 * spread
