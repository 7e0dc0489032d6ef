"""``lfm``: the weight rule against a finite-difference Hessian-vector product on the fixed validation
rows, the clipped update, the loss by hand, the fitted schedule, and the weight in the checkpoint."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.methods import build_method
from mmcoop.methods.peers._wiring import modality_logits

pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    o = build_method("lfm").options
    assert (o.schedule, o.init_weight, o.lr_alpha, o.val_samples, o.hvp_scope) == ("learnable", 0.95, 1e-4, 8, "first")
    for bad in ({"schedule": "fixed"}, {"init_weight": 0.99}, {"lr_alpha": -1}, {"val_samples": 1}, {"hvp_scope": "x"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("lfm", bad)


def _alignment_by_hand(uni: torch.Tensor) -> torch.Tensor:
    p, q = uni[0].softmax(-1), uni[1].softmax(-1)
    m = (p + q) / 2
    return 0.5 * ((m * (m.log() - p.log())).sum(-1).mean() + (m * (m.log() - q.log())).sum(-1).mean())


def test_rule_against_finite_differences(peer_trainer) -> None:
    trainer = peer_trainer("lfm", {"init_weight": 0.5, "lr_alpha": 1.0})
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    batch = method.val_batch(ctx)
    assert batch["label"].shape == (8,)
    first = next(model.parameters())

    def grad_total() -> torch.Tensor:
        feats = model.encode(batch["inputs"])
        total = 0.5 * F.cross_entropy(model.fuse(feats), batch["label"]) + 0.5 * _alignment_by_hand(
            modality_logits(model, feats)
        )
        return torch.autograd.grad(total, [first])[0]

    def shift(vs, scale: float) -> None:
        with torch.no_grad():
            for p, vi in zip(params, vs):
                p.add_(scale * vi)

    feats = model.encode(batch["inputs"])
    params = list(model.parameters())
    v = torch.autograd.grad(F.cross_entropy(model.fuse(feats), batch["label"]), params)
    eps = 1e-2  # central differences of the gradient along v: (H v) on the first parameter
    shift(v, eps)
    plus = grad_total()
    shift(v, -2 * eps)
    minus = grad_total()
    shift(v, eps)
    want = float(((plus - minus) / (2 * eps)).mean())
    signal = method.learn_weight(ctx)
    assert signal == pytest.approx(want, rel=1e-2, abs=1e-6)
    assert abs(signal) > 1e-6
    assert method.align_weight == pytest.approx(min(0.95, max(0.05, 0.5 - signal)))


def test_loss_by_hand_and_fitted_schedule(peer_trainer, batch_of) -> None:
    trainer = peer_trainer("lfm", {"schedule": "fitted"})
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    ctx.epoch = 10
    method.on_epoch_start(ctx)
    ce_w, al_w = ctx.log["lfm_weight_ce"], ctx.log["lfm_weight_align"]
    assert ce_w == pytest.approx(0.24776, abs=1e-4) and ce_w + al_w == pytest.approx(1.0)
    batch = batch_of(trainer)
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    uni = modality_logits(model, feats)
    want = 2 * (ce_w * F.cross_entropy(logits, batch["label"]) + al_w * _alignment_by_hand(uni))
    torch.testing.assert_close(method.loss(ctx, batch, feats, logits), want)
    assert not math.isclose(float(want.detach()), float(2 * ce_w * F.cross_entropy(logits.detach(), batch["label"])))


def test_weight_is_checkpointed(run_peer) -> None:
    r = run_peer("lfm")
    state = torch.load(r.run_dir / "checkpoints" / "last.pt", weights_only=False)["method"]
    assert state["align_weight"] == pytest.approx(r.history[-1]["lfm_weight_align"])
    assert r.history[0]["lfm_weight_align"] != 0.95  # the rule moved it before epoch 0
