"""Lightning under DDP, as the guide documents it: ``Trainer(devices=2, strategy="ddp",
accelerator="cpu")`` (2 Gloo processes on the CPU) with ``ModalityValuation()`` and both executions of
``SampleLevelResampling``, bounded by a timeout (a hang fails the test, its processes are killed)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from torch import nn

import _helpers

pl = pytest.importorskip("pytorch_lightning")  # the [lightning] extra; part of the dev extra CI installs

from mmcoop.errors import ConfigError  # noqa: E402
from mmcoop.integrations.lightning import ModalityLevelResampling, SampleLevelResampling  # noqa: E402

WORKER = Path(__file__).with_name("lightning_ddp_worker.py")
N_TRAIN, N_VAL, BATCH = 64, 24, 4  # the worker's data and loader


def test_two_processes_finish_with_valuation_and_both_executions(tmp_path: Path) -> None:
    proc = _helpers.run_bounded([sys.executable, str(WORKER), str(tmp_path)], timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = {}
    for execution in ("duplicate", "weighted"):
        ranks = [json.loads((tmp_path / execution / f"rank{r}.json").read_text()) for r in (0, 1)]
        assert ranks[0]["plans"] == ranks[1]["plans"]  # one plan for all ranks
        assert ranks[0]["batches"] == ranks[1]["batches"]  # so every rank steps the same number of times
        plans = ranks[0]["plans"]
        assert plans["0"] is None and plans["1"] > 0 and plans["2"] > 0  # warm-up, then re-sampled epochs
        assert ranks[0]["tables"] == ranks[1]["tables"] == [1, 2, 3]
        # the default dirpath: <trainer.log_dir>/valuation, written once (rank 0), the val split's rows
        log_dir = Path(ranks[0]["log_dir"])
        assert log_dir.parent.parent == tmp_path / execution and ranks[1]["log_dir"] == str(log_dir)
        files = sorted(p.name for p in (log_dir / "valuation").iterdir())
        assert files == ["val_epoch_001.parquet", "val_epoch_002.parquet", "val_epoch_003.parquet"]
        assert len(pd.read_parquet(log_dir / "valuation" / files[-1])) == N_VAL
        runs[execution] = ranks
    per_rank = N_TRAIN // 2 // BATCH
    dup = runs["duplicate"]
    for e in (1, 2):  # the units are appended and sharded: ceil((N + units) / 2) per rank
        assert dup[0]["batches"][e] == math.ceil(math.ceil((N_TRAIN + dup[0]["plans"][str(e)]) / 2) / BATCH)
    assert dup[0]["batches"][0] == per_rank
    assert dup[0]["dropped"] > 0 and dup[1]["dropped"] > 0 and dup[0]["with_copies"] == 0
    weighted = runs["weighted"]
    for rank in weighted:  # the originals only, each batch with copies (zeros in the warm-up epoch)
        assert rank["batches"] == [per_rank] * 3
        assert rank["with_copies"] == 3 * per_rank and rank["dropped"] == 0
        assert rank["units"][0] == 0 and rank["logged"] == ["loss/fused_ce", "loss/total"]
    for e in (1, 2):  # the two ranks' shards hold every original once: all the plan's units between them
        assert weighted[0]["units"][e] + weighted[1]["units"][e] == weighted[0]["plans"][str(e)]


def ddp_trainer(strategy: str):
    return pl.Trainer(devices=2, strategy=strategy, accelerator="cpu", logger=False, enable_progress_bar=False)


@pytest.mark.parametrize("callback", [SampleLevelResampling, ModalityLevelResampling])
def test_duplicate_turns_on_unused_parameter_detection(callback) -> None:
    trainer = ddp_trainer("ddp")  # no processes start before fit
    callback(execution="duplicate").setup(trainer, nn.Linear(1, 1), "fit")
    assert trainer.strategy._ddp_kwargs["find_unused_parameters"] is True
    trainer = ddp_trainer("ddp")
    callback(execution="weighted").setup(trainer, nn.Linear(1, 1), "fit")  # every encoder runs: no graph search
    assert "find_unused_parameters" not in trainer.strategy._ddp_kwargs
    with pytest.raises(ConfigError, match="strategy='ddp_find_unused_parameters_true'"):
        callback(execution="duplicate").setup(ddp_trainer("ddp_find_unused_parameters_false"), nn.Linear(1, 1), "fit")
    callback(execution="duplicate").setup(ddp_trainer("ddp_find_unused_parameters_true"), nn.Linear(1, 1), "fit")


def test_single_process_strategy_is_left_alone() -> None:
    trainer = pl.Trainer(devices=1, accelerator="cpu", logger=False, enable_progress_bar=False)
    before = vars(trainer.strategy).copy()
    SampleLevelResampling().setup(trainer, nn.Linear(1, 1), "fit")
    assert vars(trainer.strategy) == before
