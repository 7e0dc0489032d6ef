"""Issue 26.1/26.4 in comparisons: ``compare --probe`` columns and ``--matched flops``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from _runs import TINY_ARGS
from mmcoop.cli.app import app
from mmcoop.experiment.compare import matched_epochs

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def test_compare_probe_and_flops_matched_baseline(tmp_path):
    args = ["compare", *TINY_ARGS, "--epochs", "2", "--seeds", "0,1", "--methods", "joint,sample-level"]
    args += ["--set", "method_options.warmup=1", "--matched", "flops", "--probe", "--out-dir", str(tmp_path)]
    res = runner.invoke(app, [*args, "--name", "c"])
    assert res.exit_code == 0, res.output
    assert "gain@flops" in res.output
    df = pd.read_csv(tmp_path / "c" / "compare.csv")
    methods = df[df["role"] == "method"]
    for _, r in methods.iterrows():
        probe = json.loads((tmp_path / "c" / f"{r['method']}_seed{r['seed']}" / "probe.json").read_text())
        assert r["probe_acc_concat"] == pytest.approx(probe["splits"]["test"]["probes"]["concat"]["acc"])
        assert r["parameters"] > 0 and r["test_flops_per_sample"] > 0 and r["step_flops_per_unit"] > 0
    for seed in (0, 1):
        joint = [
            json.loads(x) for x in (tmp_path / "c" / f"joint_seed{seed}" / "metrics.jsonl").read_text().split("\n") if x
        ]
        sl = methods[(methods["method"] == "sample-level") & (methods["seed"] == seed)].iloc[0]
        want = matched_epochs(float(sl["train_flops_total"]), float(joint[0]["train_flops"]), 2)
        assert sl["baseline_epochs_flops"] == want
        assert want > 2  # the valuation pass and the extra units cost FLOPs: a longer joint run matches
    summary = pd.read_csv(tmp_path / "c" / "summary.csv")
    assert {"probe_acc_concat_mean", "gain_flops_mean", "train_flops_total_mean"} <= set(summary.columns)
