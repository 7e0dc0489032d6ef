"""ReconBoost boosting loss with the reconcilement term and the others' ensemble."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcoop.errors import ConfigError
from mmcoop.methods.functional import reconboost_ensemble_logits, reconboost_loss

pytestmark = pytest.mark.usefixtures("one_thread")
LN3 = math.log(3.0)


def test_ensemble_excludes_current_learner() -> None:
    learners = torch.arange(12, dtype=torch.float32).view(3, 2, 2)
    out = reconboost_ensemble_logits(learners, exclude=1, boost_rate=0.5)
    assert torch.equal(out, 0.5 * (learners[0] + learners[2]))
    assert torch.equal(reconboost_ensemble_logits(learners, exclude=None), learners.sum(0))


def test_loss_and_gradient_by_hand() -> None:
    logits = torch.tensor([[LN3, 0.0]], requires_grad=True)  # p = (.75, .25), y = 0
    others = torch.zeros(1, 2)  # q_y = 0.5
    # per sample: -(w1 - w2 q_y) log p_y / C = -(5 - 0.5) ln .75 / 2
    loss = reconboost_loss(logits, others, torch.tensor([0]), weight1=5.0, weight2=1.0)
    assert loss.item() == pytest.approx(-4.5 * math.log(0.75) / 2, abs=1e-6)
    loss.backward()  # (w1 - w2 q_y)/C * (p - onehot) = 2.25 * (-.25, .25)
    assert logits.grad[0].tolist() == pytest.approx([-0.5625, 0.5625], abs=1e-6)
    raw = reconboost_loss(logits.detach(), others, torch.tensor([0]), class_mean=False)
    assert float(raw) == pytest.approx(-4.5 * math.log(0.75), abs=1e-6)


def test_first_stage_and_confident_others() -> None:
    logits = torch.tensor([[LN3, 0.0]])
    # no other learner yet: the official [B, 1] constant softmaxes to q_y = 1 -> weight w1 - w2.
    first = reconboost_loss(logits, None, torch.tensor([0]))
    assert first.item() == pytest.approx(-4 * math.log(0.75) / 2, abs=1e-6)
    # others already sure of the true class and w2 = w1: nothing left to learn.
    sure = torch.tensor([[50.0, -50.0]])
    done = reconboost_loss(logits, sure, torch.tensor([0]), weight1=1.0, weight2=1.0)
    assert done.item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError, match="weight"):
        reconboost_loss(logits, None, torch.tensor([0]), weight1=-1.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(2, 5), st.integers(0, 2**16), st.floats(0, 5), st.floats(0, 5))
def test_matches_official_one_hot_form(b: int, c: int, seed: int, w1: float, w2: float) -> None:
    g = torch.Generator().manual_seed(seed)
    logits, others = torch.randn(b, c, generator=g), torch.randn(b, c, generator=g)
    y = torch.randint(c, (b,), generator=g)
    target = torch.zeros(b, c).scatter_(1, y.view(-1, 1), 1)
    ref = (
        -w1 * (target * logits.log_softmax(1)).mean(-1)
        + w2 * (target * others.softmax(1) * logits.log_softmax(1)).mean(-1)
    ).mean()
    assert float(reconboost_loss(logits, others, y, w1, w2)) == pytest.approx(float(ref), abs=1e-5)
