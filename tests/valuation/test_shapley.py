"""Exact Shapley values: the weight matrix against the definition, and the axioms."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcoop.valuation import coalition_masks, shapley_from_coalitions, shapley_matrix

from _helpers import HAND_TABLE, brute_force_shapley, random_values

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("case", sorted(HAND_TABLE))
def test_two_modalities_hand_table(case: tuple[int, int, int]) -> None:
    av, a, v = case
    values = torch.tensor([[0.0, 1.0 * a, 1.0 * v, 2.0 * av]])
    phi = shapley_from_coalitions(values)
    assert phi[0].tolist() == list(HAND_TABLE[case])
    assert float(phi.sum()) == 2.0 * av  # efficiency: phi_a + phi_v = v(N)


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_matrix_equals_permutation_definition(m: int) -> None:
    values = random_values(m, b=6, seed=m)
    torch.testing.assert_close(shapley_from_coalitions(values), brute_force_shapley(values, m), rtol=1e-12, atol=1e-12)


def test_matrix_structure_and_cache() -> None:
    for m in (1, 2, 3, 6):
        w = shapley_matrix(m)
        assert w.shape == (2**m, m) and w.dtype == torch.float64
        torch.testing.assert_close(w.sum(0), torch.zeros(m, dtype=torch.float64), atol=1e-12, rtol=0)
        torch.testing.assert_close(w[-1], torch.full((m,), 1.0 / m, dtype=torch.float64))
        torch.testing.assert_close(w[0], torch.full((m,), -1.0 / m, dtype=torch.float64))
        masks = coalition_masks(m)
        assert bool((w[masks] > 0).all()) and bool((w[~masks] < 0).all())
    assert shapley_matrix(4) is shapley_matrix(4)
    assert shapley_matrix(3, torch.float32).dtype == torch.float32
    with pytest.raises(ValueError):
        shapley_matrix(0)


def test_dtypes_and_shapes() -> None:
    v = torch.randint(0, 3, (5, 8))
    assert shapley_from_coalitions(v).dtype == torch.float32
    assert shapley_from_coalitions(v.double()).dtype == torch.float64
    assert shapley_from_coalitions(torch.rand(2, 3, 8)).shape == (2, 3, 3)
    with pytest.raises(ValueError):
        shapley_from_coalitions(torch.rand(4, 6))
    with pytest.raises(ValueError):
        shapley_from_coalitions(torch.rand(4, 1))


@pytest.mark.parametrize("m", [3, 5, 7, 11])
def test_integer_games_are_exact(m: int) -> None:
    # v(S) = |S| - 1 for S != empty: phi_k = 1 - 1/M (rounded once); v(S) = |S|: exactly 1
    sizes = coalition_masks(m).sum(1).float()
    assert torch.equal(shapley_from_coalitions(sizes.unsqueeze(0))[0], torch.ones(m))
    shifted = (sizes - 1).clamp_min(0)
    expect = torch.full((m,), 1.0 - 1.0 / m, dtype=torch.float64).float()
    assert torch.equal(shapley_from_coalitions(shifted.unsqueeze(0))[0], expect)


def test_one_modality() -> None:
    v = torch.tensor([[0.3, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(shapley_from_coalitions(v), torch.tensor([[0.7], [0.0]]))


def test_twelve_modalities() -> None:
    m = 12
    masks = coalition_masks(m)
    # additive game: v(S) = sum_{k in S} a_k  ->  phi_k = a_k exactly
    a = torch.linspace(-1, 1, m, dtype=torch.float64)
    values = (masks.double() @ a).unsqueeze(0)
    torch.testing.assert_close(shapley_from_coalitions(values)[0], a)
    # paper game of a balanced, always-correct sample: v(S) = |S| -> phi_k = 1 exactly (float32 too)
    assert torch.equal(shapley_from_coalitions(masks.sum(1, keepdim=True).T.float())[0], torch.ones(m))
    v = random_values(m, b=3, seed=0)
    phi = shapley_from_coalitions(v)
    torch.testing.assert_close(phi.sum(1), v[:, -1] - v[:, 0])


ms = st.integers(min_value=1, max_value=6)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


@settings(max_examples=30, deadline=None)
@given(m=ms, seed=seeds)
def test_efficiency(m: int, seed: int) -> None:
    v = random_values(m, seed=seed)
    torch.testing.assert_close(shapley_from_coalitions(v).sum(1), v[:, -1] - v[:, 0])


@settings(max_examples=30, deadline=None)
@given(m=st.integers(min_value=2, max_value=6), seed=seeds, data=st.data())
def test_symmetry(m: int, seed: int, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, m - 1))
    j = data.draw(st.integers(0, m - 1).filter(lambda x: x != i))
    v = random_values(m, seed=seed)
    c = torch.arange(2**m)
    bi, bj = (c >> i) & 1, (c >> j) & 1
    swapped = c - (bi << i) - (bj << j) + (bi << j) + (bj << i)
    v_sym = 0.5 * (v + v[:, swapped])  # i and j are interchangeable
    phi = shapley_from_coalitions(v_sym)
    torch.testing.assert_close(phi[:, i], phi[:, j])


@settings(max_examples=30, deadline=None)
@given(m=ms, seed=seeds, data=st.data())
def test_null_player(m: int, seed: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, m - 1))
    v = random_values(m, seed=seed)
    c = torch.arange(2**m)
    v_null = v[:, c & ~(1 << k)]  # v(S + k) = v(S)
    phi = shapley_from_coalitions(v_null)
    torch.testing.assert_close(phi[:, k], torch.zeros(v.shape[0], dtype=torch.float64), atol=1e-12, rtol=0)


@settings(max_examples=30, deadline=None)
@given(m=ms, seed=seeds, a=st.floats(-5, 5), b=st.floats(-5, 5))
def test_linearity(m: int, seed: int, a: float, b: float) -> None:
    v1, v2 = random_values(m, seed=seed), random_values(m, seed=seed + 1)
    lhs = shapley_from_coalitions(a * v1 + b * v2)
    rhs = a * shapley_from_coalitions(v1) + b * shapley_from_coalitions(v2)
    torch.testing.assert_close(lhs, rhs, atol=1e-10, rtol=1e-10)
