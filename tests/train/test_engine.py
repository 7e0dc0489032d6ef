"""The step engine under fp16 loss scaling: ``after_backward`` sees true gradients (unscaled once,
before the hook), the optimizer step is the unscaled one, and AGM's clipping test reads true
gradients. GradScaler runs on CPU with a known scale (no GPU needed)."""

from __future__ import annotations

import pytest
import torch
from _helpers import tiny_data, tiny_model

from mmcoop.data import DatasetSplits, batch_to, make_loader
from mmcoop.methods import Method, build_method
from mmcoop.train import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_thread")
SCALE = 1024.0


class Recorder(Method):
    """Joint training that records the gradients its hook sees."""

    def after_backward(self, ctx, batch, feats, logits) -> None:
        self.seen = {n: p.grad.clone() for n, p in ctx.model.named_parameters() if p.grad is not None}


def _one_step(method: Method, scale: float | None) -> tuple[Trainer, dict[str, torch.Tensor]]:
    data = tiny_data()
    config = TrainConfig(epochs=1, batch_size=32, lr=0.5, progress=False, device="cpu")
    trainer = Trainer(tiny_model(data), method, DatasetSplits("tiny", data, data, data), config, seed=0)
    if scale is not None:  # fp16's scaler with a known scale (the loop enables it only on CUDA)
        trainer.engine.scaler = torch.amp.GradScaler("cpu", init_scale=scale, enabled=True)
    batch = batch_to(next(iter(make_loader(data, 32))), trainer.device)
    trainer.model.eval()  # no dropout: both runs see the same forward
    method.on_epoch_start(trainer.ctx)
    method.train_step(trainer.ctx, batch)
    return trainer, {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


def test_after_backward_sees_unscaled_gradients_and_the_step_is_unchanged() -> None:
    plain, plain_params = _one_step(Recorder(), None)
    scaled, scaled_params = _one_step(Recorder(), SCALE)
    assert scaled.engine.scaler.get_scale() == SCALE  # finite gradients: the scale is kept
    assert plain.method.seen.keys() == scaled.method.seen.keys() and plain.method.seen
    for name, grad in plain.method.seen.items():
        torch.testing.assert_close(scaled.method.seen[name], grad)  # not SCALE * grad
    for name, p in plain_params.items():
        torch.testing.assert_close(scaled_params[name], p)  # unscaled once, not twice


def test_agm_clipping_reads_true_gradients_under_loss_scaling() -> None:
    _, plain = _one_step(build_method("agm"), None)
    _, scaled = _one_step(build_method("agm"), SCALE)
    for name, p in plain.items():
        torch.testing.assert_close(scaled[name], p)


def test_unscale_is_a_no_op_without_a_scaler() -> None:
    trainer, _ = _one_step(Recorder(), None)
    assert not trainer.engine.scaler.is_enabled()
    trainer.ctx.unscale_gradients()  # no error, nothing to do
