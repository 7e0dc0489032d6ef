"""``amco``: one batch by hand -- the dominant modality's logits masked with the scheduled ratio, CE of
the extra layer on their sum plus the unimodal CEs, and the flags set from the batch's shares."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.methods import build_method
from mmcoop.methods.peers._wiring import step_generator
from mmcoop.methods.peers.amco import SALT_MASK

pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    o = build_method("amco").options
    assert (o.eps, o.sigma, o.l_rate, o.modulation_starts, o.modulation_ends) == (0.3, None, 0.1, 0, None)
    for bad in ({"eps": 0}, {"sigma": 1.5}, {"l_rate": -0.1}, {"modulation_starts": -1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("amco", bad)


def test_one_batch_by_hand(peer_trainer, batch_of) -> None:
    trainer = peer_trainer("amco", {"l_rate": 0.15})
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    ctx.epoch = 1
    method.on_epoch_start(ctx)
    assert method.sigma == 0.5  # 1 / M
    method.batch_index = 1  # l_t = 1 * 1 * 0.15 -> ratio sin(pi / 4)
    method.dominant = torch.tensor([True, False])
    batch = batch_of(trainer)
    y = batch["label"]
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    w, b, d = model.head.fc.weight, model.head.fc.bias, feats.shape[-1]
    uni = [feats[:, k] @ w[:, k * d : (k + 1) * d].T + b / 2 for k in range(2)]
    c = uni[0].shape[-1]
    mask = torch.ones(c)
    zeros = int(math.sin(math.pi / 4) * c)
    mask[torch.randperm(c, generator=step_generator(ctx, SALT_MASK))[:zeros]] = 0.0
    assert zeros >= 1
    masked = [uni[0] * mask, uni[1]]
    want = F.cross_entropy(method.star(masked[0] + masked[1]), y) + sum(F.cross_entropy(u, y) for u in masked)
    torch.testing.assert_close(method.loss(ctx, batch, feats, logits), want)
    # flags from this batch's masked logits: softmax over the concatenation, mean share per modality
    share0 = torch.cat(masked, 1).softmax(-1)[:, :c].sum(1).mean()
    assert method.dominant.tolist() == [bool(share0 > 0.5), bool(share0 < 0.5)]
    # evaluation: the extra layer on the fused logits
    torch.testing.assert_close(method.predict(model, feats, batch), method.star(logits))


def test_first_epoch_has_no_mask_and_outside_window_plain(peer_trainer, batch_of) -> None:
    trainer = peer_trainer("amco", {"modulation_starts": 1})
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    batch = batch_of(trainer)
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    ctx.epoch = 0
    method.on_epoch_start(ctx)
    torch.testing.assert_close(
        method.loss(ctx, batch, feats, logits), F.cross_entropy(method.star(logits), batch["label"])
    )
