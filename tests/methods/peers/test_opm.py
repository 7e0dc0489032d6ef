"""``opm``: options, the dropped and rescaled features the head sees (by hand), the default
warm-up, a two-epoch run and three modalities."""

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
    o = build_method("opm").options
    assert (o.q_base, o.lam, o.p_exe, o.modulation_starts, o.modulation_ends) == (0.5, 0.5, 0.7, 6, None)
    with pytest.raises(ConfigError, match="q_base"):
        build_method("opm", {"q_base": 1.5})
    with pytest.raises(ConfigError, match="p_exe"):
        build_method("opm", {"p_exe": -0.1})
    with pytest.raises(ConfigError, match="lam"):
        build_method("opm", {"lam": -1})


def test_head_sees_dominant_features_dropped_and_rescaled(peer_trainer, batch_of, monkeypatch) -> None:
    trainer = peer_trainer("opm", {"modulation_starts": 0, "p_exe": 1.0})
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    batch = batch_of(trainer)
    y = batch["label"]
    with torch.no_grad():
        feats = model.encode(batch["inputs"])
        # q by hand (TPAMI calcu_q): scores from each modality's half of the concat layer + b/2
        w, b = model.head.fc.weight, model.head.fc.bias
        d = feats.shape[-1]
        s = [
            float((feats[:, m] @ w[:, m * d : (m + 1) * d].T + b / 2).softmax(-1)[torch.arange(len(y)), y].sum())
            for m in range(2)
        ]
    r = [math.tanh(max(s[m] / s[1 - m] - 1, 0.0)) for m in range(2)]
    q = [min(0.5 * (1 + 0.5 * r[m]), 1.0) if r[m] > 0 else 0.0 for m in range(2)]
    strong = 0 if q[0] > 0 else 1
    assert q[1 - strong] == 0.0 and q[strong] >= 0.5
    scale = 1.0 / (1.0 - (d * q[0] + d * q[1]) / (2 * d))
    seen = []
    real_fuse = model.fuse

    def spy(x, keep=None):
        out = real_fuse(x, keep)
        seen.append((x.detach().clone(), out.detach().clone()))
        return out

    monkeypatch.setattr(model, "fuse", spy)
    method.on_epoch_start(ctx)
    loss, _ = method.train_step(ctx, batch)
    method.on_epoch_end(ctx)
    x, out = seen[-1]  # the head's input and output in the modulated loss (before the step)
    dropped = x.abs().sum(-1) == 0  # [B, M]
    assert not dropped[:, 1 - strong].any()  # the weak modality is never dropped
    assert 0 < int(dropped[:, strong].sum()) < len(y)
    kept = ~dropped
    torch.testing.assert_close(x[kept], feats[kept] * scale)
    assert ctx.log[f"q_m{strong}"] == pytest.approx(q[strong], rel=1e-4) and ctx.log[f"q_m{1 - strong}"] == 0.0
    assert ctx.log[f"dropped_m{strong}"] == pytest.approx(float(dropped[:, strong].float().mean()))
    # the loss: cross-entropy over every sample (each kept at least the weak modality)
    assert float(loss) == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-5)


def test_warmup_then_drops(run_peer, tmp_path) -> None:
    plain = read_metrics(
        run_peer("opm", {"allow_noop": True}, out=tmp_path / "default").run_dir
    )  # no drop while epoch <= 5
    assert all("q_m0" not in rec and "modulated_batches" not in rec for rec in plain)
    first, second = read_metrics(run_peer("opm", {"modulation_starts": 1, "p_exe": 1.0}, out=tmp_path / "b").run_dir)
    assert "q_m0" not in first
    assert second["modulated_batches"] == 1.0 and second["epoch_steps"] == 4
    assert second["q_m0"] > 0 and 0 < second["dropped_m0"] <= 1


def test_three_modalities(run_peer) -> None:
    r = run_peer("opm", {"modulation_starts": 0, "p_exe": 1.0}, num_modalities=3)
    last = read_metrics(r.run_dir)[-1]
    assert all(0.0 <= last[f"q_m{k}"] <= 1.0 for k in range(3))
    assert last["dropped_m0"] > 0 and r.test["acc"] > 0.5
