"""``mla``: options, M optimizer steps per batch, the projected shared-head gradient, the
entropy-weighted prediction by hand, exact resume and three modalities."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.experiment import read_metrics
from mmcoop.methods import build_method
from mmcoop.methods.functional import mla_projection_alpha, mla_update_projector

pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    o = build_method("mla").options
    assert (o.projection, o.dynamic) == (True, True)
    with pytest.raises(ConfigError, match="projection"):
        build_method("mla", {"projection": 1})


def test_one_step_per_modality_with_projected_head_gradient(peer_trainer, batch_of) -> None:
    trainer = peer_trainer("mla")
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    head = method.head
    batch = batch_of(trainer)
    y = batch["label"]
    with torch.no_grad():
        z = model.encode(batch["inputs"])  # [B, 2, D], eval mode
    real_step = ctx.step
    seen = []

    def step() -> None:  # record the head gradient each step applies, and the head it applies to
        seen.append(
            (
                head.weight.grad.clone(),
                head.weight.detach().clone(),
                head.bias.detach().clone(),
                method.projector.clone(),
            )
        )
        real_step()

    ctx.step = step
    method.on_epoch_start(ctx)
    method.train_step(ctx, batch)
    assert len(seen) == 2 and ctx.optimizer_steps == 2
    for m, (grad, w, b, proj) in enumerate(seen):
        p = (z[:, m] @ w.T + b).softmax(-1) - F.one_hot(y, w.shape[0]).float()
        raw = p.T @ z[:, m] / len(y)  # d CE(head(z_m)) / d W
        if m == 0:  # the very first update is not projected
            torch.testing.assert_close(grad, raw, rtol=1e-4, atol=1e-6)
            assert torch.equal(proj, torch.eye(z.shape[-1]))
        else:
            expected_p = mla_update_projector(
                torch.eye(z.shape[-1]), z[:, m], mla_projection_alpha(0, method.num_batches)
            )
            torch.testing.assert_close(proj, expected_p)
            torch.testing.assert_close(grad, raw @ expected_p.T, rtol=1e-4, atol=1e-6)
            assert not torch.allclose(grad, raw, atol=1e-6)
    # evaluation: sum_m w_m head(z_m) with w = softmax_m(-entropy_m), per sample
    with torch.no_grad():
        logits = torch.stack([head(z[:, m]) for m in range(2)])  # [M, B, C]
        ent = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)  # [M, B]
        weights = torch.exp(ent.max(0).values - ent)
        weights = weights / weights.sum(0)
        torch.testing.assert_close(method.predict(model, z, batch), (weights.unsqueeze(-1) * logits).sum(0))


def test_steps_per_epoch_and_exact_resume(run_peer, tmp_path) -> None:
    full = run_peer("mla", epochs=3, out=tmp_path / "a")
    records = read_metrics(full.run_dir)
    assert [r["epoch_steps"] for r in records] == [8, 8, 8]  # M x 4 batches
    assert records[-1]["optimizer_steps"] == 24 and "loss_m0" in records[-1]
    assert full.test["acc"] > 0.5  # the entropy-weighted shared head predicts
    run_peer("mla", epochs=2, out=tmp_path / "b")
    resumed = run_peer("mla", epochs=3, out=tmp_path / "b", resume=True)  # projector and shared head restored
    stable = [
        [{k: v for k, v in r.items() if "time" not in k and k != "seconds"} for r in read_metrics(x.run_dir)]
        for x in (full, resumed)
    ]
    assert stable[0] == stable[1]
    last = torch.load(resumed.run_dir / "checkpoints" / "last.pt", weights_only=False)
    assert last["method"]["updates"] == 24 and "shared_head.weight" in last["method_modules"]


def test_three_modalities(run_peer) -> None:
    r = run_peer("mla", num_modalities=3)
    assert [x["epoch_steps"] for x in read_metrics(r.run_dir)] == [12, 12]
    assert r.test["acc"] > 0.5
