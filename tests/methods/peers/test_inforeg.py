"""``inforeg`` through the real loop and one step by hand: the proximal pull to the epoch-start
weights for the leading modality, the acquisition rate from the logged Fisher traces, three modalities."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, run_experiment
from mmcoop.experiment.run import build_for, load_splits
from mmcoop.methods import MethodContext, build_method
from mmcoop.methods.functional import inforeg_coefficients, true_class_scores
from mmcoop.methods.peers._wiring import modality_logits

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(out, epochs: int = 2, m: int = 2, **options) -> RunConfig:
    return RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"num_modalities": m, "sizes": [96, 48, 48]},
            "method": "inforeg",
            "method_options": options,
            "model": {"dim": 16},
            "train": {"epochs": epochs, "batch_size": 32, "progress": False, "device": "cpu"},
            "out_dir": str(out),
        }
    )


def test_options_validated(tmp_path) -> None:
    o = build_method("inforeg").options
    assert (o.window, o.threshold, o.base, o.rate) == (10, 0.05, None, "first")
    for bad in ({"window": 0}, {"rate": "mean"}, {"base": -1.0}, {"base": [0.5, "x"]}, {"unimodal_loss": "yes"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("inforeg", bad)
    with pytest.raises(ConfigError, match="base has 3 values"):
        run_experiment(_cfg(tmp_path, base=[0.9, 0.1, 0.1]))


def test_one_step_proximal_term() -> None:
    """After moving the encoders away from their epoch-start anchors by ``delta``, the loss gains
    ``sum_m beta_m / 2 ||delta_m||^2`` and encoder ``m``'s gradient ``beta_m * delta_m``."""
    cfg = _cfg("unused")
    splits = load_splits(cfg)
    model = build_for(cfg, splits).eval()  # no dropout: repeated passes agree
    ctx = MethodContext(model=model, train_data=splits.train, device=torch.device("cpu"))
    method = build_method("inforeg", {"base": [2.0, 3.0]})
    method.setup(ctx)
    method.on_epoch_start(ctx)  # anchors = current weights, rate 1 (no finished epoch)
    g = torch.Generator().manual_seed(0)
    deltas = {}
    with torch.no_grad():
        for name, p in model.encoders.named_parameters():
            deltas[name] = 0.05 * torch.randn(p.shape, generator=g)
            p.add_(deltas[name])
    batch = splits.train.__getitems__(list(range(24)))
    y = batch["label"]
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    loss = method.loss(ctx, batch, feats, logits)
    uni = modality_logits(model, feats)  # [M, B, C]: W_m z_m + b / 2
    plain = F.cross_entropy(logits, y) + F.cross_entropy(uni[0], y) + F.cross_entropy(uni[1], y)
    beta = inforeg_coefficients(true_class_scores(uni.detach(), y), 1.0, torch.tensor([2.0, 3.0]), 0.05)
    assert int((beta > 0).sum()) == 1  # M = 2: only the leading modality is regulated
    sq = [sum(float((deltas[n] ** 2).sum()) for n in deltas if n.startswith(f"m{k}.")) for k in range(2)]
    want = plain + sum(0.5 * float(beta[k]) * sq[k] for k in range(2))
    torch.testing.assert_close(loss, want.to(loss.dtype))
    names = [n for n, _ in model.encoders.named_parameters()]
    params = list(model.encoders.parameters())
    got = torch.autograd.grad(loss, params, retain_graph=True)
    ref = torch.autograd.grad(plain, params)
    for n, a, b in zip(names, got, ref):
        torch.testing.assert_close(a - b, float(beta[int(n[1])]) * deltas[n], rtol=1e-4, atol=1e-6)


def test_rate_from_fisher_traces_and_logs(tmp_path) -> None:
    r = run_experiment(_cfg(tmp_path, epochs=3, window=1))
    logs = r.history
    t = [x["fisher_trace_m0"] for x in logs]
    assert all(v > 0 for v in t)
    # rate before epoch e: 1 at epoch 0; window 1 with leading zeros: (t_{e-1} - t_{e-2}) / t_{e-1}
    assert [x["rate_m0"] for x in logs] == pytest.approx([1.0, 1.0, (t[1] - t[0]) / t[1]])
    assert [x["rate_m1"] for x in logs] == [x["rate_m0"] for x in logs]  # rate: first (official)
    for x in logs:
        assert 0.0 <= x["regulated_m0"] + x["regulated_m1"] <= 1.0 + 1e-12  # one leader per batch
        assert x["beta_m0"] >= 0.0 and x["beta_m1"] >= 0.0
    assert max(x["beta_m0"] + x["beta_m1"] for x in logs) > 0.0


def test_three_modalities(tmp_path) -> None:
    r = run_experiment(_cfg(tmp_path, m=3, rate="each"))
    for x in r.history:
        for k in range(3):
            assert x[f"fisher_trace_m{k}"] > 0.0 and 0.0 <= x[f"regulated_m{k}"] <= 1.0
    assert r.test["acc"] > 0.5


def test_mfeat_six_modalities(tmp_path) -> None:
    cfg = RunConfig.from_dict(
        {
            "dataset": "mfeat",
            "method": "inforeg",
            "train": {"epochs": 1, "progress": False, "device": "cpu"},
            "out_dir": str(tmp_path),
        }
    )
    r = run_experiment(cfg)
    assert all(r.history[0][f"fisher_trace_{m}"] > 0 for m in ("fou", "fac", "kar", "pix", "zer", "mor"))
    assert r.test["acc"] > 0.5
