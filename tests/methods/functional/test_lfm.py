"""LFM's alignment, loss, Hessian-vector signal (a quadratic by hand), step size, clipped update and
the official fitted polynomials."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from mmcoop.methods.functional import (
    lfm_alignment,
    lfm_fitted_weights,
    lfm_hvp_signal,
    lfm_loss,
    lfm_step_size,
    lfm_update_weight,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _uni() -> torch.Tensor:
    return torch.tensor([[[math.log(4.0), 0.0]], [[0.0, 0.0]]])  # p = (0.8, 0.2), q = (0.5, 0.5)


def test_alignment_and_loss_by_hand() -> None:
    m = (0.65, 0.35)
    kl_mp = m[0] * math.log(m[0] / 0.8) + m[1] * math.log(m[1] / 0.2)  # kl_div(log p, m) = KL(m || p)
    kl_mq = m[0] * math.log(m[0] / 0.5) + m[1] * math.log(m[1] / 0.5)
    a = 0.5 * (kl_mp + kl_mq)
    assert float(lfm_alignment(_uni())) == pytest.approx(a)
    # three modalities: the mean over the three pairs
    three = torch.cat([_uni(), torch.tensor([[[0.0, math.log(4.0)]]])])
    pairs = [lfm_alignment(three[[j, k]]) for j, k in ((0, 1), (0, 2), (1, 2))]
    assert float(lfm_alignment(three)) == pytest.approx(float(sum(pairs)) / 3)
    fused, y = torch.tensor([[1.0, -1.0]]), torch.tensor([1])
    want = 2 * (0.3 * F.cross_entropy(fused, y) + 0.7 * a)
    assert float(lfm_loss(fused, _uni(), y, (0.3, 0.7))) == pytest.approx(float(want))


def test_hvp_signal_of_a_quadratic() -> None:
    x = torch.tensor([0.5, -1.0], requires_grad=True)
    z = torch.tensor([2.0], requires_grad=True)
    a = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    b = torch.tensor([1.0, 2.0])
    total = 0.5 * x @ a @ x + x[0] * z[0]
    cls = b @ x + 3 * z[0]
    # H = [[A, e1], [e1^T, 0]], v = (b, 3): H v = (A b + 3 e1, b_0) = ((7, 7), 1)
    assert float(lfm_hvp_signal(total, cls, [x, z])) == pytest.approx(7.0)
    total = 0.5 * x @ a @ x + x[0] * z[0]
    cls = b @ x + 3 * z[0]
    assert float(lfm_hvp_signal(total, cls, [x, z], scope="all")) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="scope"):
        lfm_hvp_signal(total, cls, [x, z], scope="last")


def test_step_size_update_and_fitted() -> None:
    assert [lfm_step_size(e, 1e-4) for e in (0, 19, 20, 39, 40, 45)] == pytest.approx(
        [1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5, 2.5e-5]
    )
    assert lfm_update_weight(0.5, 2.0, 0.1) == pytest.approx(0.3)
    assert lfm_update_weight(0.5, -2.0, 0.1) == pytest.approx(0.7)
    assert lfm_update_weight(0.1, 10.0, 0.1) == 0.05 and lfm_update_weight(0.9, -10.0, 0.1) == 0.95
    assert lfm_fitted_weights(0) == pytest.approx((0.204623704, 0.795376296))
    ce, align = lfm_fitted_weights(10)
    assert ce == pytest.approx(
        0.204623704 + 0.0335472727 + 0.0122989557 - 0.00292947416 + 0.000223835486 - 5.39717505e-6
    )
    assert ce + align == pytest.approx(1.0)
