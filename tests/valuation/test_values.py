"""Value functions and the v(empty) convention."""

from __future__ import annotations

import pytest
import torch

from mmcoop.errors import ConfigError
from mmcoop.valuation import (
    VALUE_FUNCTIONS,
    coalition_masks,
    coalition_values,
    get_value_function,
    shapley_from_coalitions,
)

from _helpers import HAND_TABLE  # (fused, audio, visual correct) -> (phi_a, phi_v), by hand

pytestmark = pytest.mark.usefixtures("one_thread")


RIGHT, WRONG = [6.0, 1.0, 0.0], [1.0, 6.0, 0.0]  # label 0


def logits_for(case: tuple[int, int, int]) -> torch.Tensor:
    """Coalition logits [1, 4, 3] (empty, a, v, av) from (fused, audio, visual) correctness."""
    av, a, v = case
    rows = [WRONG, RIGHT if a else WRONG, RIGHT if v else WRONG, RIGHT if av else WRONG]
    return torch.tensor([rows])


def test_registry() -> None:
    assert {"paper", "correct", "prob", "logprob"} <= set(VALUE_FUNCTIONS.names())
    assert get_value_function("paper").default_empty == "zero"
    assert get_value_function("correct").default_empty == "zero"
    assert get_value_function("prob").default_empty == "model"
    assert get_value_function("logprob").default_empty == "model"
    with pytest.raises(ConfigError):
        get_value_function("nope")
    with pytest.raises(ConfigError):
        coalition_values(torch.zeros(1, 4, 3), torch.zeros(1, dtype=torch.long), coalition_masks(2), "paper", "bias")


@pytest.mark.parametrize("case", sorted(HAND_TABLE))
def test_paper_values_match_official_code(case: tuple[int, int, int]) -> None:
    av, a, v = case
    values = coalition_values(logits_for(case), torch.tensor([0]), coalition_masks(2), "paper")
    # official code: v(a) = 1 if correct, v(v) = 1 if correct, v(av) = 2 if correct, v(empty) = 0
    assert values[0].tolist() == [0.0, float(a), float(v), 2.0 * av]
    assert shapley_from_coalitions(values)[0].tolist() == list(HAND_TABLE[case])


def test_correct_and_empty_conventions() -> None:
    logits = torch.tensor([[RIGHT, RIGHT, WRONG, RIGHT]])  # the empty coalition (bias only) happens to be right
    y, masks = torch.tensor([0]), coalition_masks(2)
    assert coalition_values(logits, y, masks, "correct")[0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert coalition_values(logits, y, masks, "correct", "model")[0].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert coalition_values(logits, y, masks, "paper", "model")[0].tolist() == [0.0, 1.0, 0.0, 2.0]


def test_prob_and_logprob() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 8, 4, generator=g)
    y = torch.randint(0, 4, (5,), generator=g)
    masks = coalition_masks(3)
    p = coalition_values(logits, y, masks, "prob")
    lp = coalition_values(logits, y, masks, "logprob")
    ref = logits.softmax(-1)[torch.arange(5), :, y]
    torch.testing.assert_close(p, ref)
    torch.testing.assert_close(lp, ref.log())
    p0 = coalition_values(logits, y, masks, "prob", "zero")
    assert bool((p0[:, 0] == 0).all()) and torch.equal(p0[:, 1:], p[:, 1:])
    # bf16 logits are scored in float32
    assert coalition_values(logits.bfloat16(), y, masks, "prob").dtype == torch.float32


def test_per_sample_masks() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, 5, generator=g)
    y = torch.randint(0, 5, (3,), generator=g)
    shared = coalition_masks(2)
    per_sample = shared.unsqueeze(0).expand(3, 4, 2)
    for name in VALUE_FUNCTIONS.names():
        for empty in ("zero", "model"):
            a = coalition_values(logits, y, shared, name, empty)
            b = coalition_values(logits, y, per_sample, name, empty)
            assert a.shape == (3, 4)
            torch.testing.assert_close(a, b)
