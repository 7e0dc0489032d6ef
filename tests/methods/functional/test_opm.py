"""OPM drop probabilities, keep-mask and the rescaled feature drop."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcoop.errors import ConfigError
from mmcoop.methods.functional import opm_drop_features, opm_drop_probabilities, opm_keep_mask

pytestmark = pytest.mark.usefixtures("one_thread")


def test_drop_probabilities_by_hand() -> None:
    # s = (3, 1): rho = (3, 1/3); r = tanh(relu(rho - 1)) = (tanh 2, 0);
    # q0 = 0.5 * (1 + 0.5 * tanh 2), q1 = 0 (the weak modality is never dropped).
    q = opm_drop_probabilities(torch.tensor([3.0, 1.0]), q_base=0.5, lam=0.5, eps=0.0)
    assert q.tolist() == pytest.approx([0.5 * (1 + 0.5 * math.tanh(2.0)), 0.0], abs=1e-6)
    # M = 3, s = (3, 1, 2): rho = (2.25, 5/12, 4/3) -> r = (tanh 1.25, 0, tanh 1/3).
    q3 = opm_drop_probabilities(torch.tensor([3.0, 1.0, 2.0]), q_base=0.4, lam=0.5, eps=0.0)
    assert q3.tolist() == pytest.approx(
        [0.4 * (1 + 0.5 * math.tanh(1.25)), 0.0, 0.4 * (1 + 0.5 * math.tanh(1 / 3))], abs=1e-6
    )


def test_drop_probabilities_edges() -> None:
    assert opm_drop_probabilities(torch.tensor([2.0, 2.0])).tolist() == [0.0, 0.0]  # tie
    # zero score: rho0 huge -> tanh -> 1 -> q0 = 0.5 * 1.5 = 0.75.
    assert opm_drop_probabilities(torch.tensor([1.0, 0.0])).tolist() == pytest.approx([0.75, 0.0])
    # q_base * (1 + lam) = 1.35 is clipped to 1.
    assert opm_drop_probabilities(torch.tensor([1.0, 0.0]), q_base=0.9, lam=0.5).tolist() == [1.0, 0.0]
    with pytest.raises(ConfigError, match="q_base"):
        opm_drop_probabilities(torch.tensor([1.0, 2.0]), q_base=1.5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 64.0), min_size=2, max_size=6), st.floats(0.0, 1.0), st.floats(0.0, 2.0))
def test_probability_laws(scores: list[float], q_base: float, lam: float) -> None:
    s = torch.tensor(scores)
    q = opm_drop_probabilities(s, q_base=q_base, lam=lam)
    assert bool(((q >= 0) & (q <= 1)).all())
    assert float(q[int(s.argmin())]) == 0.0


def test_keep_mask_extremes_and_rate() -> None:
    keep = opm_keep_mask(torch.tensor([0.0, 1.0]), 50, generator=torch.Generator().manual_seed(0))
    assert keep.shape == (50, 2) and bool((keep[:, 0] == 1).all()) and bool((keep[:, 1] == 0).all())
    many = opm_keep_mask(torch.tensor([0.3, 0.0]), 20000, generator=torch.Generator().manual_seed(1))
    assert abs(float(many[:, 0].mean()) - 0.7) < 0.02  # P(keep) = 1 - q


def test_drop_features_by_hand() -> None:
    a, v = torch.ones(2, 2), torch.full((2, 4), 2.0)
    q = torch.tensor([0.5, 0.0])
    # theta = (2 * 0.5 + 4 * 0) / 6 = 1/6 -> kept features are scaled by 1 / (1 - 1/6) = 1.2.
    keep = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    (fa, fv), upd = opm_drop_features([a, v], keep, q)
    assert torch.allclose(fa, torch.tensor([[1.2, 1.2], [0.0, 0.0]]))
    assert torch.allclose(fv, torch.full((2, 4), 2.4))
    assert upd.tolist() == [True, True]
    _, upd2 = opm_drop_features([a, v], torch.tensor([[0.0, 0.0], [1.0, 1.0]]), q)
    assert upd2.tolist() == [False, True]  # sample 0 lost every modality -> out of the loss
    # every q = 1: theta = 1, the floor keeps it finite and everything is dropped.
    (ga, gv), upd3 = opm_drop_features([a, v], torch.zeros(2, 2), torch.ones(2))
    assert torch.isfinite(ga).all() and float(ga.abs().sum() + gv.abs().sum()) == 0.0
    assert upd3.tolist() == [False, False]
