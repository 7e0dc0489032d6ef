"""DivergenceGuard: non-finite losses and explosions over the first loss stop training with one message."""

from __future__ import annotations

import math

import pytest
import torch

from _helpers import tiny_data, tiny_model
from mmcoop.errors import ConfigError, MMCoopError
from mmcoop.train import TrainConfig
from mmcoop.train.divergence import DivergenceGuard

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_stops_even_when_disabled(bad):
    for guard in (DivergenceGuard(1e4), DivergenceGuard(None)):
        guard.check(2.0, 1, 0)
        with pytest.raises(MMCoopError, match=r"diverged at epoch 3, step 7: the loss became"):
            guard.check(bad, 3, 7)


def test_threshold_is_factor_times_the_first_loss():
    guard = DivergenceGuard(100.0)
    guard.check(2.0, 1, 0)  # reference 2.0 -> limit 200
    guard.check(200.0, 1, 1)  # at the limit: fine
    guard.check(0.01, 1, 2)  # falling is fine and does not move the reference
    with pytest.raises(
        MMCoopError, match=r"loss 200\.1 is more than train.divergence_factor=100 times its start \(2\)"
    ):
        guard.check(200.1, 2, 4)


def test_disabled_factor_only_checks_finiteness():
    guard = DivergenceGuard(None)
    guard.check(1.0, 1, 0)
    guard.check(1e30, 1, 1)


def test_a_tiny_first_loss_uses_the_floor():
    guard = DivergenceGuard(1e4, floor=1e-3)
    guard.check(1e-6, 1, 0)  # reference max(1e-6, 1e-3) = 1e-3 -> limit 10
    guard.check(9.0, 1, 1)
    with pytest.raises(MMCoopError):
        guard.check(11.0, 1, 2)


def test_state_round_trip_and_tensor_losses():
    guard = DivergenceGuard(10.0)
    guard.check(torch.tensor(3.0), 1, 0)
    again = DivergenceGuard(10.0)
    again.load_state_dict(guard.state_dict())
    assert again.reference == 3.0
    again.check(torch.tensor(30.0), 5, 0)
    with pytest.raises(MMCoopError):
        again.check(torch.tensor(31.0), 5, 1)  # a resumed run compares against the original start


def test_config_field_and_validation():
    assert DivergenceGuard.from_config(TrainConfig()).factor == 1e4
    assert DivergenceGuard.from_config(TrainConfig(divergence_factor=None)).factor is None
    for bad in (1.0, 0.5, -3.0, math.inf):
        with pytest.raises(ConfigError, match="train.divergence_factor"):
            TrainConfig(divergence_factor=bad)
    with pytest.raises(ValueError):
        DivergenceGuard(1.0)


def test_adam_with_a_huge_lr_is_caught():
    """The reported case: Adam with lr=1e6 reached loss ~1e21 and the run exited 0."""
    data = tiny_data(48)
    model = tiny_model(data)
    opt = torch.optim.Adam(model.parameters(), lr=1e6)
    guard = DivergenceGuard(1e4)
    batch = data.__getitems__(torch.arange(48))
    with pytest.raises(MMCoopError, match="diverged"):
        for step in range(50):
            logits = model.fuse(model.encode(batch["inputs"]))
            loss = torch.nn.functional.cross_entropy(logits, batch["label"])
            guard.check(loss, 1, step)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert step >= 1  # the first loss set the reference; a later one exploded
