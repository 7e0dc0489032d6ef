"""Compute-matched comparisons: paired gains from the run files, the extra joint runs given the
same sample visits / optimizer steps, early stopping, the CLI table and the Figure 1 report."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mmcoop.cli.app import app
from mmcoop.experiment import RunConfig, read_metrics, run_experiment
from mmcoop.experiment.compare import parse_methods, run_compare
from mmcoop.experiment.stats import t_interval
from mmcoop.methods import METHODS
from mmcoop.methods.base import Method
from mmcoop.report import write_report
from mmcoop.train import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIZES = [200, 60, 60]  # train / val / test samples
BATCH = 32


class _Twice(Method):
    """Every training sample twice per epoch: 2x the sample visits and optimizer steps of joint."""

    name = "test-twice"

    def train_set(self, ctx):
        d = ctx.train_data
        return d.view(d.rows.repeat(2), d.keep.repeat(2, 1))


class _DoubleStep(Method):
    """Two optimizer steps on every batch: joint's sample visits, 2x its optimizer steps (like MLA's M steps)."""

    name = "test-double-step"

    def train_step(self, ctx, batch):
        super().train_step(ctx, batch)
        return super().train_step(ctx, batch)


@pytest.fixture(autouse=True)
def _test_methods():
    added = []
    for cls in (_Twice, _DoubleStep):
        if cls.name not in METHODS:
            METHODS.register(cls.name)(cls)
            added.append(cls.name)
    yield
    for name in added:
        METHODS._items.pop(name)


def _base(tmp_path: Path, **train) -> RunConfig:
    return RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"sizes": SIZES, "noise": [3.0, 4.0]},
            "train": {"epochs": 2, "progress": False, "batch_size": BATCH, **train},
            "out_dir": str(tmp_path),
        }
    )


def _acc(run_dir: Path) -> float:
    return json.loads((run_dir / "results.json").read_text())["test_acc"]


def test_paired_gains_and_matched_joint_runs(tmp_path):
    cdir, df, summary = run_compare(
        _base(tmp_path),
        parse_methods("joint,test-twice,test-double-step"),
        [0, 1],
        name="cmp",
        matched=("visits", "steps"),
    )
    # one extra joint run per seed, shared by twice (visits, steps) and double-step (steps)
    assert sorted(p.name for p in cdir.iterdir() if p.is_dir()) == sorted(
        f"{m}_seed{s}" for m in ("joint", "test-twice", "test-double-step", "joint@4ep") for s in (0, 1)
    )
    for seed in (0, 1):
        joint = read_metrics(cdir / f"joint_seed{seed}")
        per_epoch_visits, per_epoch_steps = joint[0]["train_units"], joint[0]["epoch_steps"]
        assert per_epoch_visits == SIZES[0] and per_epoch_steps == math.ceil(SIZES[0] / BATCH)
        twice, double = (
            read_metrics(cdir / f"test-twice_seed{seed}"),
            read_metrics(cdir / f"test-double-step_seed{seed}"),
        )
        assert twice[-1]["sample_visits"] == 2 * 2 * SIZES[0] and double[-1]["sample_visits"] == 2 * SIZES[0]
        assert double[-1]["optimizer_steps"] == 2 * 2 * per_epoch_steps
        # joint epochs for the same total: floor(total / per epoch + 1/2)
        assert math.floor(twice[-1]["sample_visits"] / per_epoch_visits + 0.5) == 4
        assert math.floor(twice[-1]["optimizer_steps"] / per_epoch_steps + 0.5) == 4  # 26 / 7 = 3.7
        assert math.floor(double[-1]["optimizer_steps"] / per_epoch_steps + 0.5) == 4
        matched = cdir / f"joint@4ep_seed{seed}"
        assert yaml.safe_load((matched / "config.yaml").read_text())["train"]["epochs"] == 4
        m = read_metrics(matched)
        assert len(m) == 4 and m[-1]["sample_visits"] == 4 * SIZES[0]

        rows = df[df["seed"] == seed].set_index("method")
        j, j4 = _acc(cdir / f"joint_seed{seed}"), _acc(matched)
        tw, db = _acc(cdir / f"test-twice_seed{seed}"), _acc(cdir / f"test-double-step_seed{seed}")
        assert rows.loc["test-twice", "gain_epochs"] == pytest.approx(100 * (tw - j))
        assert rows.loc["test-twice", "gain_visits"] == pytest.approx(100 * (tw - j4))
        assert rows.loc["test-twice", "gain_steps"] == pytest.approx(100 * (tw - j4))
        assert rows.loc["test-double-step", "gain_visits"] == pytest.approx(100 * (db - j))  # same visits as joint
        assert rows.loc["test-double-step", "gain_steps"] == pytest.approx(100 * (db - j4))
        assert rows.loc["test-twice", "baseline_epochs_visits"] == 4
        assert rows.loc["test-double-step", "baseline_epochs_visits"] == 2
        assert rows.loc["joint@4ep", "role"] == "matched" and rows.loc["joint@4ep", "epochs_run"] == 4
        assert rows.loc["test-double-step", "optimizer_steps"] == double[-1]["optimizer_steps"]
    # the summary's mean and interval are those of the per-seed gains
    s = summary.set_index("method")
    gains = df.loc[df["method"] == "test-twice", "gain_visits"].to_list()
    mean, sd, low, high = t_interval(gains)
    assert s.loc["test-twice", "gain_visits_mean"] == pytest.approx(mean)
    assert (s.loc["test-twice", "gain_visits_low"], s.loc["test-twice", "gain_visits_high"]) == (
        pytest.approx(low, nan_ok=True),
        pytest.approx(high, nan_ok=True),
    )
    assert pd.read_csv(cdir / "compare.csv")["sample_visits"].notna().all()

    out = write_report(cdir)
    png = (cdir / "plots" / "figure1_gain.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    html = out.read_text()
    assert base64.b64encode(png).decode("ascii") in html and "Figure 1" in html


def test_no_matched_run_when_visits_do_not_exceed_joint(tmp_path):
    cdir, df, _ = run_compare(_base(tmp_path, epochs=1), parse_methods("test-double-step"), [0], name="c")
    assert list(df["method"]) == ["joint", "test-double-step"]  # joint prepended as the baseline; visits equal
    assert df.loc[1, "gain_visits"] == df.loc[1, "gain_epochs"] and "gain_steps" not in df.columns


def _scripted_val(monkeypatch, accs: list[float]) -> dict[str, int]:
    """Trainer.evaluate with scripted validation accuracies; counts the test evaluations."""
    real = Trainer.evaluate
    calls = {"val": 0, "test": 0}

    def evaluate(self, dataset, desc="eval"):
        out = real(self, dataset, desc)
        if desc == "val":
            out["acc"] = accs[calls["val"]]
        calls[desc] = calls.get(desc, 0) + 1
        return out

    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    return calls


def test_early_stopping_on_validation(tmp_path, monkeypatch):
    calls = _scripted_val(monkeypatch, [0.5, 0.6, 0.6, 0.55, 0.9, 0.95])
    cfg = _base(tmp_path, epochs=6, patience=2)
    r = run_experiment(cfg)
    lines = read_metrics(r.run_dir)
    assert [x["epoch"] for x in lines] == [1, 2, 3, 4]  # epochs 3 and 4 did not beat epoch 2
    assert [x["stopped_early"] for x in lines] == [False, False, False, True]
    res = json.loads((r.run_dir / "results.json").read_text())
    assert res["epochs"] == 4 and res["best_epoch"] == 2 and calls["test"] == 1
    assert yaml.safe_load((r.run_dir / "config.yaml").read_text())["train"]["patience"] == 2
    # resuming a stopped run trains no further
    calls["val"] = 0
    again = run_experiment(cfg, resume=True)
    assert len(again.history) == 4 and calls["val"] == 0


def test_patience_must_not_be_negative():
    from mmcoop.errors import ConfigError

    with pytest.raises(ConfigError, match="train.patience"):
        RunConfig.from_dict({"dataset": "synthetic", "train": {"patience": -1}})


def test_cli_compare_prints_gains_and_records_early_stop(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        app,
        [
            "compare",
            "--dataset",
            "synthetic",
            "--methods",
            "test-twice",
            "--seeds",
            "0",
            "--epochs",
            "1",
            "--batch-size",
            str(BATCH),
            "--early-stop",
            "3",
            "--matched",
            "visits,steps",
            "--name",
            "c",
            "--set",
            "train.progress=false",
            "--set",
            f"dataset_options.sizes={SIZES}",
        ],
    )
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "gain over joint training" in out and "(1 seed: no CI)" in out and "gain@visits" in out
    assert yaml.safe_load((tmp_path / "runs/c/base_config.yaml").read_text())["train"]["patience"] == 3
    rows = pd.read_csv(tmp_path / "runs/c/compare.csv")
    assert list(rows["method"]) == ["joint", "test-twice", "joint@2ep"]
    assert rows.set_index("method").loc["test-twice", "gain_visits"] == pytest.approx(
        100 * (_acc(tmp_path / "runs/c/test-twice_seed0") - _acc(tmp_path / "runs/c/joint@2ep_seed0"))
    )
