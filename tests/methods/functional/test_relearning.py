"""Diagnosing & Re-learning: min-max scaling, k-means, purity, strength, soft re-init."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcoop.errors import ConfigError
from mmcoop.methods.functional import (
    kmeans,
    learning_state_purity,
    minmax_scale,
    purity,
    relearn_blend,
    relearning_strength,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_minmax_by_hand() -> None:
    x = torch.tensor([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    # column 0 -> (-1, 0, 1); the constant column -> low = -1 (as sklearn's MinMaxScaler)
    assert minmax_scale(x).tolist() == [[-1.0, -1.0], [0.0, -1.0], [1.0, -1.0]]


def test_purity_by_hand() -> None:
    y = torch.tensor([0, 0, 1, 1, 1])
    # cluster 0 = {0, 0, 1} -> 2 votes, cluster 1 = {1, 1} -> 2 votes: 4/5
    assert purity(y, torch.tensor([0, 0, 0, 1, 1])) == pytest.approx(0.8)
    assert purity(y, y) == 1.0
    assert purity(y, torch.zeros(5, dtype=torch.long)) == pytest.approx(0.6)  # one cluster: majority


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), min_size=1, max_size=30))
def test_purity_laws(pairs: list[tuple[int, int]]) -> None:
    y = torch.tensor([p[0] for p in pairs])
    c = torch.tensor([p[1] for p in pairs])
    p = purity(y, c)
    assert float(torch.bincount(y).max()) / len(pairs) - 1e-12 <= p <= 1.0
    assert purity(y, (c * 7 + 3) % 11) == pytest.approx(p)  # cluster ids are only names


def test_kmeans_separates_blobs() -> None:
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    y = torch.arange(3).repeat_interleave(5)
    x = centers[y] + 0.1 * torch.randn(15, 2, generator=g)
    assert purity(y, kmeans(x, 3, generator=g)) == 1.0
    assert learning_state_purity(x, y, 3, generator=torch.Generator().manual_seed(1)) == 1.0
    with pytest.raises(ValueError, match="k-means"):
        kmeans(x, 16)


def test_strength_and_blend_by_hand() -> None:
    assert relearning_strength(0.9, 0.6, move_lambda=3.0) == pytest.approx(math.tanh(0.9))
    assert relearning_strength(0.7, 0.7) == 0.0  # no train/val gap -> no re-initialisation
    with pytest.raises(ConfigError, match="move_lambda"):
        relearning_strength(0.5, 0.4, move_lambda=-1.0)
    out = relearn_blend(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 2.0]), 0.25)
    assert out.tolist() == [0.75, 1.5]
