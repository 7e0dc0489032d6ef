"""AGM Shapley mono responses, scores, coefficients, running means, gradient scaling."""

from __future__ import annotations

import math
from itertools import permutations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcoop.methods.functional import (
    agm_coefficients,
    agm_fuse,
    agm_mono_responses,
    agm_scores,
    agm_update_running,
    shapley_weights,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shapley_weights_m2() -> None:
    # coalitions by bitmask: 0 = {}, 1 = {a}, 2 = {v}, 3 = {a, v}
    # phi_a = 1/2 (v{a} - v{}) + 1/2 (v{a,v} - v{v})
    expected = torch.tensor([[-0.5, 0.5, -0.5, 0.5], [-0.5, -0.5, 0.5, 0.5]], dtype=torch.float64)
    assert torch.equal(shapley_weights(2), expected)


def test_mono_responses_official_formula() -> None:
    # f(0,0) = 10 (ignored by the official code), f(a,0) = 2, f(0,v) = 4, f(a,v) = 8:
    # m_a = (8 - 4 + 2) / 2 = 3, m_v = (8 - 2 + 4) / 2 = 5, m_a + m_v = f(a,v).
    v = torch.tensor([10.0, 2.0, 4.0, 8.0]).view(4, 1, 1)
    assert agm_mono_responses(v).flatten().tolist() == pytest.approx([3.0, 5.0])
    # true Shapley with v({}) = 10: phi = (3 - 5, 5 - 5), summing to 8 - 10.
    assert agm_mono_responses(v, empty_is_zero=False).flatten().tolist() == pytest.approx([-2.0, 0.0])
    with pytest.raises(ValueError, match="2\\^M"):
        agm_mono_responses(torch.zeros(3, 1, 1))


def _brute_shapley(values: list[float], m_tot: int) -> list[float]:
    phi = [0.0] * m_tot
    perms = list(permutations(range(m_tot)))
    for order in perms:
        mask = 0
        for m in order:
            phi[m] += values[mask | (1 << m)] - values[mask]
            mask |= 1 << m
    return [p / len(perms) for p in phi]


@settings(max_examples=30, deadline=None)
@given(
    st.integers(2, 4).flatmap(lambda m: st.tuples(st.just(m), st.lists(st.floats(-5, 5), min_size=2**m, max_size=2**m)))
)
def test_mono_responses_match_brute_force(case: tuple[int, list[float]]) -> None:
    m_tot, vals = case
    out = agm_mono_responses(torch.tensor(vals, dtype=torch.float64).view(-1, 1, 1), empty_is_zero=False)
    assert out.flatten().tolist() == pytest.approx(_brute_shapley(vals, m_tot), abs=1e-9)
    # efficiency with the official convention: responses sum to the full output.
    off = agm_mono_responses(torch.tensor(vals, dtype=torch.float64).view(-1, 1, 1))
    assert float(off.sum()) == pytest.approx(vals[-1], abs=1e-9)


def test_scores_by_hand_and_clamp() -> None:
    y = torch.tensor([0, 1])
    mono = torch.stack(
        [
            torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]]),  # p = .75, .5
            torch.tensor([[0.0, -100.0], [0.0, -100.0]]),  # p = ~1, ~e^-100 -> clamped at 1e-8
        ]
    )
    s = agm_scores(mono, y)
    assert s[0].item() == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2, abs=1e-6)
    assert s[1].item() == pytest.approx((0.0 - math.log(1e-8)) / 2, abs=1e-4)


def test_coefficients_by_hand() -> None:
    # M = 2, s = (1, 2) (audio has the lower loss), running (1.5, 1.5):
    # ratio = exp(2 (1.5 - s)) = (e, 1/e); opt = (1, 1); k = exp(alpha (opt - ratio)).
    k = agm_coefficients(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 1.5]), alpha=1.0)
    assert k.tolist() == pytest.approx([math.exp(1 - math.e), math.exp(1 - 1 / math.e)], abs=1e-6)
    assert k[0] < 1 < k[1]  # the modality ahead of its average is damped, the other boosted
    # tie with the running average -> no modulation.
    assert agm_coefficients(torch.tensor([0.7, 0.7]), torch.tensor([0.7, 0.7]), 2.5).tolist() == [1.0, 1.0]
    # M = 3: k = 3/2, s = (0, 0, 3), running 0: ratio = exp(1.5 (1 - s)) = (e^1.5, e^1.5, e^-3).
    k3 = agm_coefficients(torch.tensor([0.0, 0.0, 3.0]), torch.zeros(3), alpha=0.5)
    exp3 = [math.exp(0.5 * (1 - math.exp(1.5)))] * 2 + [math.exp(0.5 * (1 - math.exp(-3.0)))]
    assert k3.tolist() == pytest.approx(exp3, abs=1e-6)
    # optional clamp of the exponent (BalanceBenchmark: 7).
    kc = agm_coefficients(torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0]), 1.0, max_exponent=7.0)
    assert kc[0].item() == pytest.approx(math.exp(7.0), rel=1e-6)
    assert kc[1].item() == pytest.approx(math.exp(math.exp(-3.0) - math.exp(3.0)), rel=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 20), min_size=2, max_size=5), st.floats(0, 3))
def test_coefficients_neutral_at_running_average(scores: list[float], alpha: float) -> None:
    s = torch.tensor(scores, dtype=torch.float64)
    k = agm_coefficients(s, s.clone(), alpha)
    assert torch.allclose(k, torch.ones_like(k))


def test_running_mean() -> None:
    seq = [torch.tensor([1.0, 4.0]), torch.tensor([3.0, 2.0]), torch.tensor([5.0, 0.0])]
    run = torch.zeros(2)  # official start: 0, first update replaces it
    for t, s in enumerate(seq):
        run = agm_update_running(run, s, t)
    assert run.tolist() == pytest.approx([3.0, 2.0])


def test_fuse_scales_gradient_not_value() -> None:
    mono = torch.tensor([[[1.0, 2.0]], [[3.0, -1.0]]], requires_grad=True)
    fused = agm_fuse(mono, torch.tensor([0.25, 4.0]))
    assert fused.tolist() == [[4.0, 1.0]]
    fused.sum().backward()
    assert mono.grad.tolist() == [[[0.25, 0.25]], [[4.0, 4.0]]]
