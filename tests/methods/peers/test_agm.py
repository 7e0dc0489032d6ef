"""``agm``: options, coefficients and the scaled feature gradient by hand on one batch, running
means checkpointed (exact resume), the window, three modalities and the cap on ``M``."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, read_metrics, run_experiment
from mmcoop.methods import build_method

pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    o = build_method("agm").options
    # official window 0..20 over epochs counted from 1 = 0-based epochs 0..19 (20 epochs)
    assert (o.alpha, o.modulation_starts, o.modulation_ends, o.clip_grad, o.max_exponent) == (1.0, 0, 19, True, None)
    with pytest.raises(ConfigError, match="alpha"):
        build_method("agm", {"alpha": -2})
    with pytest.raises(ConfigError, match="clip_grad"):
        build_method("agm", {"clip_grad": "yes"})


def test_coefficients_and_scaled_gradient_by_hand(peer_trainer, batch_of) -> None:
    alpha = 2.0
    trainer = peer_trainer("agm", {"alpha": alpha})
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    batch = batch_of(trainer)
    y = batch["label"]
    feats = model.encode(batch["inputs"]).detach().requires_grad_(True)
    method.on_epoch_start(ctx)
    loss = method.loss(ctx, batch, feats, model.fuse(feats))
    loss.backward()
    # by hand (official Modality_Audio / Modality_Visual): m_a = (f(a,v) - f(0,v) + f(a,0)) / 2
    x = feats.detach().requires_grad_(True)
    f_av = model.fuse(x)
    f_a = model.fuse(x, torch.tensor([True, False]))
    f_v = model.fuse(x, torch.tensor([False, True]))
    mono = [(f_av - f_v + f_a) / 2, (f_av - f_a + f_v) / 2]
    s = [float(-m.detach().log_softmax(-1)[torch.arange(len(y)), y].mean()) for m in mono]
    mean = (s[0] + s[1]) / 2
    # first step: running means 0 -> optimal ratios exp(0) = 1
    k = [math.exp(alpha * (1.0 - math.exp(2 * (mean - s[u])))) for u in range(2)]
    assert abs(k[0] - k[1]) > 1e-3  # a non-trivial modulation
    torch.testing.assert_close(method.last_coeffs, torch.tensor(k, dtype=torch.float64), rtol=1e-5, atol=0)
    torch.testing.assert_close(method.running, torch.tensor(s, dtype=torch.float64), rtol=1e-5, atol=0)
    assert float(loss.detach()) == pytest.approx(float(F.cross_entropy(f_av, y).detach()), rel=1e-5)
    # d loss / d feats = sum_u k_u * J_u^T (dCE/dout at out = f(a,v))
    g_out = (f_av.detach().softmax(-1) - F.one_hot(y, f_av.shape[-1]).float()) / len(y)
    expected = sum(k[u] * torch.autograd.grad(mono[u], x, g_out, retain_graph=True)[0] for u in range(2))
    torch.testing.assert_close(feats.grad, expected, rtol=1e-4, atol=1e-7)


def test_window_running_means_and_exact_resume(run_peer, tmp_path) -> None:
    opts = {"modulation_starts": 1}
    full = run_peer("agm", opts, epochs=3, out=tmp_path / "a")
    records = read_metrics(full.run_dir)
    assert records[0]["coeff_m0"] == 1.0 and records[0]["coeff_m1"] == 1.0  # before the window
    assert records[1]["coeff_m0"] != 1.0 and records[0]["score_m0"] < records[0]["score_m1"]  # m0 learns faster
    run_peer("agm", opts, epochs=2, out=tmp_path / "b")
    # epoch 3 is modulated with the running means of epochs 1-2: exact only if they were saved
    resumed = run_peer("agm", opts, epochs=3, out=tmp_path / "b", resume=True)
    stable = [
        [{k: v for k, v in r.items() if "time" not in k and k != "seconds"} for r in read_metrics(x.run_dir)]
        for x in (full, resumed)
    ]
    assert stable[0] == stable[1]
    state = torch.load(resumed.run_dir / "checkpoints" / "last.pt", weights_only=False)["method"]
    assert state["steps"] == 12 and state["running"].shape == (2,)


def test_three_modalities_and_too_many(run_peer, tmp_path) -> None:
    last = read_metrics(run_peer("agm", num_modalities=3).run_dir)[-1]
    assert all(last[f"coeff_m{k}"] > 0 for k in range(3))
    assert last["score_m0"] < last["score_m2"]
    cfg = RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"num_modalities": 13, "dim": 2, "sizes": [8, 4, 4]},
            "method": "agm",
            "train": {"epochs": 1, "progress": False},
            "out_dir": str(tmp_path / "m13"),
        }
    )
    with pytest.raises(ConfigError, match="2 to 12 modalities"):
        run_experiment(cfg)


def test_default_window_modulates_twenty_epochs(peer_trainer, batch_of) -> None:
    # official run/AVMNIST_main.py: for epoch in range(1, EPOCHS), modulated while 0 <= epoch <= 20,
    # i.e. its first 20 epochs; here epochs are 0-based, so epoch 19 is the last modulated one
    trainer = peer_trainer("agm", {"alpha": 2.0})
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    batch = batch_of(trainer)
    feats = model.encode(batch["inputs"]).detach()
    modulated = {}
    for epoch in (0, 19, 20, 21):
        ctx.epoch = epoch
        method.running.zero_()
        method.steps = 0
        method.loss(ctx, batch, feats, model.fuse(feats))
        modulated[epoch] = bool((method.last_coeffs != 1.0).any())
    assert modulated == {0: True, 19: True, 20: False, 21: False}


def test_max_exponent_caps_as_the_official_cremad_script(peer_trainer, batch_of) -> None:
    # run/CREMAD_main.py: coeff = exp(alpha * min(opt - ratio, 10)); no cap in run/AVMNIST_main.py
    trainer = peer_trainer("agm", {"alpha": 1.0, "max_exponent": 0.0})
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    batch = batch_of(trainer)
    feats = model.encode(batch["inputs"]).detach()
    method.loss(ctx, batch, feats, model.fuse(feats))
    assert float(method.last_coeffs.max()) <= 1.0 and float(method.last_coeffs.min()) < 1.0
