"""``mbsd``: the loss through the peer equals fused CE + unimodal CEs + BalanceBenchmark's pairwise
terms, all recomputed by hand from the concat head's halves (``W_m h_m + b / M``)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from _helpers import mbsd_loop_reference
from mmcoop.errors import ConfigError
from mmcoop.methods import build_method


pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    o = build_method("mbsd").options
    assert (o.kl, o.modulation_starts, o.modulation_ends) == ("balancebenchmark", 0, None)
    for bad in ({"kl": "js"}, {"modulation_starts": -2}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("mbsd", bad)


@pytest.mark.parametrize("m", [2, 3])
def test_loss_by_hand(peer_trainer, batch_of, m: int) -> None:
    trainer = peer_trainer("mbsd", {"modulation_starts": 1}, num_modalities=m)
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    method.on_epoch_start(ctx)
    batch = batch_of(trainer)
    y = batch["label"]
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    w, b, d = model.head.fc.weight, model.head.fc.bias, feats.shape[-1]
    uni = torch.stack([feats[:, k] @ w[:, k * d : (k + 1) * d].T + b / m for k in range(m)])
    kl, rs = mbsd_loop_reference(uni.detach(), y)
    want = F.cross_entropy(logits, y) + sum(F.cross_entropy(u, y) for u in uni) + kl + rs
    ctx.epoch = 1
    got = method.loss(ctx, batch, feats, logits)
    torch.testing.assert_close(got, want.to(got.dtype), rtol=1e-5, atol=1e-6)
    assert abs(kl) + rs > 1e-4  # the distillation terms are not vacuous here
    ctx.epoch = 0  # before the window
    torch.testing.assert_close(method.loss(ctx, batch, feats, logits), F.cross_entropy(logits, y))
