"""``mmpareto``: options, the combined encoder gradient against separately computed gradients
(conflicting and aligned), unimodal heads checkpointed, two epochs and three modalities."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.experiment import read_metrics
from mmcoop.methods import build_method
from mmcoop.methods.functional import mmpareto_combine, mmpareto_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    assert build_method("mmpareto").options.gamma == 1.5
    with pytest.raises(ConfigError, match="gamma"):
        build_method("mmpareto", {"gamma": 0})


def _combined_gradients(trainer, batch, sign: float):
    """Set each unimodal head to ``sign`` x its slice of the fusion layer, take one step with
    the step recorded; return (recorded encoder grads, separately computed g_mm and g_u)."""
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    w, b = model.head.fc.weight.detach(), model.head.fc.bias.detach()
    d = 8
    with torch.no_grad():
        for m, head in enumerate(method.heads):
            head.weight.copy_(sign * w[:, m * d : (m + 1) * d])
            head.bias.copy_(sign * b)
    y = batch["label"]
    enc = [list(model.encoders[f"m{m}"].parameters()) for m in range(2)]
    # reference: each loss alone, by autograd (before the step changes anything)
    feats = model.encode(batch["inputs"])
    loss_mm = F.cross_entropy(model.fuse(feats), y)
    g_mm = [torch.autograd.grad(loss_mm, enc[m], retain_graph=True) for m in range(2)]
    g_u = [
        torch.autograd.grad(F.cross_entropy(method.heads[m](feats[:, m]), y), enc[m], retain_graph=True)
        for m in range(2)
    ]
    seen = []
    real_step = ctx.step
    ctx.step = lambda: (seen.append([[p.grad.clone() for p in ps] for ps in enc]), real_step())
    method.on_epoch_start(ctx)
    method.train_step(ctx, batch)
    method.on_epoch_end(ctx)
    return seen[0], g_mm, g_u


def test_conflicting_gradients_are_combined_by_the_core(peer_trainer, batch_of) -> None:
    trainer = peer_trainer("mmpareto")
    got, g_mm, g_u = _combined_gradients(trainer, batch_of(trainer), sign=-1.0)
    for m in range(2):
        flat_mm = torch.cat([g.reshape(-1) for g in g_mm[m]])
        flat_u = torch.cat([g.reshape(-1) for g in g_u[m]])
        assert float(F.cosine_similarity(flat_mm, flat_u, dim=0)) < 0  # the unimodal head opposes the fused one
        weights = mmpareto_weights(flat_mm, flat_u)
        assert 0 < float(weights[0]) < 1 and float(weights[0]) != 0.5
        for p_got, a, b in zip(got[m], g_mm[m], g_u[m]):
            torch.testing.assert_close(p_got, mmpareto_combine(a, b, weights, 1.5), rtol=1e-4, atol=1e-7)
        plain = torch.cat([(a + b).reshape(-1) for a, b in zip(g_mm[m], g_u[m])])
        combined = torch.cat([g.reshape(-1) for g in got[m]])
        assert (combined - plain).norm() > 0.1 * plain.norm()  # not the accumulated sum
        assert trainer.ctx.log[f"conflict_m{m}"] == 1.0 and trainer.ctx.log[f"cos_m{m}"] < 0


def test_aligned_gradients_get_equal_weights(peer_trainer, batch_of) -> None:
    trainer = peer_trainer("mmpareto")
    got, g_mm, g_u = _combined_gradients(trainer, batch_of(trainer), sign=1.0)
    for m in range(2):
        assert trainer.ctx.log[f"conflict_m{m}"] == 0.0 and trainer.ctx.log[f"w_mm_m{m}"] == 0.5
        for p_got, a, b in zip(got[m], g_mm[m], g_u[m]):  # 1.5 * (g_mm + g_u): the rescale is 1
            torch.testing.assert_close(p_got, 1.5 * (a + b), rtol=1e-4, atol=1e-7)


def test_two_epochs_heads_checkpointed(run_peer) -> None:
    r = run_peer("mmpareto")
    records = read_metrics(r.run_dir)
    assert [x["epoch_steps"] for x in records] == [4, 4]
    for k in ("m0", "m1"):
        assert -1 <= records[-1][f"cos_{k}"] <= 1 and 0 <= records[-1][f"conflict_{k}"] <= 1
        assert 0 <= records[-1][f"w_mm_{k}"] <= 1
    modules = torch.load(r.run_dir / "checkpoints" / "last.pt", weights_only=False)["method_modules"]
    assert modules["unimodal_heads.1.weight"].shape == (4, 64)
    assert r.test["acc"] > 0.5


def test_three_modalities(run_peer) -> None:
    r = run_peer("mmpareto", num_modalities=3)
    last = read_metrics(r.run_dir)[-1]
    assert all(f"w_mm_m{k}" in last for k in range(3)) and r.test["acc"] > 0.5
