"""Issue 26.2: the imbalance measures of the evaluation pass (metrics.jsonl, loggers), by hand."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _runs import tiny_cfg
from mmcoop.experiment import load_run, run_experiment
from mmcoop.integrations.loggers import scalars
from mmcoop.train.metrics import MultimodalMeter
from mmcoop.valuation import valuate_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def test_meter_measures_equal_a_hand_count():
    # 3 samples, 2 modalities, 2 classes; labels 0, 1, 1
    labels = torch.tensor([0, 1, 1])
    uni = torch.tensor(
        [
            [[2.0, 0.0], [0.0, 0.0]],  # a: p(y)=e²/(e²+1); v: 1/2
            [[0.0, 1.0], [1.0, 0.0]],  # a: e/(e+1);      v: 1/(1+e)
            [[1.0, 0.0], [0.0, 3.0]],  # a: 1/(1+e);      v: e³/(e³+1)
        ]
    )
    fused = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    phi = torch.tensor([[1.5, 0.5], [1.0, 1.0], [-0.5, 2.5]])
    meter = MultimodalMeter(2, ["a", "v"])
    meter.update(fused, labels, uni, 0.0, phi=phi)
    out = meter.compute()
    e = math.e
    s_a = e**2 / (e**2 + 1) + e / (e + 1) + 1 / (1 + e)
    s_v = 0.5 + 1 / (1 + e) + e**3 / (e**3 + 1)
    # argmax picks the first maximal class: a is right on samples 0, 1; v on sample 0 (tie -> 0) and 2
    assert out["acc_a"] == pytest.approx(2 / 3) and out["acc_v"] == pytest.approx(2 / 3)
    assert out["uni_gap"] == pytest.approx(0.0)
    assert out["ratio_a"] == pytest.approx(s_a / (s_v + 1e-5), rel=1e-9)
    assert out["ratio_v"] == pytest.approx(s_v / (s_a + 1e-5), rel=1e-9)
    assert out["phi_a"] == pytest.approx(2.0 / 3) and out["phi_v"] == pytest.approx(4.0 / 3)
    assert out["share_a"] == pytest.approx(2.0 / 6) and out["share_v"] == pytest.approx(4.0 / 6)


def test_meter_gap_and_no_shapley_without_phi():
    meter = MultimodalMeter(2, ["a", "v", "t"])
    labels = torch.tensor([0, 0])
    uni = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    meter.update(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), labels, uni)
    out = meter.compute()
    assert out["uni_gap"] == pytest.approx(1.0)  # a: 100%, v: 0%
    assert not any(k.startswith(("phi_", "share_")) for k in out)
    assert {f"ratio_{m}" for m in "avt"} <= set(out)


def test_run_records_the_measures_per_epoch_equal_to_valuing_the_split(tmp_path):
    res = run_experiment(tiny_cfg(tmp_path, "i", train={"epochs": 2}))
    records = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    mods = res.splits.modalities
    for r in records:
        for m in mods:
            assert f"val_ratio_{m}" in r and f"val_share_{m}" in r and f"val_phi_{m}" in r
        assert r["val_uni_gap"] == pytest.approx(
            max(r[f"val_acc_{m}"] for m in mods) - min(r[f"val_acc_{m}"] for m in mods)
        )
        assert sum(r[f"val_share_{m}"] for m in mods) == pytest.approx(1.0)
    # the last epoch's phi means are those of valuing the validation split with the last weights
    _, model, splits = load_run(res.run_dir, "last")
    table = valuate_dataset(model, splits.val)
    for k, m in enumerate(mods):
        assert records[-1][f"val_phi_{m}"] == pytest.approx(float(table.phi[:, k].double().mean()), abs=1e-6)
    tags = scalars(records[-1])
    assert {f"imbalance/shapley_share/{m}" for m in mods} <= set(tags) and "imbalance/unimodal_gap" in tags
    assert {f"imbalance/discrepancy_ratio/{m}" for m in mods} <= set(tags)


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 6),
    c=st.integers(2, 4),
    seed=st.integers(0, 10_000),
)
def test_measure_laws(b, c, seed):
    """Shares sum to 1, the gap is in [0, 1], and two modalities' ratios are reciprocal but for the 1e-5 guard:
    ``rho_a rho_v = s_a s_v / ((s_a + eps)(s_v + eps))``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (b,), generator=g)
    uni = torch.randn(b, 2, c, generator=g) * 3
    phi = torch.randn(b, 2, generator=g).abs() + 0.01
    meter = MultimodalMeter(c, ["a", "v"])
    meter.update(torch.randn(b, c, generator=g), labels, uni, 0.0, phi=phi)
    out = meter.compute()
    assert out["share_a"] + out["share_v"] == pytest.approx(1.0)
    assert 0.0 <= out["uni_gap"] <= 1.0
    s_a, s_v = (float(s) for s in meter.true_prob_sum)
    assert out["ratio_a"] * out["ratio_v"] == pytest.approx(s_a * s_v / ((s_a + 1e-5) * (s_v + 1e-5)), rel=1e-9)
