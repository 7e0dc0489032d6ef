"""The permutation-sampling Shapley estimator."""

from __future__ import annotations

import math

import pytest
import torch

from mmcoop.valuation import coalition_masks, masks_to_index, shapley_from_coalitions, shapley_permutation

from _helpers import random_values

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_one_modality_is_exact() -> None:
    v = torch.tensor([[0.25, 1.0]])
    phi, se = shapley_permutation(v, 3)
    assert phi.tolist() == [[0.75]] and se.tolist() == [[0.0]]


def test_two_modalities_antithetic_is_exact() -> None:
    # paper values of all 8 correctness cases: one ordering plus its reverse covers both orderings
    cases = torch.tensor([[0.0, a, v, 2.0 * av] for av in (0, 1) for a in (0, 1) for v in (0, 1)])
    phi, se = shapley_permutation(cases, 6, generator=gen(0))
    assert torch.equal(phi, shapley_from_coalitions(cases))
    assert torch.equal(se, torch.zeros_like(se))


@pytest.mark.parametrize("antithetic", [True, False])
def test_converges_to_exact(antithetic: bool) -> None:
    m, b = 5, 32
    v = random_values(m, b, 1)
    exact = shapley_from_coalitions(v)
    errors, ses = [], []
    for p in (32, 2048):
        phi, se = shapley_permutation(v, p, antithetic=antithetic, generator=gen(p))
        errors.append(float((phi - exact).abs().mean()))
        ses.append(float(se.mean()))
        # the standard error describes the actual error: |z| small for nearly all entries
        z = ((phi - exact) / se).abs()
        assert float((z < 4).double().mean()) > 0.97
        # each permutation satisfies efficiency, so does the mean
        torch.testing.assert_close(phi.sum(1), v[:, -1] - v[:, 0])
    assert errors[1] < errors[0] / 4
    assert 4 < ses[0] / ses[1] < 12  # ~ sqrt(2048 / 32) = 8


def test_antithetic_variance_not_worse_on_smooth_game() -> None:
    m, b = 6, 64
    masks = coalition_masks(m).double()
    w = torch.randn(b, m, generator=gen(3), dtype=torch.float64)
    v = (masks @ w.T).T + 0.1 * (masks.sum(1) ** 2)  # additive plus a symmetric interaction
    _, se_a = shapley_permutation(v, 200, antithetic=True, generator=gen(4))
    _, se_i = shapley_permutation(v, 200, antithetic=False, generator=gen(4))
    assert float(se_a.mean()) <= float(se_i.mean())


def test_callable_matches_table() -> None:
    m, b = 4, 8
    v = random_values(m, b, 2)
    calls: list[tuple[int, ...]] = []

    def fn(masks: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(masks.shape))
        idx = masks_to_index(masks)  # [B|1, K]
        return v.gather(1, idx.expand(b, -1))

    a = shapley_permutation(v, 50, generator=gen(7))
    c = shapley_permutation(fn, 50, num_modalities=m, generator=gen(7))
    torch.testing.assert_close(a, c)
    assert calls[0] == (1, 2, m)  # empty + full, once
    assert all(shape[0] == b and shape[2] == m for shape in calls[1:])
    with pytest.raises(ValueError):
        shapley_permutation(fn, 10)


def test_deterministic_chunking_and_1d() -> None:
    v = random_values(4, 5, 3)
    a = shapley_permutation(v, 40, generator=gen(1))
    b = shapley_permutation(v, 40, generator=gen(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # chunked draws (the draws differ, the estimate is equally valid)
    c = shapley_permutation(v, 40, generator=gen(1), chunk_size=3)
    torch.testing.assert_close(c[0].sum(1), v[:, -1] - v[:, 0])
    assert float(((c[0] - shapley_from_coalitions(v)) / c[1]).abs().max()) < 5
    one, se = shapley_permutation(v[0], 40, generator=gen(1))
    assert one.shape == (4,) and se.shape == (4,)


def test_single_draw_has_nan_stderr_and_validation() -> None:
    phi, se = shapley_permutation(random_values(3, 2, 0), 1, antithetic=False)
    assert bool(se.isnan().all()) and not bool(phi.isnan().any())
    with pytest.raises(ValueError):
        shapley_permutation(random_values(3, 2, 0), 0)
    with pytest.raises(ValueError):
        shapley_permutation(torch.rand(2, 6), 4)
    assert math.isfinite(float(shapley_permutation(random_values(3, 2, 0), 3)[1].sum()))
