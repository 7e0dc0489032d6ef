"""InfoReg Fisher trace, acquisition rate, proximal coefficients and gradient."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcoop.methods.functional import (
    inforeg_acquisition_rate,
    inforeg_coefficients,
    inforeg_fisher_trace,
    inforeg_proximal_grad,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_fisher_trace_by_hand() -> None:
    # per-layer mean of accumulated g^2: mean(1, 3) = 2 and mean(4) = 4 -> 6
    assert inforeg_fisher_trace([torch.tensor([[1.0, 3.0]]), torch.tensor([4.0])]) == pytest.approx(6.0)


def test_acquisition_rate_by_hand() -> None:
    assert inforeg_acquisition_rate([]) == 1.0  # epoch 0
    # [0]*10 + [5]: T1 = 5/10, T2 = 0 -> 1
    assert inforeg_acquisition_rate([5.0]) == pytest.approx(1.0)
    # [0]*10 + [5, 5]: T1 = 10/10 = 1, T2 = 5/10 -> (1 - .5)/1 = 0.5
    assert inforeg_acquisition_rate([5.0, 5.0]) == pytest.approx(0.5)
    # a plateau over a full window: T1 = T2 -> 0 (the prime window is over)
    assert inforeg_acquisition_rate([2.0] * 11) == pytest.approx(0.0)
    assert inforeg_acquisition_rate([0.0]) == 0.0  # no information at all: not 0/0


def test_coefficients_by_hand() -> None:
    base = torch.tensor([0.95, 0.1])
    # audio ahead by 10 (batch sums of probabilities): beta_a = 0.95 exp(tanh 10), beta_v = 0
    b = inforeg_coefficients(torch.tensor([40.0, 30.0]), 0.5, base)
    assert b.tolist() == pytest.approx([0.95 * math.exp(math.tanh(10.0)), 0.0])
    b2 = inforeg_coefficients(torch.tensor([30.0, 40.0]), 0.5, base)
    assert b2.tolist() == pytest.approx([0.0, 0.1 * math.exp(math.tanh(10.0))])
    b3 = inforeg_coefficients(torch.tensor([1.0, 0.5]), 0.5, base)
    assert b3.tolist() == pytest.approx([0.95 * math.exp(math.tanh(0.5)), 0.0])
    # outside the prime window (rate not > 0.05), tie, and a zero score
    assert inforeg_coefficients(torch.tensor([40.0, 30.0]), 0.05, base).tolist() == [0.0, 0.0]
    assert inforeg_coefficients(torch.tensor([3.0, 3.0]), 0.5, base).tolist() == [0.0, 0.0]
    zero = inforeg_coefficients(torch.tensor([0.0, 2.0]), 1.0, 1.0)
    assert zero.tolist() == pytest.approx([0.0, math.exp(math.tanh(2.0))])
    # M = 3, s = (3, 1, 2): gaps to the others' mean = (1.5, -1.5, 0); rate per modality
    b4 = inforeg_coefficients(torch.tensor([3.0, 1.0, 2.0]), torch.tensor([0.5, 0.5, 0.5]), 1.0)
    assert b4.tolist() == pytest.approx([math.exp(math.tanh(1.5)), 0.0, 0.0])
    late = inforeg_coefficients(torch.tensor([3.0, 1.0, 2.0]), torch.tensor([0.01, 0.5, 0.5]), 1.0)
    assert late.tolist() == [0.0, 0.0, 0.0]  # the leader's own window has closed


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 64), min_size=2, max_size=5), st.floats(0, 1))
def test_only_leaders_are_regulated(scores: list[float], rate: float) -> None:
    s = torch.tensor(scores, dtype=torch.float64)
    b = inforeg_coefficients(s, rate, 1.0)
    assert bool((b >= 0).all()) and bool((b <= math.e).all())
    assert float(b[int(s.argmin())]) == 0.0


def test_proximal_grad_matches_autograd() -> None:
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    anchor = torch.tensor([0.5, 0.5])
    (1.0 * ((p - anchor) ** 2).sum()).backward()  # coeff/2 ||p - a||^2 with coeff = 2
    assert inforeg_proximal_grad(p, anchor, 2.0).tolist() == p.grad.tolist() == [1.0, 3.0]
