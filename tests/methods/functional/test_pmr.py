"""PMR prototypes, prototype logits, loss weights and loss."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcoop.errors import ConfigError
from mmcoop.methods.functional import (
    pmr_loss,
    pmr_loss_weights,
    pmr_prototype_logits,
    pmr_update_prototypes,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_prototypes_by_hand() -> None:
    f = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    y = torch.tensor([0, 0, 1])
    # class 0: mean of (0,0),(2,0) = (1,0); class 1: (0,4); class 2 empty -> zeros.
    p = pmr_update_prototypes(f, y, 3)
    assert torch.allclose(p, torch.tensor([[1.0, 0.0], [0.0, 4.0], [0.0, 0.0]]))
    prev = torch.tensor([[3.0, 3.0], [1.0, 1.0], [5.0, 5.0]])
    # (1 - 0.2) * mean + 0.2 * prev; the empty class keeps its previous prototype.
    p2 = pmr_update_prototypes(f, y, 3, previous=prev, momentum=0.2)
    assert torch.allclose(p2, torch.tensor([[1.4, 0.6], [0.2, 3.4], [5.0, 5.0]]))
    with pytest.raises(ConfigError, match="momentum"):
        pmr_update_prototypes(f, y, 3, momentum=1.5)


def test_prototype_logits_by_hand() -> None:
    # -||(0,0) - (3,4)|| = -5, -||(0,0) - (0,1)|| = -1.
    z = torch.zeros(1, 2, requires_grad=True)
    logits = pmr_prototype_logits(z, torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
    assert torch.allclose(logits, torch.tensor([[-5.0, -1.0]]))
    logits[0, 0].backward()  # d(-||z - c||)/dz = (c - z)/||c - z|| = (0.6, 0.8)
    assert torch.allclose(z.grad, torch.tensor([[0.6, 0.8]]))


def test_loss_weights_rule() -> None:
    a = 0.6
    assert pmr_loss_weights(torch.tensor([2.0, 1.0]), a).tolist() == pytest.approx([0.0, a])
    assert pmr_loss_weights(torch.tensor([1.0, 2.0]), a).tolist() == pytest.approx([a, 0.0])
    assert pmr_loss_weights(torch.tensor([1.0, 1.0]), a).tolist() == [0.0, 0.0]  # tie: none
    assert pmr_loss_weights(torch.tensor([0.0, 1.3]), a).tolist() == pytest.approx([a, 0.0])  # zero score
    # M = 3, s = (3, 1, 2): others' means (1.5, 2.5, 2) -> only modality 1 is below.
    assert pmr_loss_weights(torch.tensor([3.0, 1.0, 2.0]), a).tolist() == pytest.approx([0.0, a, 0.0])
    with pytest.raises(ConfigError, match="alpha"):
        pmr_loss_weights(torch.tensor([1.0, 2.0]), -1.0)


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 64.0), st.floats(0.0, 64.0), st.floats(0.0, 2.0))
def test_two_modalities_match_official_switch(s0: float, s1: float, alpha: float) -> None:
    w = pmr_loss_weights(torch.tensor([s0, s1], dtype=torch.float64), alpha).tolist()
    s0f, s1f = float(torch.tensor(s0, dtype=torch.float32)), float(torch.tensor(s1, dtype=torch.float32))
    ratio_gt = s0f > s1f  # official: rho = s0/s1 > 1 -> weight on modality 1, < 1 -> on 0
    expected = [0.0, alpha] if ratio_gt else ([alpha, 0.0] if s0f < s1f else [0.0, 0.0])
    assert w == pytest.approx(expected)


def test_loss_by_hand() -> None:
    y = torch.tensor([0, 0])
    fused = torch.zeros(2, 2)  # CE = ln 2
    proto = torch.stack([torch.zeros(2, 2), torch.tensor([[math.log(3.0), 0.0]] * 2)])  # CE_1 = -ln .75
    loss = pmr_loss(fused, proto, y, torch.tensor([0.0, 0.5]))
    assert float(loss) == pytest.approx(math.log(2) - 0.5 * math.log(0.75), abs=1e-6)
