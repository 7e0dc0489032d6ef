"""MBSD's pairwise terms by hand (two modalities) and against a per-sample loop written as
BalanceBenchmark's ``training_step`` (three modalities: averaged over the pairs)."""

from __future__ import annotations

import math

import pytest
import torch

from _helpers import mbsd_loop_reference
from mmcoop.methods.functional import mbsd_terms

pytestmark = pytest.mark.usefixtures("one_thread")

L4, L3 = math.log(4.0), math.log(3.0)


def _uni() -> torch.Tensor:
    # modality 0: sample 0 (0.8, 0.2) right; sample 1 (0.25, 0.75) wrong
    # modality 1: sample 0 (0.5, 0.5) (argmax 0: right); sample 1 (0.2, 0.8) wrong
    return torch.tensor([[[L4, 0.0], [0.0, L3]], [[0.0, 0.0], [0.0, L4]]])


def test_two_modalities_by_hand() -> None:
    y = torch.tensor([0, 0])
    kl, rs = mbsd_terms(_uni(), y)
    # sample 0: w = 0.8 - 0.5; sample 1: both wrong -> w = 0; sums divided by B = 2
    assert float(kl) == pytest.approx(0.3 * 0.5 * (math.log(0.5) - 0.8) / 2)
    assert float(rs) == pytest.approx(0.3 * (L4**2 / 2) / 2)
    kl_d, rs_d = mbsd_terms(_uni(), y, kl="distribution")  # KL(weak || strong) of the distributions
    assert float(kl_d) == pytest.approx(0.3 * (0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)) / 2)
    assert float(rs_d) == pytest.approx(float(rs))


def test_three_modalities_against_the_loop() -> None:
    g = torch.Generator().manual_seed(3)
    uni = 2 * torch.randn(3, 16, 4, generator=g)
    y = torch.randint(0, 4, (16,), generator=g)
    kl, rs = mbsd_terms(uni, y)
    want_kl, want_rs = mbsd_loop_reference(uni, y)
    assert float(kl) == pytest.approx(want_kl, rel=1e-5) and float(rs) == pytest.approx(want_rs, rel=1e-5)
    assert abs(want_kl) > 1e-3 and want_rs > 1e-3


def test_weights_carry_gradients_as_in_balancebenchmark() -> None:
    uni = _uni().requires_grad_(True)
    kl, rs = mbsd_terms(uni, torch.tensor([0, 0]))
    (kl + rs).backward()
    assert uni.grad is not None and float(uni.grad[:, 0].abs().sum()) > 0
    assert float(uni.grad[:, 1].abs().sum()) == 0.0  # weight 0: both modalities wrong on sample 1
    with pytest.raises(ValueError, match="kl must be"):
        mbsd_terms(_uni(), torch.tensor([0, 0]), kl="js")
