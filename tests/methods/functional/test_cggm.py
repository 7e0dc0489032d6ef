"""CGGM magnitude coefficients from accuracy changes and the direction term."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mmcoop.methods.functional import cggm_coefficients, cggm_direction_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def test_coefficients_by_hand() -> None:
    # d = (0.2, 0.1), sum 0.3: B = ((0.3 - 0.2)/0.3, (0.3 - 0.1)/0.3) = (1/3, 2/3)
    b = cggm_coefficients(torch.tensor([0.7, 0.6]), torch.tensor([0.5, 0.5]))
    assert b.tolist() == pytest.approx([1 / 3, 2 / 3], abs=1e-7)
    # M = 3, d = (0.1, 0.2, 0.3), sum 0.6: B = (5/6, 4/6, 3/6)
    b3 = cggm_coefficients(torch.tensor([0.1, 0.2, 0.3]), torch.zeros(3))
    assert b3.tolist() == pytest.approx([5 / 6, 4 / 6, 3 / 6], abs=1e-7)
    # both got worse, sum -0.4: B = ((-0.4 + 0.1)/-0.4, (-0.4 + 0.3)/-0.4) = (0.75, 0.25)
    bn = cggm_coefficients(torch.tensor([0.4, 0.2]), torch.tensor([0.5, 0.5]))
    assert bn.tolist() == pytest.approx([0.75, 0.25], abs=1e-7)


def test_zero_sum_guard() -> None:
    # official: B = -d / 1e-8 = (-1e7, 1e7); we do not modulate.
    assert cggm_coefficients(torch.tensor([0.6, 0.4]), torch.tensor([0.5, 0.5])).tolist() == [1.0, 1.0]
    assert cggm_coefficients(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5])).tolist() == [1.0, 1.0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=2, max_size=6))
def test_coefficients_sum_to_m_minus_one(d: list[float]) -> None:
    dv = torch.tensor(d, dtype=torch.float64)
    assume(abs(float(dv.sum())) > 1e-3)
    b = cggm_coefficients(dv, torch.zeros_like(dv))
    assert float(b.sum()) == pytest.approx(len(d) - 1, rel=1e-5)  # sum_m (S - d_m)/S = M - 1


def test_direction_loss_by_hand() -> None:
    f = torch.tensor([1.0, 0.0], requires_grad=True)
    # cos(v1, f) = 1, cos(v2, f) = 0: L = (|1| + |0.5| - (1 * 1 + 0.5 * 0)) / 2 = 0.25
    vecs = [torch.tensor([2.0, 0.0]), torch.tensor([0.0, 3.0])]
    loss = cggm_direction_loss(torch.tensor([1.0, 0.5]), vecs, f)
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    assert f.grad is not None and float(f.grad.abs().sum()) > 0  # it pulls the fusion head's direction
    same = [torch.tensor([1.0, 0.0])] * 2
    aligned = cggm_direction_loss(torch.tensor([1.0, 0.5]), same, torch.tensor([3.0, 0.0]))
    assert aligned.item() == pytest.approx(0.0, abs=1e-7)  # all aligned -> no penalty
