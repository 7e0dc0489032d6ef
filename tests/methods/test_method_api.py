"""Three toy methods defined only here plug into the training loop without editing it:
several backward passes per step, an own module whose parameters resume exactly, and a
per-epoch pass over the validation split."""

from __future__ import annotations

from dataclasses import dataclass

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mmcoop.experiment import RunConfig, read_metrics, run_experiment
from mmcoop.methods import METHODS, Method, MethodOptions
from mmcoop.models import unimodal_logits


class TwoBackward(Method):
    """Fused CE and the unimodal CEs in separate backward passes, gradients summed by hand."""

    name = "toy-two-backward"

    def train_step(self, ctx, batch):
        ctx.zero_grad()
        with ctx.no_sync():  # forward and both backward passes; step() averages over ranks
            feats, logits = ctx.forward(batch["inputs"])
            fused = F.cross_entropy(logits.float(), batch["label"])
            uni = unimodal_logits(ctx.model, feats).float()
            side = F.cross_entropy(uni.flatten(0, 1), batch["label"].repeat_interleave(uni.shape[1]))
            ctx.backward(fused, retain_graph=True)
            self.grads_after_first = [p.grad.clone() for p in ctx.model.parameters() if p.grad is not None]
            ctx.backward(side)
        self.backward_calls = getattr(self, "backward_calls", 0) + 2
        ctx.step()
        return (fused + side).detach(), logits.detach()


@dataclass
class ExtraHeadOptions(MethodOptions):
    weight: float = 0.5


class ExtraHead(Method):
    """An own auxiliary linear head on the concatenated features (trained, checkpointed)."""

    name = "toy-extra-head"
    Options = ExtraHeadOptions

    def setup(self, ctx):
        m = len(ctx.model.modalities)
        self.aux = nn.Linear(m * 8, ctx.train_data.num_classes)

    def modules(self):
        return {"aux": self.aux}

    def loss(self, ctx, batch, feats, logits):
        aux = self.aux(feats.flatten(1).float())
        return F.cross_entropy(logits.float(), batch["label"]) + self.options.weight * F.cross_entropy(
            aux, batch["label"]
        )

    def predict(self, model, feats, batch):  # evaluation uses the auxiliary head's logits added
        return model.fuse(feats) + self.aux(feats.flatten(1).float())


class ValPass(Method):
    """After every epoch, the fused validation accuracy from a pass over ctx.val_data."""

    name = "toy-val-pass"

    def on_epoch_end(self, ctx):
        correct = total = 0
        for batch, feats in ctx.inference(ctx.val_data):
            pred = ctx.inference_model.fuse(feats).argmax(-1)
            correct += int((pred == batch["label"]).sum())
            total += len(pred)
        ctx.log["toy_val_acc"] = correct / total
        ctx.log["toy_val_seen"] = total


@pytest.fixture(autouse=True, scope="module")
def registered():
    for cls in (TwoBackward, ExtraHead, ValPass):
        METHODS.register(cls.name)(cls)
    yield
    for cls in (TwoBackward, ExtraHead, ValPass):
        METHODS._items.pop(cls.name)


def _cfg(tmp_path, method, epochs=3, **over):
    d = {
        "dataset": "synthetic",
        "method": method,
        "model": {"dim": 8},
        "train": {"epochs": epochs, "progress": False, "batch_size": 32},
        "out_dir": str(tmp_path),
    }
    d.update(over)
    return RunConfig.from_dict(d)


def test_several_backward_passes_accumulate(tmp_path):
    r = run_experiment(_cfg(tmp_path, "toy-two-backward"))
    assert r.test["acc"] > 0.8
    # the unimodal passes trained each modality's own pathway (far above chance 0.25)
    assert min(r.test["acc_m0"], r.test["acc_m1"]) > 0.5
    steps = [x["epoch_steps"] for x in r.history]
    assert steps == [math.ceil(len(r.splits.train) / 32)] * 3  # one optimizer step per batch


def test_own_module_trains_checkpoints_and_resumes_exactly(tmp_path):
    full = run_experiment(_cfg(tmp_path / "a", "toy-extra-head"))
    state = torch.load(full.run_dir / "checkpoints" / "last.pt", weights_only=False)
    assert set(state["method_modules"]) == {"aux.weight", "aux.bias"}
    short = run_experiment(_cfg(tmp_path / "b", "toy-extra-head", epochs=1))
    after_one = torch.load(short.run_dir / "checkpoints" / "last.pt", weights_only=False)["method_modules"]
    resumed = run_experiment(_cfg(tmp_path / "b", "toy-extra-head"), resume=True)
    assert resumed.test == full.test
    b = torch.load(resumed.run_dir / "checkpoints" / "last.pt", weights_only=False)
    for k, v in state["method_modules"].items():
        assert torch.equal(v, b["method_modules"][k]), k
    # the auxiliary head kept learning after the resume (it is in the optimizer)
    assert not torch.equal(after_one["aux.weight"], b["method_modules"]["aux.weight"])


def test_validation_pass_each_epoch(tmp_path):
    r = run_experiment(_cfg(tmp_path, "toy-val-pass"))
    lines = read_metrics(r.run_dir)
    assert [x["toy_val_seen"] for x in lines] == [len(r.splits.val)] * 3
    # the method's own pass agrees with the loop's validation of the same model
    assert [x["toy_val_acc"] for x in lines] == pytest.approx([x["val_acc"] for x in lines])


def test_a_model_without_encoders_gets_a_clear_error_from_per_encoder_peers(tmp_path) -> None:
    """The contract's optional ``encoders``: a bare protocol model is refused by name, before training."""
    from mmcoop.datasets.synthetic import load_synthetic
    from mmcoop.errors import ConfigError
    from mmcoop.train import TrainConfig, Trainer

    class Bare(nn.Module):  # modalities / encode / fuse only
        def __init__(self) -> None:
            super().__init__()
            self.modalities = ["m0", "m1"]
            self.lin = nn.Linear(8, 4)

        def encode(self, inputs, keep=None):
            return torch.stack([inputs["m0"], inputs["m1"]], 1)

        def fuse(self, feats, keep=None):
            return self.lin(feats.sum(1))

    splits = load_synthetic(data_root=None, seed=0, sizes=[16, 8, 8])
    config = TrainConfig(epochs=1, batch_size=8, progress=False, device="cpu")
    for name in ("ogm-ge", "mmpareto", "inforeg"):
        with pytest.raises(ConfigError, match="needs `encoders`.*from_modules"):
            Trainer(Bare(), METHODS.get(name)(), splits, config, seed=0)
