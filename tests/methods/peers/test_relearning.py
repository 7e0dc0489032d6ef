"""``relearning`` through the real loop: at a re-init epoch every encoder moves towards its initial
weights by exactly the logged strength; the initial weights are checkpointed; three modalities."""

from __future__ import annotations

import math

import pytest
import torch

from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, run_experiment
from mmcoop.experiment.run import build_for, load_splits
from mmcoop.methods import build_method
from mmcoop.methods.peers.relearning import Relearning

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(out, epochs: int, m: int = 2, **options) -> RunConfig:
    return RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"num_modalities": m, "sizes": [96, 48, 48]},
            "method": "relearning",
            "method_options": {"reinit_epoch": 1, **options},
            "model": {"dim": 16},
            "train": {"epochs": epochs, "batch_size": 32, "progress": False, "device": "cpu"},
            "out_dir": str(out),
        }
    )


def test_options_validated() -> None:
    o = build_method("relearning").options
    assert (o.reinit_epoch, o.reinit_num, o.move_lambda) == (20, 3, 3.0)
    for bad in ({"reinit_epoch": 0}, {"reinit_num": -1}, {"move_lambda": -0.5}, {"diagnose_every_epoch": 1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("relearning", bad)


@pytest.mark.parametrize("m", [2, 3])
def test_reinit_blends_towards_initial_weights(tmp_path, monkeypatch: pytest.MonkeyPatch, m: int) -> None:
    # official schedule: after epoch e > 0 with e % reinit_epoch == 0 -> here at the start of the
    # third epoch (e = 1, 0-based); epochs 1-2 start without re-init
    seen: dict[int, tuple[dict, dict]] = {}
    real = Relearning.on_epoch_start

    def spy(self, ctx):
        before = {k: v.clone() for k, v in ctx.model.state_dict().items()}
        real(self, ctx)
        seen[ctx.epoch] = (before, {k: v.clone() for k, v in ctx.model.state_dict().items()})

    monkeypatch.setattr(Relearning, "on_epoch_start", spy)
    cfg = _cfg(tmp_path, 3, m=m, move_lambda=20.0)
    initial = build_for(cfg, load_splits(cfg)).state_dict()
    r = run_experiment(cfg)
    logs = r.history
    assert [x["reinits"] for x in logs] == [0, 0, 1]
    assert "reinit_strength_m0" not in logs[0] and "reinit_strength_m0" not in logs[1]
    for e in (0, 1):
        assert all(torch.equal(seen[e][0][k], seen[e][1][k]) for k in initial)
    before, after = seen[2]
    strengths = []
    for k in range(m):
        pt, pv, w = (logs[2][f"{p}_m{k}"] for p in ("purity_train", "purity_val", "reinit_strength"))
        assert 0.0 <= pt <= 1.0 and 0.0 <= pv <= 1.0
        assert w == pytest.approx(math.tanh(20.0 * abs(pt - pv)))
        strengths.append(w)
        params = [n for n, _ in r.model.encoders[f"m{k}"].named_parameters()]
        for n in params:
            key = f"encoders.m{k}.{n}"
            want = w * initial[key] + (1 - w) * before[key]
            torch.testing.assert_close(after[key], want, rtol=1e-6, atol=1e-7)
        # buffers (BatchNorm running statistics) are not blended
        for n, _ in r.model.encoders[f"m{k}"].named_buffers():
            assert torch.equal(after[f"encoders.m{k}.{n}"], before[f"encoders.m{k}.{n}"])
    assert max(strengths) > 0.05  # the check above is not vacuous
    # the fusion head is not re-initialised
    assert all(torch.equal(after[k], before[k]) for k in before if k.startswith("head."))


def test_initial_weights_are_checkpointed_and_reinit_count_limited(tmp_path) -> None:
    cfg = _cfg(tmp_path, 4, reinit_num=1)
    initial = build_for(cfg, load_splits(cfg))
    r = run_experiment(cfg)
    assert [x["reinits"] for x in r.history] == [0, 0, 1, 1]  # at most reinit_num re-inits
    state = torch.load(r.run_dir / "checkpoints" / "last.pt", weights_only=False)["method"]
    assert state["reinits"] == 1
    for k, saved in enumerate(state["initial"]):
        ref = [p for p in initial.encoders[f"m{k}"].parameters()]
        assert len(saved) == len(ref) and all(torch.equal(a, b) for a, b in zip(saved, ref))


def test_mfeat_six_modalities(tmp_path) -> None:
    cfg = RunConfig.from_dict(
        {
            "dataset": "mfeat",
            "method": "relearning",
            "method_options": {"reinit_epoch": 1},
            "train": {"epochs": 3, "progress": False, "device": "cpu"},
            "out_dir": str(tmp_path),
        }
    )
    r = run_experiment(cfg)
    last = r.history[2]
    assert last["reinits"] == 1
    assert all(0.0 <= last[f"reinit_strength_{m}"] < 1.0 for m in ("fou", "fac", "kar", "pix", "zer", "mor"))
