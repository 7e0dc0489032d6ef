"""Cores of the 2024-2025 peers (MLB, ARL, AMSS/AMSS+, DI-MML, Data Remixing) against values
computed by hand on tiny tensors, written the way the official scripts write them."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from mmcoop.methods.functional import (
    amss_coefficients,
    amss_feature_entropy,
    amss_label_term,
    amss_mask,
    amss_unit_importance,
    arl_statistics,
    arl_weights,
    dimml_dimension_hits,
    dimml_duc_loss,
    dimml_specific_dims,
    mlb_coefficients,
    mlb_ratios,
    remix_assign,
    remix_divergence,
)

pytestmark = pytest.mark.usefixtures("one_thread")


# -- MLB --------------------------------------------------------------------------------
def test_mlb_two_and_three_modalities_by_hand() -> None:
    k = mlb_coefficients(torch.tensor([0.8, 0.4]), alpha=0.5)
    # official: ratio_0 = s_1 / s_0, coeff = 1 + tanh(alpha (ratio - 1)): the weak one is accelerated
    assert k.tolist() == pytest.approx([1 + math.tanh(0.5 * (0.5 - 1)), 1 + math.tanh(0.5 * (2.0 - 1))])
    assert float(k[0]) < 1 < float(k[1])
    # Bias_Infusion_MLB_3d: ratio_0 = ((s_1 + s_2) / 2) / s_0
    assert mlb_ratios(torch.tensor([0.6, 0.3, 0.15])).tolist() == pytest.approx([0.225 / 0.6, 0.375 / 0.3, 0.45 / 0.15])
    assert mlb_coefficients(torch.tensor([0.5, 0.5, 0.5]), 0.8).tolist() == pytest.approx([1.0, 1.0, 1.0])


# -- ARL --------------------------------------------------------------------------------
def _official_arl(out_a: torch.Tensor, out_v: torch.Tensor, T: float) -> list[float]:
    """main_arl_variance.py train_epoch, line by line (two modalities)."""
    ca, cb = float(out_a.abs().mean(0).sum()), float(out_v.abs().mean(0).sum())
    pa, pv = out_a.softmax(1), out_v.softmax(1)
    ha = float((-pa * torch.log(pa + 1e-16)).sum(1).mean())
    hv = float((-pv * torch.log(pv + 1e-16)).sum(1).mean())
    ha, hv = max(ha / (ha + hv), 0.3), max(hv / (ha + hv), 0.3)
    aw, vw = 1 / ha, 1 / hv
    ca, cb = ca / (ca + cb), cb / (ca + cb)
    aw, vw = aw / (aw + vw), vw / (aw + vw)
    return F.softmax(torch.tensor([cb * aw * T, ca * vw * T], dtype=torch.float64), 0).tolist()


def test_arl_weights_equal_the_official_lines() -> None:
    g = torch.Generator().manual_seed(3)
    out_a, out_v = 3 * torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    stats = arl_statistics(torch.stack([out_a, out_v]))
    got = arl_weights(stats[0], stats[1], temperature=8.0)
    assert got.tolist() == pytest.approx(_official_arl(out_a.double(), out_v.double(), 8.0), rel=1e-9)
    # a very confident modality (entropy share below 0.3) is clamped: [3, 0] logits vs near-uniform
    sharp, flat = torch.tensor([[30.0, 0.0]]), torch.tensor([[0.1, 0.0]])
    stats = arl_statistics(torch.stack([sharp, flat]))
    assert arl_weights(stats[0], stats[1], 2.0).tolist() == pytest.approx(_official_arl(sharp, flat, 2.0), rel=1e-9)


def test_arl_three_modalities_sum_to_one_and_equal_when_symmetric() -> None:
    same = torch.ones(3, 4, 5)
    stats = arl_statistics(same)
    assert arl_weights(stats[0], stats[1], 8.0).tolist() == pytest.approx([1 / 3] * 3)
    stats = arl_statistics(torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0)))
    assert float(arl_weights(stats[0], stats[1], 8.0).sum()) == pytest.approx(1.0)


# -- AMSS -------------------------------------------------------------------------------
def test_amss_label_term_is_the_official_cross_entropy_of_frequencies() -> None:
    p = [2 / 3, 1 / 3]
    z = math.exp(p[0]) + math.exp(p[1])
    want = -(p[0] * math.log(math.exp(p[0]) / z) + p[1] * math.log(math.exp(p[1]) / z))
    assert float(amss_label_term(torch.tensor([2.0, 1.0]))) == pytest.approx(want)
    assert float(amss_label_term(torch.tensor([2.0, 1.0, 0.0]))) == pytest.approx(want)  # bincount stops at max label
    with pytest.raises(ValueError):
        amss_label_term(torch.zeros(3))


def test_amss_feature_entropy_and_coefficients_by_hand() -> None:
    assert float(amss_feature_entropy(torch.zeros(3, 8))) == pytest.approx(math.log(8))
    s, hy, h, T = torch.tensor([-0.2, -0.9]), 0.6, torch.tensor([1.5, 2.0]), 0.2
    ra, rv = (-0.2 + hy + 0.5) / 1.5, (-0.9 + hy + 0.5) / 2.0
    ta, tv = ra / T, rv / T
    want_a = math.exp(tv) / (math.exp(tv) + math.exp(ta))  # modal_caculate_MI: audio keeps the visual share
    want = [min(max(want_a, 0.1), 0.9), min(max(1 - want_a, 0.1), 0.9)]
    assert amss_coefficients(s, hy, h, T).tolist() == pytest.approx(want)
    assert amss_coefficients(torch.tensor([-2.0, -0.1]), 0.6, h, T).tolist() == [0.5, 0.5]  # a numerator <= 0
    assert amss_coefficients(torch.tensor([-0.1, -1.0]), 0.6, torch.tensor([0.1, 3.0]), 0.01).tolist() == [0.1, 0.9]
    # M modalities in balance keep half each
    assert amss_coefficients(torch.full((4,), -0.3), 0.6, torch.ones(4), T).tolist() == pytest.approx([0.5] * 4)


def test_amss_mask_counts_values_and_determinism() -> None:
    grad = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, 2.0], [1.0, 0.0]])
    imp = amss_unit_importance(grad)
    assert imp.tolist() == [9.0, 2.0, 4.0, 1.0]
    q = imp / imp.sum()
    m1 = amss_mask(imp, 0.5, torch.Generator().manual_seed(1))
    m2 = amss_mask(imp, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(m1, m2) and int((m1 > 0).sum()) == 2 and set(m1.tolist()) <= {0.0, 1.0}  # ceil(4 * 0.5)
    assert int((amss_mask(imp, 0.3, torch.Generator().manual_seed(0)) > 0).sum()) == 2  # ceil(1.2)
    plus = amss_mask(imp, 1.0, torch.Generator().manual_seed(0), unbiased=True)
    assert plus.tolist() == pytest.approx((1.0 / (q + 0.25)).tolist())  # AMSS+: 1 / (q_i + 1 / N)
    assert amss_mask(torch.zeros(3), 0.5, torch.Generator()).tolist() == [1.0, 1.0, 1.0]
    # only units with importance can be drawn
    assert amss_mask(torch.tensor([1.0, 0.0, 0.0]), 0.9, torch.Generator()).tolist() == [1.0, 0.0, 0.0]


# -- DI-MML -----------------------------------------------------------------------------
def test_dimml_hits_and_specific_dimensions_by_hand() -> None:
    centroids = torch.tensor([[[0.0, 0.0]], [[1.0, 1.0]]])  # [C=2, M=1, d=2]
    feats = torch.tensor([[[0.1, 0.9]], [[0.8, 0.7]], [[0.4, 0.2]]])  # [B=3, M=1, d=2]
    labels = torch.tensor([0, 1, 1])
    # dim 0 nearest classes: 0, 1, 0 -> hits 1, 1, 0; dim 1: 1, 1, 0 -> hits 0, 1, 0
    assert dimml_dimension_hits(feats, labels, centroids).tolist() == [[2.0, 1.0]]
    rates = torch.tensor([[0.9, 0.1, 0.8], [0.9, 0.2, 0.1]])
    # top_a = {0, 2} (mean 0.6), top_v = {0} (mean 0.4): audio-only {2}, visual-only {}
    assert dimml_specific_dims(rates).tolist() == [[False, False, True], [False, False, False]]


def test_dimml_duc_loss_by_hand_and_one_way() -> None:
    a = torch.tensor([3.0, -1.0], requires_grad=True)
    v = torch.tensor([1.0, 2.0], requires_grad=True)
    feats = torch.stack([a, v], 1).unsqueeze(-1)  # [B=2, M=2, d=1]
    specific = torch.tensor([[True], [False]])  # dimension 0 is audio-specific
    loss = dimml_duc_loss(feats, specific, temperature=2.0)
    # SupConLoss: -1/B sum_i log(exp(v_i a_i / T) / sum_j exp(v_i a_j / T))
    rows = [[1 * 3 / 2, 1 * -1 / 2], [2 * 3 / 2, 2 * -1 / 2]]
    want = (
        -(
            math.log(math.exp(rows[0][0]) / sum(map(math.exp, rows[0])))
            + math.log(math.exp(rows[1][1]) / sum(map(math.exp, rows[1])))
        )
        / 2
    )
    assert float(loss.detach()) == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert a.grad is not None and float(a.grad.abs().sum()) == 0.0  # the audio side is detached
    assert v.grad is not None and float(v.grad.abs().sum()) > 0.0


# -- Data Remixing ----------------------------------------------------------------------
def test_remix_divergence_and_assignment() -> None:
    assert remix_divergence(torch.full((1, 4), 0.25)).tolist() == pytest.approx([0.0], abs=1e-12)
    p = torch.tensor([0.7, 0.2, 0.1])
    assert float(remix_divergence(p)) == pytest.approx(sum(x * math.log2(x * 3) for x in p.tolist()))
    div = torch.tensor([[0.1, 0.5, 0.3], [0.2, 0.5, 0.1]])  # [M, N]
    assert remix_assign(div).tolist() == [0, 1, 1]  # smallest divergence; the tie goes to the later modality
