"""A user-defined 3-modality model and dataset (tests/fixtures/user_project.py) through the
config targets: training (joint, sample-level, modality-level), resume, value, compare, report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from mmcoop.cli.app import app
from mmcoop.errors import ConfigError, DataError
from mmcoop.experiment import RunConfig, load_run, run_experiment
from mmcoop.valuation import valuate_dataset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(autouse=True)
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))


def _cfg(tmp_path: Path, **over) -> dict:
    d = {
        "data": {"target": "user_project:load"},
        "model": {"target": "user_project:build", "options": {"hidden": 16}},
        "train": {"epochs": 3, "progress": False, "batch_size": 32, "lr": 0.01},
        "out_dir": str(tmp_path),
    }
    d.update(over)
    return d


@pytest.mark.parametrize("method", ["joint", "sample-level", "modality-level"])
def test_user_model_and_data_train(tmp_path, method):
    opts = {"warmup": 1} if method != "joint" else {}
    r = run_experiment(RunConfig.from_dict(_cfg(tmp_path, method=method, method_options=opts)))
    assert r.test["acc"] > 0.5  # 3 classes
    assert set(r.test) >= {"acc_rgb", "acc_depth", "acc_imu"}
    cfg, model, splits = load_run(r.run_dir)  # rebuilt from the recorded targets
    assert cfg.model.target == "user_project:build" and type(model).__name__ == "TinyModel"
    table = valuate_dataset(model, splits.test)
    assert table.phi.shape == (48, 3)
    torch.testing.assert_close(table.phi.sum(1), table.values[:, -1] - table.values[:, 0])
    if method != "joint":
        last = r.history[-1]
        assert last["train_units"] > 120 or method == "modality-level"


def test_user_run_resumes_exactly(tmp_path):
    full = run_experiment(
        RunConfig.from_dict(_cfg(tmp_path / "a", method="sample-level", method_options={"warmup": 1}))
    )
    short = _cfg(tmp_path / "b", method="sample-level", method_options={"warmup": 1})
    short["train"] = dict(short["train"], epochs=2)
    run_experiment(RunConfig.from_dict(short))
    resumed = run_experiment(
        RunConfig.from_dict(_cfg(tmp_path / "b", method="sample-level", method_options={"warmup": 1})), resume=True
    )
    assert resumed.test == full.test


def test_cli_yaml_value_compare_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user.yaml").write_text(yaml.safe_dump(_cfg(Path("runs"), name="mine", method="joint")))
    runner = CliRunner()
    for args in (
        ["train", "--config", "user.yaml"],
        ["value", "runs/mine", "--split", "val"],
        [
            "compare",
            "--config",
            "user.yaml",
            "--methods",
            "joint,sample-level,modality-level",
            "--seeds",
            "0",
            "--set",
            "method_options.warmup=1",
            "--name",
            "cmp",
        ],
        ["report", "runs/cmp"],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, (args, res.output)
    assert (tmp_path / "runs/mine/valuation/val.parquet").is_file()
    assert (tmp_path / "runs/cmp/report.html").is_file()
    rows = pd.read_csv(tmp_path / "runs/cmp/compare.csv")
    assert sorted(rows[~rows["method"].str.contains("@")]["method"]) == ["joint", "modality-level", "sample-level"]


def test_clear_errors_name_the_target(tmp_path):
    with pytest.raises(ConfigError, match="cannot import module 'no_such_pkg'"):
        RunConfig.from_dict(_cfg(tmp_path, model={"target": "no_such_pkg:build"}))
    with pytest.raises(ConfigError, match="has no attribute 'nope'"):
        RunConfig.from_dict(_cfg(tmp_path, data={"target": "user_project:nope"}))
    with pytest.raises(ConfigError, match="must look like"):
        RunConfig.from_dict(_cfg(tmp_path, data={"target": "user_project.load"}))
    with pytest.raises(ConfigError, match=r"user_project:not_a_model.*lacks modalities, encode, fuse"):
        run_experiment(RunConfig.from_dict(_cfg(tmp_path, model={"target": "user_project:not_a_model"})))
    with pytest.raises(ConfigError, match="cannot be called with options"):
        run_experiment(
            RunConfig.from_dict(_cfg(tmp_path, model={"target": "user_project:build", "options": {"depth": 3}}))
        )
    with pytest.raises(DataError, match="user_project:bad_labels.*val split"):
        run_experiment(RunConfig.from_dict(_cfg(tmp_path, data={"target": "user_project:bad_labels"})))
