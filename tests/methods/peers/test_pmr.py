"""``pmr``: options, prototypes = class means of the subset's eval-mode features, the loss by
hand, prototypes checkpointed and resume equal to the uninterrupted run, three modalities."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mmcoop.data.base import batch_to
from mmcoop.errors import ConfigError
from mmcoop.experiment import read_metrics
from mmcoop.methods import build_method

pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    o = build_method("pmr").options
    assert (o.alpha, o.momentum, o.proto_ratio, o.modulation_starts, o.modulation_ends) == (1.0, 0.2, 0.1, 0, 100)
    with pytest.raises(ConfigError, match="momentum"):
        build_method("pmr", {"momentum": 1.5})
    with pytest.raises(ConfigError, match="proto_ratio"):
        build_method("pmr", {"proto_ratio": 0})
    with pytest.raises(ConfigError, match="alpha"):
        build_method("pmr", {"alpha": -1})


def test_prototypes_and_loss_by_hand(peer_trainer, batch_of) -> None:
    trainer = peer_trainer("pmr", {"proto_ratio": 0.5, "alpha": 0.7})
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    method.on_epoch_start(ctx)
    subset = method.prototype_subset(ctx)
    assert len(subset) == 64 and subset.rows.unique().numel() == 64
    data = batch_to(subset.__getitems__(list(range(len(subset)))), trainer.device)
    with torch.no_grad():
        z = model.encode(data["inputs"])  # eval mode, as the official calculate_prototype
    c = trainer.splits.num_classes
    for m in range(2):
        for k in range(c):
            torch.testing.assert_close(method.prototypes[m, k], z[data["label"] == k, m].mean(0))
    # loss: CE(fused) + alpha * CE(-distance to prototypes) of the modality with the lower prototype score
    batch = batch_of(trainer)
    y = batch["label"]
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    loss = method.loss(ctx, batch, feats, logits)
    proto = [-((feats[:, m, None, :] - method.prototypes[m][None]) ** 2).sum(-1).sqrt() for m in range(2)]
    score = [float(p.detach().softmax(-1)[torch.arange(len(y)), y].sum()) for p in proto]
    weak = 0 if score[0] < score[1] else 1
    expected = F.cross_entropy(logits, y) + 0.7 * F.cross_entropy(proto[weak], y)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    method.on_epoch_end(ctx)
    assert ctx.log[f"proto_weight_m{weak}"] == pytest.approx(0.7) and ctx.log[f"proto_weight_m{1 - weak}"] == 0.0


def test_momentum_blend_from_the_third_pass(peer_trainer) -> None:
    trainer = peer_trainer("pmr", {"proto_ratio": 0.25, "momentum": 0.3})
    method, ctx = trainer.method, trainer.ctx
    protos, means = [], []
    for epoch in range(3):
        ctx.epoch = epoch  # another subset each epoch
        before = method.prototypes
        method.on_epoch_start(ctx)
        protos.append(method.prototypes.clone())
        method.prototypes, method.passes = None, method.passes - 1  # the plain class means of this subset
        method.on_epoch_start(ctx)
        means.append(method.prototypes.clone())
        method.prototypes = protos[-1]
        assert before is None or not torch.equal(before, protos[-1])
    # official calculate_prototype: no blend before training nor after epoch 0, then (1 - mu) new + mu old
    torch.testing.assert_close(protos[1], means[1])
    torch.testing.assert_close(protos[2], 0.7 * means[2] + 0.3 * protos[1])


def test_prototypes_checkpointed_and_resume_equals_uninterrupted(run_peer, tmp_path) -> None:
    full = run_peer("pmr", epochs=4, out=tmp_path / "a")
    run_peer("pmr", epochs=2, out=tmp_path / "b")
    resumed = run_peer(
        "pmr", epochs=4, out=tmp_path / "b", resume=True
    )  # the momentum blend needs the saved prototypes
    stable = [
        [{k: v for k, v in r.items() if "time" not in k and k != "seconds"} for r in read_metrics(x.run_dir)]
        for x in (full, resumed)
    ]
    assert stable[0] == stable[1] and resumed.test == full.test
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    state = [torch.load(x.run_dir / "checkpoints" / "last.pt", weights_only=False)["method"] for x in (full, resumed)]
    assert state[0]["prototypes"].shape == (2, 4, 64) and state[0]["passes"] == 4
    assert torch.equal(state[0]["prototypes"], state[1]["prototypes"])
    assert {"proto_weight_m0", "proto_weight_m1", "proto_acc_m0"} <= set(stable[0][0])


def test_three_modalities(run_peer) -> None:
    last = read_metrics(run_peer("pmr", num_modalities=3).run_dir)[-1]
    weights = [last[f"proto_weight_m{k}"] for k in range(3)]
    assert all(w in (0.0, 1.0) or 0 < w < 1 for w in weights) and max(weights) > 0
    assert weights[0] < max(weights)  # the strongest view is not the one pulled to its prototypes
