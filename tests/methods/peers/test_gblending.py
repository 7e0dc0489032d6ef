"""``gblending`` through the real loop: weights estimated from the logged losses, side heads
checkpointed, resume equals the uninterrupted run, three modalities."""

from __future__ import annotations

import pytest
import torch

from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, read_metrics, run_experiment
from mmcoop.experiment.run import build_for, load_splits
from mmcoop.methods import MethodContext, build_method
from mmcoop.methods.functional import gblend_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(out, epochs: int = 2, m: int = 2, **options) -> RunConfig:
    return RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"num_modalities": m, "sizes": [96, 48, 48]},
            "method": "gblending",
            "method_options": {"window": 1, **options},
            "model": {"dim": 16},
            "train": {"epochs": epochs, "batch_size": 32, "progress": False, "device": "cpu"},
            "out_dir": str(out),
        }
    )


def _stable(records):
    return [{k: v for k, v in r.items() if "time" not in k and k != "seconds"} for r in records]


def test_options_validated() -> None:
    assert build_method("gblending").options.window == 10  # BalanceBenchmark super_epoch
    with pytest.raises(ConfigError, match="window"):
        build_method("gblending", {"window": 0})
    with pytest.raises(ConfigError, match="eps"):
        build_method("gblending", {"eps": 0})


def test_weights_from_losses_side_heads_checkpointed_and_exact_resume(tmp_path) -> None:
    full = run_experiment(_cfg(tmp_path / "a"))
    first, second = full.history
    heads = ["m0", "m1", "fused"]
    # epoch 1 trains with uniform weights; at its end the weights are estimated from the
    # losses at the window's start (before training) and end, and epoch 2 uses them
    assert [first[f"weight_{h}"] for h in heads] == pytest.approx([1 / 3] * 3)
    start = [
        torch.tensor([first[f"gblend_start_{s}_loss_{h}"] for h in heads], dtype=torch.float64)
        for s in ("train", "val")
    ]
    end = [torch.tensor([first[f"gblend_{s}_loss_{h}"] for h in heads], dtype=torch.float64) for s in ("train", "val")]
    expected = gblend_weights(start[0], start[1], end[0], end[1]).tolist()
    used = [second[f"weight_{h}"] for h in heads]
    assert used == pytest.approx(expected, abs=1e-12)
    assert sum(used) == pytest.approx(1.0) and min(used) >= 0.0
    assert max(abs(w - 1 / 3) for w in used) > 1e-3  # really re-estimated
    # the side heads are the method's modules: in the checkpoint
    state = torch.load(full.run_dir / "checkpoints" / "last.pt", weights_only=False)
    assert {"side_heads.0.weight", "side_heads.1.bias"} <= set(state["method_modules"])
    nxt = [second[f"next_weight_{h}"] for h in heads]  # estimated again after epoch 2 (window 1)
    assert torch.equal(state["method"]["weights"], torch.tensor(nxt, dtype=torch.float64))
    # interrupted after epoch 1 and resumed: identical to the uninterrupted run
    run_experiment(_cfg(tmp_path / "b", epochs=1))
    resumed = run_experiment(_cfg(tmp_path / "b"), resume=True)
    assert _stable(read_metrics(resumed.run_dir)) == _stable(read_metrics(full.run_dir))
    other = torch.load(resumed.run_dir / "checkpoints" / "last.pt", weights_only=False)
    for part in ("model", "method_modules"):
        for k, v in state[part].items():
            assert torch.equal(v, other[part][k]), (part, k)


def test_three_modalities(tmp_path) -> None:
    r = run_experiment(_cfg(tmp_path, m=3))
    w = [r.history[1][f"weight_{h}"] for h in ("m0", "m1", "m2", "fused")]
    assert sum(w) == pytest.approx(1.0) and min(w) >= 0.0
    assert r.test["acc"] > 0.5  # 4 classes: chance is 0.25


def test_one_step_blended_loss() -> None:
    cfg = _cfg("unused")
    splits = load_splits(cfg)
    model = build_for(cfg, splits)
    ctx = MethodContext(model=model, train_data=splits.train, val_data=splits.val, device=torch.device("cpu"))
    method = build_method("gblending")
    method.setup(ctx)
    method.weights = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    batch = splits.train.__getitems__(list(range(16)))
    y = batch["label"]
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    ce = torch.nn.functional.cross_entropy
    want = 0.2 * ce(method.heads[0](feats[:, 0]), y) + 0.3 * ce(method.heads[1](feats[:, 1]), y) + 0.5 * ce(logits, y)
    torch.testing.assert_close(method.loss(ctx, batch, feats, logits), want)


def test_mfeat_six_modalities(tmp_path) -> None:
    cfg = RunConfig.from_dict(
        {
            "dataset": "mfeat",
            "method": "gblending",
            "method_options": {"window": 1},
            "train": {"epochs": 2, "progress": False, "device": "cpu"},
            "out_dir": str(tmp_path),
        }
    )
    r = run_experiment(cfg)
    w = [v for k, v in r.history[1].items() if k.startswith("weight_")]
    assert len(w) == 7 and sum(w) == pytest.approx(1.0) and min(w) >= 0.0
