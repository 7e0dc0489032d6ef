"""The 2024-2025 peers through their hooks on one batch (each distinctive term checked against
a hand computation) and end to end: two epochs on mfeat (M = 6) for every one, exact resume."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, run_experiment
from mmcoop.methods import build_method, check_not_noop
from mmcoop.models.protocol import unimodal_logits

pytestmark = pytest.mark.usefixtures("one_thread")


def _plain_backward(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_options_validated() -> None:
    for name, bad in [
        ("mlb", {"alpha": -1}),
        ("arl", {"weights": "mine"}),
        ("arl", {"temperature": 0}),
        ("amss", {"params": "bias"}),
        ("di-mml", {"temperature": 0}),
        ("remix", {"warmup": -1}),
    ]:
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method(name, bad)
    assert build_method("amss-plus").options.unbiased is True and build_method("amss").options.unbiased is False
    for name, opts in [("remix", {"warmup": 3}), ("mlb", {"modulation_starts": 2}), ("arl", {"start": 5})]:
        check_not_noop(build_method(name, opts), 2)  # multi-loss training, never joint: not refused


def test_mlb_scales_each_branch_by_one_plus_tanh(peer_trainer, batch_of) -> None:
    alpha = 0.8
    tr = peer_trainer("mlb", {"alpha": alpha}, num_modalities=3)
    method, ctx, model = tr.method, tr.ctx, tr.model
    batch = batch_of(tr)
    y = batch["label"]
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    method.on_epoch_start(ctx)
    loss = method.loss(ctx, batch, feats, logits)
    own = [method.heads[m](feats[:, m]) for m in range(3)]
    want_loss = F.cross_entropy(logits, y) + sum(F.cross_entropy(o, y) for o in own)
    torch.testing.assert_close(loss, want_loss)
    plain = _plain_backward(model, loss)
    s = [float(o.detach().softmax(-1)[torch.arange(len(y)), y].mean()) for o in own]
    k = [1 + math.tanh(alpha * ((sum(s) - s[m]) / 2 / s[m] - 1)) for m in range(3)]
    method.after_backward(ctx, batch, feats, logits)
    assert method.last_coeffs.tolist() == pytest.approx(k, rel=1e-6)
    d = feats.shape[-1]
    for name, p in model.named_parameters():
        if name.startswith("encoders.m"):
            torch.testing.assert_close(p.grad, plain[name] * k[int(name.split(".")[1][1])])
    w = plain["head.fc.weight"]
    for m in range(3):  # the fusion head's slice of modality m; its bias is untouched
        torch.testing.assert_close(model.head.fc.weight.grad[:, m * d : (m + 1) * d], w[:, m * d : (m + 1) * d] * k[m])
    torch.testing.assert_close(model.head.fc.bias.grad, plain["head.fc.bias"])


@pytest.mark.parametrize("weights", ["paper", "official"])
def test_arl_scales_encoders_by_one_plus_weight_after_start(peer_trainer, batch_of, weights) -> None:
    tr = peer_trainer("arl", {"start": 0, "gamma": 4.0, "weights": weights})
    method, ctx, model = tr.method, tr.ctx, tr.model
    batch = batch_of(tr)
    y = batch["label"]
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    uni = unimodal_logits(model, feats)  # [B, M, C]: the fusion head on one modality
    ctx.epoch = 0
    assert not method.active(0)  # official epoch > start
    loss0 = method.loss(ctx, batch, feats, logits)
    torch.testing.assert_close(
        loss0, F.cross_entropy(logits, y) + F.cross_entropy(uni[:, 0], y) + F.cross_entropy(uni[:, 1], y)
    )
    ctx.epoch = 1
    method.on_epoch_start(ctx)
    loss = method.loss(ctx, batch, feats, logits)
    torch.testing.assert_close(
        loss, F.cross_entropy(logits, y) + 4.0 * (F.cross_entropy(uni[:, 0], y) + F.cross_entropy(uni[:, 1], y))
    )
    plain = _plain_backward(model, loss)
    method.after_backward(ctx, batch, feats, logits)
    if weights == "official":
        w = [0.5, 0.5]
    else:  # main_arl_variance.py: softmax(T [a_v u_a, a_a u_v])
        o = uni.detach().transpose(0, 1).double()
        mag = o.abs().mean(1).sum(-1)
        p = o.softmax(-1)
        h = (-p * torch.log(p + 1e-16)).sum(-1).mean(1)
        h = (h / h.sum()).clamp(min=0.3)
        u = (1 / h) / (1 / h).sum()
        a = mag / mag.sum()
        w = torch.softmax(8.0 * torch.stack([a[1] * u[0], a[0] * u[1]]), 0).tolist()
    assert method.last_weights.tolist() == pytest.approx(w, rel=1e-6)
    for name, p in model.named_parameters():
        if name.startswith("encoders.m"):
            torch.testing.assert_close(p.grad, plain[name] * (1 + w[int(name.split(".")[1][1])]))
        elif name in plain:
            torch.testing.assert_close(p.grad, plain[name])


@pytest.mark.parametrize("name", ["amss", "amss-plus"])
def test_amss_masks_output_units_of_each_encoder_weight(peer_trainer, batch_of, name) -> None:
    tr = peer_trainer(name)
    method, ctx, model = tr.method, tr.ctx, tr.model
    batch = batch_of(tr)
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    plain = _plain_backward(model, F.cross_entropy(logits, batch["label"]))
    method.on_epoch_start(ctx)
    method.after_backward(ctx, batch, feats, logits)
    keep = method.last_coeffs
    masked = 0
    for pname, p in model.named_parameters():
        g0 = plain.get(pname)
        if g0 is None:
            continue
        if not pname.startswith("encoders.") or g0.dim() < 2:
            torch.testing.assert_close(p.grad, g0)  # biases and the fusion head untouched
            continue
        m = int(pname.split(".")[1][1])
        rows = g0.reshape(g0.shape[0], -1)
        got = p.grad.reshape(g0.shape[0], -1)
        nonzero = rows.abs().sum(1) > 0
        kept = got.abs().sum(1) > 0
        assert int(kept.sum()) == min(int(nonzero.sum()), math.ceil(g0.shape[0] * float(keep[m])))
        q = rows.double().pow(2).sum(1) / rows.double().pow(2).sum()
        scale = 1.0 / (q + 1.0 / g0.shape[0]) if name == "amss-plus" else torch.ones_like(q)
        torch.testing.assert_close(
            got[kept].double(), rows[kept].double() * scale[kept].unsqueeze(1), rtol=1e-5, atol=1e-7
        )
        masked += int((~kept & nonzero).sum())
    assert masked > 0


def test_dimml_encoders_learn_only_from_unimodal_losses(peer_trainer, batch_of) -> None:
    """The fused loss reaches the fusion head only (detached features): the encoders' gradients equal
    those of the own-head and shared-head losses; the contrastive term adds to them once dims are chosen."""
    tr = peer_trainer("di-mml", {"duc_starts": 0, "temperature": 2.0})
    method, ctx, model = tr.method, tr.ctx, tr.model
    batch = batch_of(tr)
    y = batch["label"]
    # what one step does, by hand, before the step
    enc = [p for n, p in model.named_parameters() if n.startswith("encoders.")]

    def grads(with_duc: bool):
        feats = model.encode(batch["inputs"])
        own = sum(F.cross_entropy(method.heads[m](feats[:, m]), y) for m in range(2))
        shared = sum(F.cross_entropy(method.shared(feats[:, m]), y) for m in range(2))
        total = own + shared
        if with_duc:
            from mmcoop.methods.functional import dimml_duc_loss

            total = total + dimml_duc_loss(feats, method.specific, 2.0)
        return torch.autograd.grad(total, enc)

    method.on_epoch_start(ctx)  # chooses the dimensions (duc_starts = 0)
    assert method.specific is not None and method.specific.any()
    captured = {}
    orig_step = ctx.step

    def spy() -> None:
        captured.update({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        orig_step()

    ctx.step = spy
    want = grads(True)
    method.train_step(ctx, batch)
    for (n, _), g in zip([(n, p) for n, p in model.named_parameters() if n.startswith("encoders.")], want):
        torch.testing.assert_close(captured[n], g, rtol=1e-5, atol=1e-7)
    no_duc = grads(False)
    assert any(not torch.allclose(a, b) for a, b in zip(want, no_duc))


def test_remix_assigns_and_takes_one_unimodal_step_per_modality(peer_trainer, batch_of) -> None:
    tr = peer_trainer("remix", {"warmup": 0})
    method, ctx, model = tr.method, tr.ctx, tr.model
    method.on_epoch_start(ctx)
    table = method.assignment
    # by hand: each sample goes to the modality whose own head is closest to uniform
    data = ctx.train_data
    full = data.__getitems__(list(range(len(data))))
    with torch.no_grad():
        feats = model.encode(full["inputs"])
        p = torch.stack([method.heads[m](feats[:, m]).softmax(-1) for m in range(2)]).double().clamp(1e-9, 1)
        kl = (p * torch.log2(p * p.shape[-1])).sum(-1)
    want = torch.where(kl[0] < kl[1], 0, 1)
    assert torch.equal(table[full["index"]], want)
    batch = batch_of(tr)
    owner = table[batch["index"]]
    steps, keeps = [], []
    orig_forward = ctx.forward

    def spy_forward(inputs, keep=None):
        keeps.append(keep.clone())
        return orig_forward(inputs, keep)

    ctx.forward = spy_forward
    before = ctx.optimizer_steps
    method.train_step(ctx, batch)
    steps = ctx.optimizer_steps - before
    assert steps == len(set(owner.tolist()))
    for k in keeps:  # every step sees one modality only
        assert bool((k.sum(1) == 1).all())


def _mfeat(tmp_path, method: str, options: dict, epochs: int = 2, name: str | None = None) -> RunConfig:
    return RunConfig.from_dict(
        {
            "dataset": "mfeat",
            "method": method,
            "method_options": options,
            "train": {"epochs": epochs, "progress": False, "device": "cpu"},
            "out_dir": str(tmp_path),
            "name": name or method,
        }
    )


MFEAT = [
    ("mlb", {}, "coeff_fou"),
    ("arl", {"start": 0}, "weight_fou"),
    ("amss", {}, "keep_fou"),
    ("amss-plus", {}, "keep_mor"),
    ("di-mml", {"duc_starts": 1}, "duc_loss"),
    ("remix", {"warmup": 1}, "assigned_fou"),
]


@pytest.mark.parametrize("method,options,logged", MFEAT)
def test_two_epochs_on_mfeat(tmp_path, method, options, logged) -> None:
    r = run_experiment(_mfeat(tmp_path, method, options))
    assert len(r.history) == 2 and logged in r.history[-1]
    assert r.test["acc"] > 0.5 and all(f"acc_{m}" in r.test for m in ("fou", "fac", "kar", "pix", "zer", "mor"))


@pytest.mark.parametrize(
    "method,options", [("di-mml", {"duc_starts": 1, "temperature": 5.0}), ("amss-plus", {}), ("remix", {"warmup": 1})]
)
def test_resume_equals_uninterrupted(run_peer, tmp_path, method, options) -> None:
    full = run_peer(method, options, epochs=3, out=tmp_path / "a")
    run_peer(method, options, epochs=2, out=tmp_path / "b")
    resumed = run_peer(method, options, epochs=3, out=tmp_path / "b", resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
