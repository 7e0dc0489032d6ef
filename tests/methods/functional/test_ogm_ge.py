"""OGM-GE coefficients and GE noise, plus the shared score / ratio helpers."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcoop.errors import ConfigError
from mmcoop.methods.functional import (
    ogm_ge_coefficients,
    ogm_ge_modulate,
    one_vs_others_ratio,
    true_class_scores,
)

pytestmark = pytest.mark.usefixtures("one_thread")
LN3 = math.log(3.0)


def test_true_class_scores_by_hand() -> None:
    # logit gap ln 3 -> softmax (0.75, 0.25); equal logits -> 0.5.
    logits = torch.tensor(
        [
            [[LN3, 0.0], [0.0, 0.0]],  # modality 0: p(y=0)=0.75, p(y=1)=0.5 -> s0 = 1.25
            [[0.0, LN3], [0.0, LN3]],  # modality 1: p(y=0)=0.25, p(y=1)=0.75 -> s1 = 1.0
        ]
    )
    s = true_class_scores(logits, torch.tensor([0, 1]))
    assert torch.allclose(s, torch.tensor([1.25, 1.0]), atol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        true_class_scores(logits, torch.tensor([0, 1, 1]))


def test_ratio_pairwise_average() -> None:
    # M = 2: rho = (1.25 / 1, 1 / 1.25); M = 3, s = (3, 1, 2):
    # rho0 = (3/1 + 3/2) / 2 = 2.25, rho1 = (1/3 + 1/2) / 2 = 5/12, rho2 = (2/3 + 2/1) / 2 = 4/3.
    assert torch.allclose(one_vs_others_ratio(torch.tensor([1.25, 1.0]), eps=0.0), torch.tensor([1.25, 0.8]))
    r3 = one_vs_others_ratio(torch.tensor([3.0, 1.0, 2.0]), eps=0.0)
    assert torch.allclose(r3, torch.tensor([2.25, 5 / 12, 4 / 3]))
    with pytest.raises(ValueError, match="M >= 2"):
        one_vs_others_ratio(torch.tensor([1.0]))


def test_coefficients_by_hand() -> None:
    s = torch.tensor([1.25, 1.0])
    # official: k0 = 1 - tanh(0.5 * 1.25), the weaker modality keeps 1.
    k = ogm_ge_coefficients(s, alpha=0.5, eps=0.0)
    assert k.tolist() == pytest.approx([1 - math.tanh(0.625), 1.0], abs=1e-6)
    # continuous variant: k0 = 1 - tanh(0.5 * (1.25 - 1)).
    k1 = ogm_ge_coefficients(s, alpha=0.5, offset=1.0, eps=0.0)
    assert k1.tolist() == pytest.approx([1 - math.tanh(0.125), 1.0], abs=1e-6)
    # M = 3 with the ratios above, alpha = 0.1.
    k3 = ogm_ge_coefficients(torch.tensor([3.0, 1.0, 2.0]), alpha=0.1, eps=0.0)
    assert k3.tolist() == pytest.approx([1 - math.tanh(0.225), 1.0, 1 - math.tanh(0.4 / 3)], abs=1e-6)


def test_coefficients_edge_cases() -> None:
    # tie: no modality is modulated (ratio = 1 / (1 + eps/2) < 1).
    assert ogm_ge_coefficients(torch.tensor([2.0, 2.0]), alpha=0.8).tolist() == [1.0, 1.0]
    # a modality with zero score: the other dominates completely -> coefficient 0, finite.
    k = ogm_ge_coefficients(torch.tensor([1.5, 0.0]), alpha=0.8)
    assert k.tolist() == [0.0, 1.0]
    # alpha = 0 switches modulation off.
    assert ogm_ge_coefficients(torch.tensor([5.0, 1.0]), alpha=0.0).tolist() == [1.0, 1.0]
    with pytest.raises(ConfigError, match="alpha"):
        ogm_ge_coefficients(torch.tensor([1.0, 2.0]), alpha=-1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 64.0), min_size=2, max_size=6),
    st.floats(0.0, 3.0),
)
def test_coefficient_laws(scores: list[float], alpha: float) -> None:
    s = torch.tensor(scores, dtype=torch.float64)
    k = ogm_ge_coefficients(s, alpha=alpha)
    assert bool(((k >= 0) & (k <= 1)).all())
    assert float(k[int(s.argmin())]) == 1.0  # the weakest modality is never slowed down
    order = torch.argsort(s)
    # stronger -> smaller coefficient; the ratios are float32 sums, so tied scores agree to its rounding
    assert bool((k[order][1:] <= k[order][:-1] + 1e-6).all())
    if len(scores) == 2:  # the official two-modality if/else (with the eps guard)
        a, v = scores
        ra, rv = a / (v + 1e-5), v / (a + 1e-5)
        ka = 1 - math.tanh(alpha * ra) if ra > 1 else 1.0
        kv = 1 - math.tanh(alpha * rv) if rv > 1 else 1.0
        assert k.tolist() == pytest.approx([ka, kv], abs=1e-6)


def test_modulate_exact_and_noise() -> None:
    g = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert torch.equal(ogm_ge_modulate(g, 0.5, noise=False), g * 0.5)
    # GE: noise ~ N(0, std(g) + 1e-8), std unbiased = sqrt(5/3); same generator -> same draw.
    out = ogm_ge_modulate(g, 0.5, generator=torch.Generator().manual_seed(3))
    z = torch.randn(4, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(out, 0.5 * g + z * (math.sqrt(5 / 3) + 1e-8))
    one = ogm_ge_modulate(torch.tensor([2.0]), 0.25, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(one).all() and abs(float(one) - 0.5) < 1e-6  # std of one value -> 0
