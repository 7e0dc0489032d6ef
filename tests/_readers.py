"""One check every dataset reader's fixture passes: train one epoch with the CLI, then `mmcoop value`.

`train_and_value` trains ``dataset`` for one epoch (tiny model, CPU), runs ``mmcoop value RUN
--split test --top 2`` and returns the valuation table of the test split, so a reader's test
can compare its ``sample_id`` column with the ids the fixture wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from typer.testing import CliRunner

from mmcoop.cli.app import app
from mmcoop.valuation import ValuationTable


def train_and_value(tmp: Path, dataset: str, sets: Sequence[str] = (), method: str = "joint") -> ValuationTable:
    """Train ``dataset`` one epoch under ``tmp/runs/r`` and value its test split through the CLI.

    Args:
        tmp: a temporary folder (the run goes to ``tmp/runs/r``).
        dataset: a registered dataset.
        sets: extra ``--set key=value`` overrides (e.g. ``dataset_options.root=...``).
        method: the training method.

    Returns:
        the test split's valuation table written by ``mmcoop value``.
    """
    args = ["train", "--dataset", dataset, "--method", method, "--name", "r", "--out-dir", str(tmp / "runs")]
    args += ["--device", "cpu"]
    for s in ("train.epochs=1", "train.batch_size=4", "train.progress=false", "model.dim=8", *sets):
        args += ["--set", s]
    runner = CliRunner()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    run = tmp / "runs" / "r"
    res = runner.invoke(app, ["value", str(run), "--split", "test", "--top", "2"])
    assert res.exit_code == 0, res.output
    table = ValuationTable.from_parquet(run / "valuation" / "test.parquet")
    for sid in table.lowest(table.modalities[0], 2).sample_id:
        assert sid in res.output  # the lowest-contribution samples are printed by id
    return table
