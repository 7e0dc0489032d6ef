"""Issue 18.4: derived files record the checkpoint they came from and are flagged once it changes.

``mmcoop value`` records the checkpoint (epoch + SHA-256 of the file) in the valuation
table; ``report.html`` records the ``best.pt`` it describes. A resume that finds a better
epoch makes both stale: the resume, ``mmcoop value`` (for the other splits) and
``mmcoop report`` warn, the report itself carries the warning, and recomputing clears it.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from _runs import tiny_cfg
from mmcoop.cli.app import app
from mmcoop.experiment import run_experiment
from mmcoop.utils.runfiles import file_sha256, stale_derived, stale_valuations
from mmcoop.valuation import ValuationTable

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
#: noisy views and a small lr: validation accuracy improves at every one of 3 epochs (best.pt changes)
DATA = {"sizes": [48, 24, 24], "dim": 4, "noise": [2.0, 3.0]}


def _cfg(out, epochs):
    return tiny_cfg(out, "e", dataset_options=DATA, train={"epochs": epochs, "lr": 0.003})


def _ok(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def test_a_valuation_is_flagged_after_a_resume_changes_the_best_checkpoint(tmp_path):
    run = run_experiment(_cfg(tmp_path, 2)).run_dir
    best = run / "checkpoints" / "best.pt"
    _ok(["value", str(run), "--split", "test"])
    _ok(["value", str(run), "--split", "val"])
    info = ValuationTable.from_parquet(run / "valuation" / "test.parquet").info["checkpoint"]
    assert info == {"checkpoint": "best", "epoch": 2, "sha256": file_sha256(best)}
    _ok(["report", str(run)])
    assert stale_derived(run) == []
    with pytest.warns(UserWarning, match="valuation/test.parquet is stale"):
        resumed = run_experiment(_cfg(tmp_path, 3), resume=True)
    assert resumed.history[-1]["is_best"]  # epoch 3 is the new best: best.pt changed
    stale = stale_derived(run)
    assert len(stale) == 3 and all("epoch 2" in m and "epoch 3" in m for m in stale), stale
    assert "mmcoop value" in stale[0] and "mmcoop report" in stale[2]
    text = _ok(["value", str(run), "--split", "test"])  # recomputed; the val table is still stale: said
    assert "warning: valuation/val.parquet is stale" in text and "test.parquet is stale" not in text
    assert ValuationTable.from_parquet(run / "valuation" / "test.parquet").info["checkpoint"]["epoch"] == 3
    text = _ok(["report", str(run)])
    assert "val.parquet is stale" in text
    assert "valuation/val.parquet is stale" in (run / "report.html").read_text()
    _ok(["value", str(run), "--split", "val"])
    assert stale_valuations(run) == []
    _ok(["report", str(run)])
    assert stale_derived(run) == [] and "is stale" not in (run / "report.html").read_text()


def test_a_valuation_from_an_older_mmcoop_is_flagged(tmp_path):
    run = run_experiment(_cfg(tmp_path, 1)).run_dir
    _ok(["value", str(run), "--split", "test"])
    path = run / "valuation" / "test.parquet"
    table = ValuationTable.from_parquet(path)
    table.info.pop("checkpoint")
    table.to_parquet(path)
    assert "records no checkpoint" in stale_valuations(run)[0]
