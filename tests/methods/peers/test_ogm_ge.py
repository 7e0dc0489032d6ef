"""``ogm-ge``: options, the dominant encoder's gradients scaled by the hand-computed coefficient,
the modulation window, a two-epoch run and three modalities."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.experiment import read_metrics
from mmcoop.methods import build_method

pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    o = build_method("ogm-ge").options
    assert (o.alpha, o.modulation_starts, o.modulation_ends, o.noise, o.params) == (0.8, 0, 50, True, "all")
    with pytest.raises(ConfigError, match="alpha"):
        build_method("ogm-ge", {"alpha": -0.1})
    with pytest.raises(ConfigError, match="params"):
        build_method("ogm-ge", {"params": "bias"})
    with pytest.raises(ConfigError, match="modulation_ends"):
        build_method("ogm-ge", {"modulation_starts": 3, "modulation_ends": 2})


def _backward(trainer, batch):
    """Features, logits and the plain gradients of one batch (model in eval mode)."""
    model = trainer.model
    model.zero_grad(set_to_none=True)
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    F.cross_entropy(logits, batch["label"]).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return feats, logits, grads


def test_dominant_encoder_gradient_scaled_by_logged_coefficient(peer_trainer, batch_of) -> None:
    alpha = 0.8
    trainer = peer_trainer("ogm-ge", {"alpha": alpha, "noise": False})
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    batch = batch_of(trainer)
    feats, logits, plain = _backward(trainer, batch)
    method.on_epoch_start(ctx)
    method.after_backward(ctx, batch, feats, logits)
    method.on_epoch_end(ctx)
    # the official scores by hand: each modality's half of the concat layer plus half the bias
    w, b = model.head.fc.weight.detach(), model.head.fc.bias.detach()
    d = feats.shape[-1]
    y = batch["label"]
    scores = []
    for m in range(2):
        out = feats[:, m].detach() @ w[:, m * d : (m + 1) * d].T + b / 2
        scores.append(float(out.softmax(-1)[torch.arange(len(y)), y].sum()))
    strong = 0 if scores[0] > scores[1] else 1
    weak = 1 - strong
    k = 1 - math.tanh(alpha * scores[strong] / scores[weak])
    assert 0 < k < 1
    coeffs = method.last_coeffs
    assert float(coeffs[strong]) == pytest.approx(k, rel=1e-4) and float(coeffs[weak]) == 1.0
    assert ctx.log[f"coeff_m{strong}"] == pytest.approx(k, rel=1e-4) and ctx.log[f"coeff_m{weak}"] == 1.0
    for name, p in model.named_parameters():
        if name.startswith(f"encoders.m{strong}."):
            torch.testing.assert_close(p.grad, plain[name] * float(coeffs[strong]))
        elif name in plain:  # the weak encoder and the fusion head are untouched
            torch.testing.assert_close(p.grad, plain[name])


def test_ge_noise_is_seeded_and_conv_scope_skips_vector_encoders(peer_trainer, batch_of) -> None:
    trainer = peer_trainer("ogm-ge", {"noise": True})
    batch = batch_of(trainer)
    runs = []
    for _ in range(2):
        feats, logits, plain = _backward(trainer, batch)
        trainer.method.after_backward(trainer.ctx, batch, feats, logits)
        runs.append({n: p.grad.clone() for n, p in trainer.model.named_parameters() if n.startswith("encoders.")})
    k = trainer.method.last_coeffs
    name = "encoders.m0.net.0.weight"  # a [128, 8] weight: enough draws for the std
    noise = runs[0][name] - plain[name] * float(k[0])
    assert float(noise.abs().max()) > 0  # GE noise was added ...
    assert float(noise.std()) == pytest.approx(float(plain[name].std()) + 1e-8, rel=0.3)  # ... with the official std
    for n in runs[0]:  # ... from a generator seeded by (seed, step): the same draws again
        torch.testing.assert_close(runs[0][n], runs[1][n])
    conv = peer_trainer("ogm-ge", {"params": "conv"})
    feats, logits, plain = _backward(conv, batch)
    conv.method.after_backward(conv.ctx, batch, feats, logits)
    for n, p in conv.model.named_parameters():  # MLP encoders have no 4-D weights: nothing modulated
        if n in plain:
            torch.testing.assert_close(p.grad, plain[n])


def test_two_epochs_log_coefficients_inside_the_window_only(run_peer) -> None:
    r = run_peer("ogm-ge", {"modulation_starts": 1})
    first, second = read_metrics(r.run_dir)
    assert (first["coeff_m0"], first["coeff_m1"]) == (1.0, 1.0) and "ratio_m0" not in first
    coeffs = [second["coeff_m0"], second["coeff_m1"]]
    assert all(0.0 <= c <= 1.0 for c in coeffs) and min(coeffs) < 1.0
    assert second["ratio_m0"] > 1.0 > second["ratio_m1"]  # m0 (less noise) dominates


def test_three_modalities_one_vs_others(run_peer) -> None:
    r = run_peer("ogm-ge", num_modalities=3)
    last = read_metrics(r.run_dir)[-1]
    coeffs = [last[f"coeff_m{k}"] for k in range(3)]
    assert all(0.0 <= c <= 1.0 for c in coeffs) and min(coeffs) < 1.0
    assert last["ratio_m0"] > 1.0 and r.test["acc"] > 0.5


def test_sum_fusion_scores_use_each_modality_full_bias_as_official_train_epoch() -> None:
    # official main.py train_epoch, sum fusion: out_a = a @ fc_x.weight.T + fc_x.bias (full bias;
    # only valid() halves it). concat: half the shared bias (checked above).
    from mmcoop.data.base import batch_to, make_loader
    from mmcoop.datasets.synthetic import load_synthetic
    from mmcoop.models import build_model
    from mmcoop.train import TrainConfig, Trainer

    splits = load_synthetic(data_root=None, seed=0, num_modalities=2, sizes=[64, 32, 32], noise=[1.0, 2.0])
    torch.manual_seed(0)
    model = build_model(splits.specs, splits.num_classes, dim=8, fusion="sum")
    with torch.no_grad():
        model.head.bias.copy_(torch.randn_like(model.head.bias) * 3)  # biases that matter
    trainer = Trainer(
        model,
        build_method("ogm-ge"),
        splits,
        TrainConfig(epochs=1, batch_size=32, progress=False, device="cpu"),
        seed=0,
    )
    trainer.model.eval()
    batch = batch_to(next(iter(make_loader(splits.train, 32))), trainer.device)
    feats = trainer.model.encode(batch["inputs"]).detach()
    y = batch["label"]
    w, b = trainer.model.head.weight.detach(), trainer.model.head.bias.detach()
    want = [float((feats[:, m] @ w[m].T + b[m]).softmax(-1)[torch.arange(len(y)), y].sum()) for m in range(2)]
    got = trainer.method.scores(trainer.ctx, batch, feats)
    torch.testing.assert_close(got, torch.tensor(want), rtol=1e-5, atol=1e-6)
