"""MLA entropy-based fusion weights and the orthogonal-projection head update."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcoop.methods.functional import (
    mla_fuse,
    mla_fusion_weights,
    mla_project_grad,
    mla_projection_alpha,
    mla_update_projector,
    prediction_entropy,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_entropy_and_weights_by_hand() -> None:
    assert prediction_entropy(torch.zeros(1, 2)).item() == pytest.approx(math.log(2))
    assert prediction_entropy(torch.tensor([[100.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-30)
    # H = (ln 2, 0): w = exp(Hmax - H) / sum = softmax(-H) = (0.5, 1) / 1.5 = (1/3, 2/3)
    logits = torch.stack([torch.zeros(1, 2), torch.tensor([[100.0, 0.0]])])
    w = mla_fusion_weights(logits)
    assert w.flatten().tolist() == pytest.approx([1 / 3, 2 / 3])
    assert mla_fuse(logits).flatten().tolist() == pytest.approx([200 / 3, 0.0])
    assert mla_fuse(logits, torch.tensor([0.5, 0.5])).flatten().tolist() == pytest.approx([50.0, 0.0])
    # equal entropies (a tie) -> equal weights, per sample
    tie = torch.stack([torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 0.0]])])
    assert torch.allclose(mla_fusion_weights(tie), torch.full((2, 2), 0.5))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(0, 2**16))
def test_weights_are_convex_and_favour_confidence(m: int, seed: int) -> None:
    logits = torch.randn(m, 4, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3
    w = mla_fusion_weights(logits)
    assert torch.allclose(w.sum(0), torch.ones(4, dtype=torch.float64)) and bool((w > 0).all())
    h = prediction_entropy(logits)
    assert torch.equal(w.argmax(0), h.argmin(0))  # the most confident modality weighs most


def test_projection_alpha() -> None:
    assert mla_projection_alpha(0, 10) == pytest.approx(0.1)
    assert mla_projection_alpha(5, 10) == pytest.approx(0.1**1.5)


def test_projector_update_by_hand() -> None:
    # P = I, r = (1, 0), alpha = 0.1: k = r^T, r k = 1, P' = I - diag(1, 0)/1.1 = diag(1/11, 1),
    # normalised by ||P'||_F = sqrt(1/121 + 1) -> diag(1, 11) / sqrt(122).
    p = mla_update_projector(torch.eye(2, dtype=torch.float64), torch.tensor([[1.0, 0.0], [1.0, 0.0]]), 0.1)
    assert torch.allclose(p, torch.diag(torch.tensor([1.0, 11.0], dtype=torch.float64)) / math.sqrt(122))
    # the head gradient's component along the previous modality's mean feature is suppressed
    g = mla_project_grad(torch.tensor([[1.0, 1.0]], dtype=torch.float64), p)
    assert g.flatten().tolist() == pytest.approx([1 / math.sqrt(122), 11 / math.sqrt(122)])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=3, max_size=3), st.floats(0.01, 0.1))
def test_projector_shrinks_the_feature_direction(r: list[float], alpha: float) -> None:
    rv = torch.tensor(r, dtype=torch.float64)
    if float(rv.norm()) < 1e-2:
        return
    p = mla_update_projector(torch.eye(3, dtype=torch.float64), rv.view(1, 3), alpha)
    assert torch.allclose(p, p.t()) and float(p.norm()) == pytest.approx(1.0)
    u = torch.linalg.svd(rv.view(1, 3)).Vh[1]  # a unit vector orthogonal to r
    lam_r = float(rv @ p @ rv) / float(rv @ rv)
    lam_u = float(u @ p @ u)
    assert lam_r / lam_u == pytest.approx(alpha / (alpha + float(rv @ rv)), rel=1e-8)
