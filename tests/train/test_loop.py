import json

import pytest
import torch

from mmcoop.errors import MMCoopError
from mmcoop.experiment import RunConfig, read_metrics, run_experiment


def _cfg(tmp_path, **over):
    d = {"dataset": "synthetic", "train": {"epochs": 4, "progress": False, "batch_size": 32}, "out_dir": str(tmp_path)}
    d.update(over)
    return RunConfig.from_dict(d)


def test_joint_training_beats_chance_and_writes_run_dir(tmp_path):
    r = run_experiment(_cfg(tmp_path))
    assert r.test["acc"] > 0.8  # 4 classes: chance is 0.25
    for f in ("config.yaml", "metrics.jsonl", "results.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (r.run_dir / f).exists(), f
    lines = read_metrics(r.run_dir)
    assert [x["epoch"] for x in lines] == [1, 2, 3, 4]
    assert {"val_acc", "val_f1", "val_acc_m0", "val_acc_m1", "train_loss", "seconds"} <= set(lines[0])
    res = json.loads((r.run_dir / "results.json").read_text())
    assert res["best_epoch"] == max(lines, key=lambda x: (x["val_acc"], -x["epoch"]))["epoch"]
    # the resolved config repeats the run
    again = RunConfig.from_yaml(r.run_dir / "config.yaml")
    assert again.to_dict() == r.config.to_dict()


def test_unimodal_method_uses_only_its_modality(tmp_path):
    r = run_experiment(_cfg(tmp_path, method="unimodal", method_options={"modality": "m1"}))
    assert r.test["acc_m1"] > 0.4
    # the other encoder never trained: its unimodal accuracy stays near chance
    assert r.test["acc_m0"] < r.test["acc_m1"]


def test_resume_equals_uninterrupted(tmp_path):
    full = run_experiment(_cfg(tmp_path / "a", method_options={}))
    # "interrupted" run: same config, stopped after 2 epochs, then resumed to 4
    short = _cfg(tmp_path / "b")
    short.train.epochs = 2
    run_experiment(short)
    resumed = run_experiment(_cfg(tmp_path / "b"), resume=True)
    assert resumed.test == full.test
    a = [{k: v for k, v in r.items() if "time" not in k and k != "seconds"} for r in read_metrics(full.run_dir)]
    b = [{k: v for k, v in r.items() if "time" not in k and k != "seconds"} for r in read_metrics(resumed.run_dir)]
    assert a == b
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_existing_run_dir_is_not_overwritten(tmp_path):
    run_experiment(_cfg(tmp_path, train={"epochs": 1, "progress": False}))
    with pytest.raises(MMCoopError, match="--resume"):
        run_experiment(_cfg(tmp_path, train={"epochs": 1, "progress": False}))
    with pytest.raises(MMCoopError, match="cannot resume"):
        run_experiment(_cfg(tmp_path, name="nothing"), resume=True)


@pytest.mark.parametrize("execution", ["duplicate", "weighted"])
def test_bf16_autocast_with_resampling(tmp_path, execution):
    cfg = _cfg(tmp_path, method="sample-level", method_options={"warmup": 1, "execution": execution})
    cfg.train.amp = "bf16"
    r = run_experiment(cfg)
    assert r.test["acc"] > 0.8
    assert all(torch.isfinite(torch.tensor(x["train_loss"])) for x in r.history)
    assert r.history[-1]["copies_m0"] + r.history[-1]["copies_m1"] > 0


def test_fp16_on_cpu_is_a_clear_error(tmp_path):
    cfg = _cfg(tmp_path)
    cfg.train.amp = "fp16"
    cfg.train.device = "cpu"
    with pytest.raises(MMCoopError, match="fp16 needs a CUDA device"):
        run_experiment(cfg)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_optimizer_choice_and_its_weight_decay(name):
    from _helpers import tiny_data, tiny_model

    from mmcoop.data.base import DatasetSplits
    from mmcoop.methods import METHODS
    from mmcoop.train import TrainConfig, Trainer

    data = tiny_data(8)
    cfg = TrainConfig(epochs=1, optimizer=name, lr=0.1, weight_decay=0.5, progress=False, device="cpu")
    trainer = Trainer(tiny_model(data), METHODS.get("joint")(), DatasetSplits("t", data, data, data), cfg)
    opt = trainer._make_optimizer()
    assert type(opt) is {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[name]
    p = opt.param_groups[0]["params"][0]
    before = p.detach().clone()
    for q in trainer.model.parameters():
        q.grad = torch.zeros_like(q)
    opt.step()
    if name == "adamw":  # decoupled: a zero gradient still shrinks the weights by lr * wd
        assert torch.allclose(p.detach(), before * (1 - 0.1 * 0.5))
    elif name == "adam":  # L2 in the gradient g = wd * p, then Adam's first step lr * g / (|g| + eps)
        g = 0.5 * before
        assert torch.allclose(p.detach(), before - 0.1 * g / (g.abs() + 1e-8), atol=1e-6)
