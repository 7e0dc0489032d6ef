"""``greedy`` through the real loop and one curated step by hand: the curation schedule from the
learning speeds, the other modality replaced by its running average, exact resume, and the
clear refusal of ``M != 2``."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, read_metrics, run_experiment
from mmcoop.experiment.run import build_for, load_splits
from mmcoop.methods import MethodContext, build_method

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(out, epochs: int = 2, m: int = 2, **options) -> RunConfig:
    return RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"num_modalities": m, "sizes": [96, 48, 48]},
            "method": "greedy",
            "method_options": options,
            "model": {"dim": 16},
            "train": {"epochs": epochs, "batch_size": 16, "progress": False, "device": "cpu"},
            "out_dir": str(out),
        }
    )


def _stable(records):
    return [{k: v for k, v in r.items() if "time" not in k and k != "seconds"} for r in records]


def test_options_validated_and_two_modalities_only(tmp_path) -> None:
    o = build_method("greedy").options
    assert (o.epsilon, o.window, o.starting_epoch) == (0.01, 5, 1)  # official 2, counted from 1
    for bad in ({"epsilon": -1}, {"window": 0}, {"starting_epoch": -1}, {"log_utilization": 0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("greedy", bad)
    with pytest.raises(ConfigError, match="at most 2 modalities; the data has 3"):
        run_experiment(_cfg(tmp_path, m=3))


def test_curation_schedule(tmp_path) -> None:
    # epsilon 0: every non-curating step from starting_epoch on opens a window of 2 curated steps
    r = run_experiment(_cfg(tmp_path / "a", starting_epoch=1, epsilon=0.0, window=2))
    first, second = r.history
    assert first["curation_steps"] == 0  # before starting_epoch: speeds only
    steps = second["epoch_steps"]
    assert second["curation_steps"] == sum(1 for i in range(steps) if i % 3 != 0)  # plain, cur, cur, plain...
    assert second["caring_m0"] + second["caring_m1"] == second["curation_steps"]
    for x in r.history:
        assert x["speed_main_m0"] > 0 and x["speed_bypass_m1"] > 0 and -1 <= x["util_m0"] <= 1
    # a threshold no |d_BDR| reaches: never curates
    quiet = run_experiment(_cfg(tmp_path / "b", starting_epoch=1, epsilon=1e9))
    assert [x["curation_steps"] for x in quiet.history] == [0, 0]


def test_resume_equals_uninterrupted(tmp_path) -> None:
    opts = {"starting_epoch": 0, "epsilon": 0.0, "window": 4}
    full = run_experiment(_cfg(tmp_path / "a", **opts))
    short = run_experiment(_cfg(tmp_path / "b", epochs=1, **opts))
    # 6 steps: plain, 4 curated, plain -> the checkpoint is taken with a curation window open
    state = torch.load(short.run_dir / "checkpoints" / "last.pt", weights_only=False)["method"]
    assert state["curating"] and state["curation_step"] == 0
    resumed = run_experiment(_cfg(tmp_path / "b", **opts), resume=True)
    assert _stable(read_metrics(resumed.run_dir)) == _stable(read_metrics(full.run_dir))
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_curated_step_cuts_the_other_modality() -> None:
    cfg = _cfg("unused")
    splits = load_splits(cfg)
    model = build_for(cfg, splits).eval()
    ctx = MethodContext(model=model, train_data=splits.train, device=torch.device("cpu"))
    method = build_method("greedy")
    method.setup(ctx)
    method.avg_feats = torch.randn(2, 16, generator=torch.Generator().manual_seed(1))
    method.avg_steps = 10**9  # the running average no longer moves
    method.curating, method.caring = True, 0
    batch = splits.train.__getitems__(list(range(16)))
    feats = model.encode(batch["inputs"])
    loss = method.loss(ctx, batch, feats, model.fuse(feats))
    x = torch.stack([feats[:, 0], method.avg_feats[1].expand(16, 16)], dim=1)
    torch.testing.assert_close(loss, F.cross_entropy(model.fuse(x), batch["label"]))
    grads = torch.autograd.grad(
        loss, list(model.encoders["m1"].parameters()) + list(model.encoders["m0"].parameters()), allow_unused=True
    )
    n1 = len(list(model.encoders["m1"].parameters()))
    assert all(g is None or float(g.abs().max()) == 0.0 for g in grads[:n1])  # m1 cut off
    assert any(g is not None and float(g.abs().max()) > 0.0 for g in grads[n1:])  # m0 learns alone


def test_mfeat_is_refused(tmp_path) -> None:
    cfg = RunConfig.from_dict(
        {
            "dataset": "mfeat",
            "method": "greedy",
            "train": {"epochs": 1, "progress": False, "device": "cpu"},
            "out_dir": str(tmp_path),
        }
    )
    with pytest.raises(ConfigError, match="at most 2 modalities; the data has 6"):
        run_experiment(cfg)


def test_default_curates_from_the_second_epoch_as_official(tmp_path) -> None:
    # official: epochs counted from 1 (src/framework.py range(1, epochs + 1)), curation unlocked
    # when epoch >= starting_epoch = 2, i.e. in the second epoch (0-based epoch 1 here)
    r = run_experiment(_cfg(tmp_path, epsilon=0.0, window=2))
    first, second = r.history
    assert first["curation_steps"] == 0 and second["curation_steps"] > 0
