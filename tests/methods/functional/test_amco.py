"""AMCo's mask ratio schedule, class mask and softmax shares by hand."""

from __future__ import annotations

import math

import pytest
import torch

from mmcoop.methods.functional import amco_class_mask, amco_mask_ratio, amco_softmax_shares

pytestmark = pytest.mark.usefixtures("one_thread")


def test_mask_ratio_schedule() -> None:
    assert amco_mask_ratio(0.0, 0.3) == 0.0
    assert amco_mask_ratio(0.15, 0.3) == pytest.approx(math.sin(math.pi / 4))
    assert amco_mask_ratio(0.3, 0.3) == pytest.approx(1.0)
    assert amco_mask_ratio(5.0, 0.3) == pytest.approx(1.0)  # capped at eps
    with pytest.raises(ValueError, match="eps"):
        amco_mask_ratio(0.1, 0.0)


def test_class_mask_counts_and_seeding() -> None:
    a = amco_class_mask(10, math.sin(math.pi / 4), torch.Generator().manual_seed(1))
    assert a.shape == (10,) and int((a == 0).sum()) == 7 and int((a == 1).sum()) == 3  # int(0.707 * 10)
    assert torch.equal(a, amco_class_mask(10, math.sin(math.pi / 4), torch.Generator().manual_seed(1)))
    assert torch.equal(amco_class_mask(6, 0.0), torch.ones(6))
    assert torch.equal(amco_class_mask(6, 1.0), torch.zeros(6))


def test_softmax_shares_by_hand() -> None:
    uni = torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, math.log(2.0)]]])  # [M=2, B=2, C=2]
    # sample 0: concat (3, 1, 1, 1) / 6 -> shares (4/6, 2/6); sample 1: (1, 1, 1, 2) / 5 -> (2/5, 3/5)
    torch.testing.assert_close(amco_softmax_shares(uni), torch.tensor([4 / 6 + 2 / 5, 2 / 6 + 3 / 5]))
