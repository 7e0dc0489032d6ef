"""A run of a user's own model and data (config targets): `mmcoop report` shows what the run used in Setup
and draws the samples in the explorer through the user's data.target (images, and a sequence as a heat map)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmcoop.cli.app import app
from mmcoop.experiment import RunConfig, run_experiment
from mmcoop.report import write_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(autouse=True)
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))


def _data(html: str) -> dict:
    blob = re.search(r'<script type="application/json" id="mmx-data">(.*?)</script>', html, re.DOTALL).group(1)
    return json.loads(blob.replace("<\\/", "</"))


def test_user_run_report(tmp_path: Path) -> None:
    cfg = {
        "data": {"target": "user_project:load", "options": {"n_train": 60, "n_eval": 24}},
        "model": {"target": "user_project:build", "options": {"hidden": 16}},
        "method": "sample-level",
        "method_options": {"warmup": 1},
        "train": {"epochs": 2, "progress": False, "batch_size": 32},
        "out_dir": str(tmp_path),
        "name": "u",
    }
    run = run_experiment(RunConfig.from_dict(cfg)).run_dir
    res = CliRunner().invoke(app, ["value", str(run), "--split", "test"])
    assert res.exit_code == 0, res.output

    # in Python without a loader: the data of a data.target is not rebuilt -> values only, and said so
    html = write_report(run, top_k=3).read_text()
    d = _data(html)
    assert d["media"] == {} and any("data.target" in n for n in d["notes"])

    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    html = (run / "report.html").read_text()
    setup = html[html.index('id="setup"') : html.index('id="results"')]
    assert "user_project:build (your code); hidden=16" in setup and "user_project:load (your code)" in setup
    assert "late-fusion" not in setup and "fusion=concat" not in setup  # built-in defaults the run did not use
    d = _data(html)
    assert [v["key"] for v in d["views"]] == ["test", "epoch_2"] and d["notes"] == []
    test_media = d["media"]["test"]
    shown = {d["views"][0]["id"][p] for side in ("least", "most") for v in d["views"][0][side].values() for p in v}
    assert set(test_media) == shown and len(shown) >= 3
    one = next(iter(test_media.values()))["r"]
    assert set(one) == {"rgb", "depth", "imu"} and all(x["img"].startswith("data:image/png") for x in one.values())
    assert 'id="degraded"' not in html and "not debiased" in html  # an empty section is left out, and listed
