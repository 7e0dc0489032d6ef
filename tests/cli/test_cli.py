import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from mmcoop.cli.app import app

runner = CliRunner()


def _ok(result):
    assert result.exit_code == 0, result.output
    return result.output


def test_train_value_report_on_synthetic(tmp_path):
    out = _ok(
        runner.invoke(
            app,
            [
                "train",
                "--dataset",
                "synthetic",
                "--epochs",
                "2",
                "--out-dir",
                str(tmp_path),
                "--set",
                "train.progress=false",
                "--name",
                "r",
            ],
        )
    )
    assert "acc_m0" in out
    run = tmp_path / "r"
    assert json.loads((run / "results.json").read_text())["epochs"] == 2
    out = _ok(runner.invoke(app, ["value", str(run), "--split", "val"]))
    assert "mean phi" in out and "phi_m0" in out
    table = pd.read_parquet(run / "valuation" / "val.parquet")
    assert len(table) == 100 and {"phi_m0", "phi_m1", "label", "index"} <= set(table.columns)
    # efficiency of the paper value: phi sums to |N| = 2 if the fused prediction is correct, else 0
    correct = table["fused_pred"] == table["label"]
    assert ((table["phi_m0"] + table["phi_m1"]) == 2 * correct).all()
    out = _ok(runner.invoke(app, ["report", str(run)]))
    assert (run / "report.html").exists()


def test_resume_from_cli(tmp_path):
    args = [
        "train",
        "--dataset",
        "synthetic",
        "--out-dir",
        str(tmp_path),
        "--name",
        "r",
        "--set",
        "train.progress=false",
    ]
    _ok(runner.invoke(app, args + ["--epochs", "1"]))
    # a second start of the same run is refused, nothing is lost
    res = runner.invoke(app, args + ["--epochs", "1"])
    assert res.exit_code == 2 and "--resume" in res.output
    _ok(runner.invoke(app, ["train", "--resume", str(tmp_path / "r")]))


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "--dataset", "imagenet"], "unknown dataset 'imagenet'; valid datasets:"),
        (["train", "--dataset", "synthetic", "--method", "ogm"], "unknown method 'ogm'; valid methods:"),
        (["train", "--dataset", "synthetic", "--set", "train.lrr=1"], "valid keys:"),
        (["train", "--config", "/nonexistent/x.yaml"], "does not exist"),
        (["value", "/nonexistent/run"], "not a run directory"),
        (["compare", "--dataset", "synthetic", "--seeds", "a,b"], "--seeds must be comma-separated integers"),
    ],
)
def test_bad_input_gives_one_clear_message(args, needle):
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert needle in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output


def test_compare_writes_tables(tmp_path):
    out = _ok(
        runner.invoke(
            app,
            [
                "compare",
                "--dataset",
                "synthetic",
                "--methods",
                "joint,sample-level:weighted",
                "--seeds",
                "0,1",
                "--epochs",
                "2",
                "--out-dir",
                str(tmp_path),
                "--set",
                "method_options.warmup=1",
                "--set",
                "train.progress=false",
            ],
        )
    )
    assert "sample-level:weighted" in out and "s/epoch" in out
    df = pd.read_csv(tmp_path / "compare_synthetic" / "compare.csv")
    assert len(df) == 4 and set(df["seed"]) == {0, 1}
    summary = pd.read_csv(tmp_path / "compare_synthetic" / "summary.csv")
    assert list(summary["seeds"]) == [2, 2]
    mean = df[df.method == "joint"]["test_acc"].mean()
    assert summary.set_index("method").loc["joint", "test_acc_mean"] == pytest.approx(mean)


def test_datasets_lists_where_data_was_found(data_root):
    out = _ok(runner.invoke(app, ["datasets", "--data-root", str(data_root)]))
    assert "avmnist" in out and "mfeat" in out and "synthetic" in out


def test_value_on_debiased_run_scores_the_degraded_modality(tmp_path):
    _ok(
        runner.invoke(
            app,
            [
                "train",
                "--dataset",
                "synthetic",
                "--epochs",
                "2",
                "--out-dir",
                str(tmp_path),
                "--debiased-strength",
                "1.0",
                "--name",
                "d",
                "--set",
                "train.progress=false",
            ],
        )
    )
    out = " ".join(_ok(runner.invoke(app, ["value", str(tmp_path / "d"), "--split", "test"])).split())
    assert "Does a low phi find the degraded modality? AUC per modality: m0" in out
    table = pd.read_parquet(tmp_path / "d" / "valuation" / "test.parquet")
    assert "degraded" in table.columns
