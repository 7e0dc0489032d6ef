"""``cml``: the chain removes the epoch's seeded order one modality at a time (checked against the
fusion head with features zeroed by hand), the loss is recomputed by hand, plain CE outside the window."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.methods import build_method

pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    o = build_method("cml").options
    assert (o.lam, o.per_sample, o.modulation_starts, o.modulation_ends) == (0.1, False, 0, None)
    for bad in ({"lam": -1}, {"per_sample": "yes"}, {"modulation_ends": -1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("cml", bad)


@pytest.mark.parametrize("per_sample", [False, True])
def test_chain_and_loss_by_hand(peer_trainer, batch_of, per_sample: bool) -> None:
    trainer = peer_trainer("cml", {"lam": 2.0, "per_sample": per_sample}, num_modalities=3)
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    ctx.epoch = 1
    method.on_epoch_start(ctx)
    order = list(method.order)
    assert sorted(order) == [0, 1, 2]
    method.on_epoch_start(ctx)
    assert method.order == order  # drawn from (seed, epoch): the same on every rank and on resume
    batch = batch_of(trainer)
    y = batch["label"]
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    # by hand: zero the removed modalities' features, the concat head's bias kept
    chain, f = [logits], feats.clone()
    for k in order[:2]:
        f[:, k] = 0.0
        chain.append(model.head.fc(f.flatten(1)))
    conf = [c.softmax(-1).max(-1).values for c in chain]
    rises = [conf[i + 1] - conf[i] for i in range(2)]
    pen = sum(r.relu().sum() if per_sample else r.sum().relu() for r in rises)
    want = sum(F.cross_entropy(c, y) for c in chain) / 3 + 2.0 * pen
    torch.testing.assert_close(method.loss(ctx, batch, feats, logits), want)
    if per_sample:
        assert float(pen.detach()) > 0  # the penalty term is not vacuous here
    ctx.epoch = 0
    method.options.modulation_starts = 1  # before the window: plain cross-entropy
    torch.testing.assert_close(method.loss(ctx, batch, feats, logits), F.cross_entropy(logits, y))
