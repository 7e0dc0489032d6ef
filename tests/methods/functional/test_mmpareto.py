"""MMPareto weights (aligned -> 1/2, conflicting -> min-norm) and magnitude rescale."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mmcoop.methods.functional import min_norm_weight, mmpareto_combine, mmpareto_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def test_aligned_equal_weights_by_hand() -> None:
    g_mm, g_u = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])  # cos > 0
    w = mmpareto_weights(g_mm, g_u)
    assert w.tolist() == [0.5, 0.5]
    # new = 2 (0.5 g_mm + 0.5 g_u) = (2, 1) = g_mm + g_u -> factor 1 -> 1.5 * (2, 1)
    assert mmpareto_combine(g_mm, g_u, w).tolist() == pytest.approx([3.0, 1.5])


def test_conflicting_min_norm_by_hand() -> None:
    g_mm, g_u = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])  # cos = -1/sqrt 2
    # c = (g_u.g_u - g_mm.g_u) / ||g_mm - g_u||^2 = (2 + 1) / 5 = 0.6
    w = mmpareto_weights(g_mm, g_u)
    assert w.tolist() == pytest.approx([0.6, 0.4])
    d = 0.6 * g_mm + 0.4 * g_u  # (0.2, 0.4), orthogonal to g_mm - g_u = (2, -1)
    assert float(d @ (g_mm - g_u)) == pytest.approx(0.0, abs=1e-7)
    # new = 2 d = (0.4, 0.8), ||new|| = sqrt(.8) < ||g_mm + g_u|| = 1 -> rescaled to norm 1, times 1.5
    out = mmpareto_combine(g_mm, g_u, w, gamma=1.5)
    assert out.tolist() == pytest.approx((1.5 * torch.tensor([0.4, 0.8]) / math.sqrt(0.8)).tolist(), abs=1e-6)
    assert float(out.norm()) == pytest.approx(1.5, abs=1e-6)


def test_orthogonal_and_zero_edges() -> None:
    # cos = 0 is not "> 0": min-norm c = 4 / (1 + 4) = 0.8.
    w0 = mmpareto_weights(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]))
    assert w0.tolist() == pytest.approx([0.8, 0.2])
    # a zero multimodal gradient: the min-norm point is 0 -> weight 1 on it, combined gradient 0.
    z, g = torch.zeros(3), torch.tensor([1.0, -2.0, 0.5])
    w = mmpareto_weights(z, g)
    assert w.tolist() == pytest.approx([1.0, 0.0])
    assert torch.equal(mmpareto_combine(z, g, w), torch.zeros(3))
    assert min_norm_weight(torch.zeros(2), torch.zeros(2)).item() == 0.5
    # exactly opposed: c = (4 + 2) / 9 = 2/3, d = 2/3 (1, 0) + 1/3 (-2, 0) = 0 -> no update,
    # not rounding noise rescaled to ||g_mm + g_u||.
    g_mm, g_u = torch.tensor([1.0, 0.0]), torch.tensor([-2.0, 0.0])
    w2 = mmpareto_weights(g_mm, g_u)
    assert w2.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert torch.equal(mmpareto_combine(g_mm, g_u, w2), torch.zeros(2))


def test_accumulated_gradients_hide_the_conflict() -> None:
    # BalanceBenchmark reads both gradients after backpropagating both losses: each reading is
    # g_mm + g_u, so the cosine is 1 and the conflict is never seen.
    g_mm, g_u = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    acc = g_mm + g_u
    assert mmpareto_weights(acc, acc).tolist() == [0.5, 0.5]
    assert mmpareto_weights(g_mm, g_u).tolist() != [0.5, 0.5]


vec = st.lists(st.floats(-3, 3), min_size=2, max_size=6)


@settings(max_examples=80, deadline=None)
@given(vec, vec)
def test_min_norm_laws(a: list[float], b: list[float]) -> None:
    n = min(len(a), len(b))
    g1, g2 = torch.tensor(a[:n], dtype=torch.float64), torch.tensor(b[:n], dtype=torch.float64)
    assume(float(g1.norm()) > 1e-3 and float(g2.norm()) > 1e-3)
    w = mmpareto_weights(g1, g2)
    assert bool((w >= 0).all()) and float(w.sum()) == pytest.approx(1.0)
    if float(g1 @ g2) <= 0 and float((g1 - g2).norm()) > 1e-6:
        c = float(w[0])
        d = c * g1 + (1 - c) * g2
        grid = torch.linspace(0, 1, 201, dtype=torch.float64)
        brute = (grid.view(-1, 1) * g1 + (1 - grid.view(-1, 1)) * g2).norm(dim=1).min()
        assert float(d.norm()) <= float(brute) + 1e-9  # the true minimum over the segment
        if 1e-9 < c < 1 - 1e-9:
            assert float(d @ (g1 - g2)) == pytest.approx(0.0, abs=1e-8)  # orthogonality
        # a common descent direction: d.g_i >= ||d||^2 for both objectives
        assert float(d @ g1) >= float(d @ d) - 1e-9 and float(d @ g2) >= float(d @ d) - 1e-9
    out = mmpareto_combine(g1, g2, w, gamma=1.5)
    new = 2 * (w[0] * g1 + w[1] * g2)
    if float(new.norm()) > 1e-12 * float(g1.norm() + g2.norm()):
        expected = 1.5 * max(float((g1 + g2).norm()), float(new.norm()))
        assert float(out.norm()) == pytest.approx(expected, rel=1e-9)


def test_factor_two_shows_with_several_tensors_per_encoder() -> None:
    # The official code (code/MMPareto.py train_epoch) picks the weights on the whole encoder's
    # flattened gradient but rescales each parameter tensor by its own norms. With one tensor the
    # rescale hides the factor 2 of new = 2 (w_mm g_mm + w_u g_u); with two it shows where a
    # tensor's summed gradient is shorter than its new one.
    mm = [torch.tensor([1.0, 0.0]), torch.tensor([3.0])]  # encoder tensor 1, tensor 2
    uni = [torch.tensor([-1.0, 1.0]), torch.tensor([-3.0])]
    w = mmpareto_weights(torch.cat(mm), torch.cat(uni))
    # flattened g_mm = (1, 0, 3), g_u = (-1, 1, -3): cos < 0; c = (11 + 10) / (4 + 1 + 36) = 21/41
    c = 21 / 41
    assert w.tolist() == pytest.approx([c, 1 - c])
    # tensor 2: g_mm + g_u = 0, so max(1, 0 / ||new||) = 1 and the result is gamma * 2 * (c*3 - (1-c)*3)
    out2 = mmpareto_combine(mm[1], uni[1], w, gamma=1.5)
    assert out2.tolist() == pytest.approx([1.5 * 2 * (3 * c - 3 * (1 - c))])
    # tensor 1: new = 2 (2c - 1, 1 - c), shorter than g_mm + g_u = (0, 1): rescaled up to norm 1
    new1 = torch.tensor([2 * (2 * c - 1), 2 * (1 - c)])
    want1 = 1.5 * new1 * max(1.0, 1.0 / float(new1.norm()))
    torch.testing.assert_close(mmpareto_combine(mm[0], uni[0], w, gamma=1.5), want1)
