"""G-Blending weights from overfitting / generalisation changes of each head."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcoop.methods.functional import gblend_loss, gblend_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def test_weights_by_hand() -> None:
    t0, v0 = torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.2, 1.5, 1.1])
    t1, v1 = torch.tensor([0.5, 0.6, 0.2]), torch.tensor([0.9, 1.3, 1.0])
    # dG = v0 - v1 = (0.3, 0.2, 0.1); O0 = (0.2, 0.5, 0.1); O1 = (0.4, 0.7, 0.8); dO = (0.2, 0.2, 0.7)
    # raw = dG / dO^2 = (7.5, 5, 10/49); Z = 622.5/49 -> w = (367.5, 245, 10) / 622.5
    w = gblend_weights(t0, v0, t1, v1)
    assert w.tolist() == pytest.approx([367.5 / 622.5, 245 / 622.5, 10 / 622.5], abs=1e-6)


def test_edges() -> None:
    t0, v0 = torch.tensor([1.0, 1.0]), torch.tensor([1.2, 1.2])
    # head 1's validation loss got worse: weight 0 (BalanceBenchmark's abs() would reward it)
    w = gblend_weights(t0, v0, torch.tensor([0.8, 0.8]), torch.tensor([1.1, 1.3]))
    assert w.tolist() == pytest.approx([1.0, 0.0])
    # no head generalised: uniform
    assert gblend_weights(t0, v0, t0, torch.tensor([1.3, 1.2])).tolist() == pytest.approx([0.5, 0.5])
    # dO = 0 for the only improving head -> floored, still finite, takes all the weight
    w0 = gblend_weights(t0, v0, torch.tensor([0.9, 1.0]), torch.tensor([1.1, 1.3]))
    assert torch.isfinite(w0).all() and w0.tolist() == pytest.approx([1.0, 0.0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(*[st.floats(0.01, 5)] * 4), min_size=2, max_size=5))
def test_weights_are_a_distribution(rows: list[tuple[float, float, float, float]]) -> None:
    cols = [torch.tensor([r[i] for r in rows], dtype=torch.float64) for i in range(4)]
    w = gblend_weights(*cols)
    assert bool((w >= 0).all()) and float(w.sum()) == pytest.approx(1.0)
    improved = cols[1] > cols[3]
    if bool(improved.any()):
        assert bool((w[~improved] == 0).all())  # a head that did not generalise gets nothing
    else:
        assert torch.allclose(w, torch.full_like(w, 1 / len(rows)))


def test_loss_by_hand() -> None:
    # 0.2 * 1 + 0.3 * 2 + 0.5 * 3 = 2.3
    loss = gblend_loss(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.2, 0.3, 0.5]))
    assert loss.item() == pytest.approx(2.3)
