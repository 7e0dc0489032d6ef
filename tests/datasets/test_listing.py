"""`mmcoop datasets` lists the BalanceBenchmark datasets and BasicMotions; `mmcoop datasets NAME` shows each layout."""

from __future__ import annotations

from typer.testing import CliRunner

from mmcoop.cli.app import app

NEW = {  # dataset -> a line of its layout
    "food101": "texts/train_titles.csv",
    "mosei": "mosei_senti_data_noalign.pkl",
    "mosi": "mosi_data_noalign.pkl",
    "balancedav": "visual/<id>.hdf5",
    "basicmotions": "BasicMotions_TRAIN.ts",
}


def test_the_list_and_each_layout(tmp_path) -> None:
    res = CliRunner().invoke(app, ["datasets", "--data-root", str(tmp_path)])
    assert res.exit_code == 0, res.output
    names = {line.split("│")[1].strip() for line in res.output.splitlines() if line.count("│") > 2}
    assert set(NEW) <= names
    for name, line in NEW.items():
        res = CliRunner().invoke(app, ["datasets", name, "--data-root", str(tmp_path)])
        assert res.exit_code == 0 and line in res.output, res.output
    # basicmotions is built in (aeon's copy), the others are not in an empty data root and say why
    res = CliRunner().invoke(app, ["datasets", "basicmotions", "--data-root", str(tmp_path)])
    assert "splits (train/val/test): 32/8/40" in res.output
    res = CliRunner().invoke(app, ["datasets", "mosei", "--data-root", str(tmp_path)])
    assert "not found" in res.output and "Traceback" not in res.output
