"""Re-sampling plans: hand cases, band edges, modality-level ratio and draws, subset Z."""

from __future__ import annotations

import math

import pytest
import torch

from mmcoop.enhance import (
    ResamplingPlan,
    modality_level_plan,
    modality_level_ratio,
    sample_copies,
    sample_level_plan,
    subset_for_valuation,
)
from mmcoop.errors import ConfigError

# (v_av, v_a, v_v) -> copies (a, v), the paper's value function (v(S) = |S| if correct).
HAND = [
    ((0, 0, 0), (2, 2)),
    ((0, 0, 1), (3, 1)),
    ((0, 1, 0), (1, 3)),
    ((0, 1, 1), (2, 2)),
    ((2, 0, 0), (0, 0)),
    ((2, 0, 1), (1, 0)),
    ((2, 1, 0), (0, 1)),
    ((2, 1, 1), (0, 0)),
]


def _phi(v_av: float, v_a: float, v_v: float) -> tuple[float, float]:
    return (v_a + v_av - v_v) / 2, (v_v + v_av - v_a) / 2


@pytest.mark.parametrize("values,expected", HAND)
def test_sample_level_hand_cases(values, expected) -> None:
    phi = torch.tensor([_phi(*values)], dtype=torch.float32)
    assert sample_copies(phi).tolist() == [list(expected)]


def test_sample_level_plan_all_cases_at_once() -> None:
    phi = torch.tensor([_phi(*v) for v, _ in HAND])
    rows = torch.arange(len(HAND)) * 10 + 3
    plan = sample_level_plan(phi, rows, modalities=["a", "v"])
    want = torch.tensor([c for _, c in HAND])
    counts = plan.copies_per_sample(int(rows.max()) + 1)[rows]
    assert torch.equal(counts, want)
    assert plan.keep.sum(1).eq(1).all()  # exactly one modality kept per unit
    assert len(plan) == int(want.sum())
    assert plan.summary() == {
        "units": int(want.sum()),
        "units_a": int(want[:, 0].sum()),
        "units_v": int(want[:, 1].sum()),
    }
    # the units of a row keep the modality whose copies they count
    assert set(plan.rows.tolist()) <= set(rows.tolist())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_band_edges(dtype) -> None:
    phi = torch.tensor([[1.0, 0.4], [-0.1, 0.9999], [0.40001, -0.09999], [1.5, -0.5]], dtype=dtype)
    assert sample_copies(phi).tolist() == [[0, 2], [3, 1], [1, 2], [0, 3]]


def test_custom_thresholds_and_validation() -> None:
    phi = torch.tensor([[0.5, 0.0]])
    assert sample_copies(phi, thresholds=((0.9, 0), (0.0, 5)), max_copies=7).tolist() == [[5, 7]]
    with pytest.raises(ConfigError):
        sample_copies(phi, thresholds=((0.4, 1), (1.0, 0)))
    with pytest.raises(ConfigError):
        sample_copies(phi, thresholds=((1.0, -1),))


def test_empty_plan_and_state_roundtrip() -> None:
    plan = sample_level_plan(torch.ones(4, 3), modalities=["x", "y", "z"])
    assert len(plan) == 0 and plan.copies_per_sample(4).sum() == 0
    full = sample_level_plan(torch.tensor([[0.0, 1.0, -0.5]]), torch.tensor([2]))
    again = ResamplingPlan.from_state_dict(full.state_dict())
    assert torch.equal(again.rows, full.rows) and torch.equal(again.keep, full.keep)
    assert full.copies_per_sample(3).tolist() == [[0, 0, 0], [0, 0, 0], [2, 0, 3]]


@pytest.mark.parametrize("func", ["linear", "tanh", "pow1.5"])
@pytest.mark.parametrize("alpha", [1.0, 0.7])
def test_modality_level_ratio_by_hand(func, alpha) -> None:
    mean_phi = [0.9, 0.3]  # gap_a = 0.1, gap_v = 0.7 -> x = 0.6 * 2/3 = 0.4
    x = abs((1 - 0.9) - (1 - 0.3)) * 2 / 3
    want = {"linear": alpha * x, "tanh": math.tanh(alpha * x), "pow1.5": alpha * x**1.5}[func]
    p = modality_level_ratio(mean_phi, alpha, func)
    assert p[0] == 0.0
    assert p[1].item() == pytest.approx(want, abs=1e-12)


def test_ratio_is_clipped_and_func_validated() -> None:
    assert modality_level_ratio([1.5, -0.5], alpha=10.0).tolist() == [0.0, 1.0]
    with pytest.raises(ConfigError, match="linear"):
        modality_level_ratio([1.0, 0.5], func="square")


def test_modality_level_plan_draws_distinct_and_keeps_larger_gap() -> None:
    n = 1000
    rows = torch.arange(n) + 5000
    mean_phi = torch.tensor([0.4, 1.1])  # gap_a = 0.6 > gap_v = -0.1: audio weaker
    p = abs(0.6 - (-0.1)) * 2 / 3
    g = torch.Generator().manual_seed(3)
    plan = modality_level_plan(mean_phi, n, rows, generator=g, modalities=["audio", "visual"])
    assert len(plan) == math.floor(p * n + 0.5) == 467
    assert plan.rows.unique().numel() == len(plan)
    assert set(plan.rows.tolist()) <= set(rows.tolist())
    assert plan.keep[:, 0].all() and not plan.keep[:, 1].any()
    again = modality_level_plan(mean_phi, n, rows, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again.rows, plan.rows)
    other = modality_level_plan(mean_phi, n, rows, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(other.rows, plan.rows)
    swapped = modality_level_plan(mean_phi.flip(0), n, rows, generator=torch.Generator().manual_seed(3))
    assert swapped.keep[:, 1].all() and not swapped.keep[:, 0].any()


def test_modality_level_plan_three_modalities() -> None:
    plan = modality_level_plan([1.0, 0.7, 0.4], 300, generator=torch.Generator().manual_seed(0))
    per = plan.units_per_modality().tolist()
    assert per == [0, round(0.3 * 2 / 3 * 300), round(0.6 * 2 / 3 * 300)]  # 60, 120
    assert plan.keep.sum(1).eq(1).all()


def test_balanced_modalities_give_no_units() -> None:
    assert len(modality_level_plan([0.8, 0.8], 50)) == 0


def test_subset_for_valuation() -> None:
    z = subset_for_valuation(1001, 0.2, torch.Generator().manual_seed(1))
    assert z.numel() == 200 and z.unique().numel() == 200 and int(z.max()) < 1001
    assert torch.equal(z, subset_for_valuation(1001, 0.2, torch.Generator().manual_seed(1)))
    assert subset_for_valuation(3, 0.1).numel() == 1
    with pytest.raises(ConfigError):
        subset_for_valuation(10, 0.0)
