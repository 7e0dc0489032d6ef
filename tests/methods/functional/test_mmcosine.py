"""MMCosine's scaled cosine logits by hand, with a zero-padded narrower modality."""

from __future__ import annotations

import math

import pytest
import torch

from mmcoop.methods.functional import mmcosine_logits

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cosine_logits_by_hand() -> None:
    feats = torch.tensor([[[3.0, 4.0], [1.0, 0.0]]])  # [B=1, M=2, D=2]; modality 1 has width 1 (padded)
    w = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[2.0, 5.0], [-1.0, 7.0]]])  # [M, C=2, D]
    out = mmcosine_logits(feats, w, 10.0, widths=[2, 1])
    # modality 0: h = (0.6, 0.8); class rows (1, 0) and (0, 1) -> cos 0.6, 0.8
    # modality 1: h = (1, 0); rows (2, .) and (-1, .) on the real column only -> cos 1, -1
    torch.testing.assert_close(out, torch.tensor([[[6.0, 8.0]], [[10.0, -10.0]]]))
    # the padding column counts when the width is not given: (2, 5) / sqrt(29)
    full = mmcosine_logits(feats, w, 10.0)
    assert float(full[1, 0, 0]) == pytest.approx(10 * 2 / math.sqrt(29))


def test_scale_invariance_of_features_and_weights() -> None:
    g = torch.Generator().manual_seed(0)
    feats, w = torch.randn(4, 3, 5, generator=g), torch.randn(3, 6, 5, generator=g)
    a = mmcosine_logits(feats, w, 2.0)
    torch.testing.assert_close(mmcosine_logits(7.0 * feats, 0.1 * w, 2.0), a)
    assert float(a.abs().max()) <= 2.0 + 1e-6
