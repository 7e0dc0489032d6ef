"""``umt``: the teacher phase trains only the teachers (the student is untouched), the distillation
loss is recomputed by hand from the frozen teachers, and the trained teachers are checkpointed
(a resumed run does not train them again: see test_balancebench_six)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.methods import build_method

pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    o = build_method("umt").options
    assert (o.scaling, o.teacher_epochs, o.modulation_starts, o.modulation_ends) == (10.0, 10, 0, None)
    for bad in ({"scaling": -1}, {"teacher_epochs": 0}, {"modulation_starts": -1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("umt", bad)


def test_teacher_phase_then_distillation_by_hand(peer_trainer, batch_of) -> None:
    trainer = peer_trainer("umt", {"teacher_epochs": 2, "scaling": 3.0}, num_modalities=3)
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    student = {k: v.clone() for k, v in model.state_dict().items()}
    teachers = {k: v.clone() for k, v in method.teachers.state_dict().items()}
    method.on_epoch_start(ctx)
    assert method.trained
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in student.items())  # the student is untouched
    moved = [k for k, v in method.teachers.state_dict().items() if not torch.equal(v, teachers[k])]
    assert any(k.startswith("0.encoder") for k in moved) and any(k.startswith("2.head") for k in moved)
    assert all(ctx.log[f"teacher_acc_m{k}"] > 0.25 for k in range(3))  # 4 classes: chance 0.25
    assert ctx.log["teacher_time_s"] > 0
    steps = ctx.optimizer_steps
    method.on_epoch_start(ctx)  # trained once only
    assert ctx.optimizer_steps == steps
    batch = batch_of(trainer)
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    method.teachers.eval()  # the targets are taken in eval mode
    with torch.no_grad():
        t = [method.teachers[k].encoder(batch["inputs"][f"m{k}"]) for k in range(3)]
    want = F.cross_entropy(logits, batch["label"]) + 3.0 * sum(((t[k] - feats[:, k]) ** 2).mean() for k in range(3))
    torch.testing.assert_close(method.loss(ctx, batch, feats, logits), want)


def test_teachers_checkpointed(run_peer) -> None:
    r = run_peer("umt", {"teacher_epochs": 1})
    assert "teacher_acc_m0" in r.history[0] and "teacher_acc_m0" not in r.history[1]
    state = torch.load(r.run_dir / "checkpoints" / "last.pt", weights_only=False)
    assert state["method"]["trained"] is True
    assert {"umt_teachers.0.head.weight", "umt_teachers.1.head.bias"} <= set(state["method_modules"])
