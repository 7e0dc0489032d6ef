"""CML's confidence rises, penalty (batch-sum and per-sample hinge, DDP gate) and loss by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from mmcoop.methods.functional import cml_confidence_rises, cml_loss, cml_penalty, max_confidence

pytestmark = pytest.mark.usefixtures("one_thread")

L2 = math.log(2.0)


def _chain() -> torch.Tensor:
    # [K=2, B=2, C=2]; full: sample 0 certain-ish, sample 1 uniform; reduced: the reverse
    full = torch.tensor([[L2 + math.log(2.0), 0.0], [0.0, 0.0]])  # softmax (0.8, 0.2), (0.5, 0.5)
    reduced = torch.tensor([[0.0, 0.0], [0.0, 2 * L2]])  # (0.5, 0.5), (0.2, 0.8)
    return torch.stack([full, reduced])


def test_confidences_rises_and_penalties_by_hand() -> None:
    chain = _chain()
    torch.testing.assert_close(max_confidence(chain[0]), torch.tensor([0.8, 0.5]))
    torch.testing.assert_close(cml_confidence_rises(chain), torch.tensor([[0.5 - 0.8, 0.8 - 0.5]]))
    # batch sum -0.3 + 0.3 = 0 -> hinge 0; per sample: relu(-0.3) + relu(0.3) = 0.3
    assert float(cml_penalty(cml_confidence_rises(chain))) == pytest.approx(0.0, abs=1e-7)
    assert float(cml_penalty(cml_confidence_rises(chain), per_sample=True)) == pytest.approx(0.3)
    rises = torch.tensor([[0.1, 0.3], [-0.5, 0.2]])  # step sums 0.4, -0.3
    assert float(cml_penalty(rises)) == pytest.approx(0.4)
    # under DDP the gate comes from the whole distributed batch: an open gate passes a negative local sum
    assert float(cml_penalty(rises, gate=torch.tensor([True, True]))) == pytest.approx(0.1)
    assert float(cml_penalty(rises, gate=torch.tensor([False, True]))) == pytest.approx(-0.3)


def test_loss_by_hand() -> None:
    chain = _chain()
    chain[1, 1] = torch.tensor([0.0, 3 * L2])  # sample 1 reduced: (1/9, 8/9): rise 8/9 - 1/2
    y = torch.tensor([0, 1])
    ce = (F.cross_entropy(chain[0], y) + F.cross_entropy(chain[1], y)) / 2
    rise = (0.5 - 0.8) + (8 / 9 - 0.5)
    assert rise > 0
    torch.testing.assert_close(cml_loss(chain, y, 0.1), ce + 0.1 * rise)
    torch.testing.assert_close(cml_loss(chain, y, 0.0), ce)
