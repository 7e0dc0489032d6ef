"""Greedy learning speeds, BDR difference, curation decision, utilisation rate."""

from __future__ import annotations

import math

import pytest
import torch

from mmcoop.errors import ConfigError
from mmcoop.methods.functional import (
    conditional_utilization_rate,
    greedy_bdr_difference,
    greedy_curation,
    learning_speed,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_learning_speed_by_hand() -> None:
    # ||g||^2 / ||w||^2 = (4/2, 1/4)
    assert learning_speed(torch.tensor([4.0, 1.0]), torch.tensor([2.0, 4.0])).tolist() == [2.0, 0.25]


def test_bdr_difference_by_hand() -> None:
    # BDR = log10(bypass / main) = (log10 10, log10 1) = (1, 0) -> d = 1
    assert greedy_bdr_difference(torch.tensor([10.0, 1.0]), torch.tensor([1.0, 1.0])) == pytest.approx(1.0)
    assert greedy_bdr_difference(torch.tensor([1.0, 1.0]), torch.tensor([10.0, 1.0])) == pytest.approx(-1.0)
    # cumulative speeds: two steps with speeds (bypass 3,1; main 1,1) then (1,1; 1,1)
    ones = torch.ones(2)
    bypass = learning_speed(torch.tensor([3.0, 1.0]), ones) + learning_speed(ones, ones)
    main = 2 * learning_speed(torch.ones(2), torch.ones(2))
    assert greedy_bdr_difference(bypass, main) == pytest.approx(math.log10(4 / 2) - math.log10(2 / 2))
    with pytest.raises(ConfigError, match="two modalities"):
        greedy_bdr_difference(torch.ones(3), torch.ones(3))


def test_curation_decision() -> None:
    assert greedy_curation(1.0) == (True, 0)  # BDR0 > BDR1 -> care for modality 0
    assert greedy_curation(-1.0) == (True, 1)
    assert greedy_curation(0.005) == (False, 0)  # within epsilon = 0.01
    assert greedy_curation(0.01) == (False, 0)  # official test is |d| > epsilon
    assert greedy_curation(float("nan")) == (False, 0)


def test_utilization_rate_by_hand() -> None:
    assert conditional_utilization_rate(0.8, 0.6) == pytest.approx(0.25)  # (0.8 - 0.6) / 0.8
    assert conditional_utilization_rate(0.8, 0.9) == pytest.approx(-0.125)  # the flow hurts
    assert conditional_utilization_rate(0.0, 0.0) == 0.0
