"""Trainer callbacks: every documented event, once per epoch, in order (also on resume); the console line."""

from __future__ import annotations

import io
from typing import Any

import pytest

from mmcoop.data import DatasetSplits
from mmcoop.experiment import run_experiment
from mmcoop.experiment.run import resume_experiment
from mmcoop.methods import build_method
from mmcoop.train import TrainConfig, Trainer
from mmcoop.train.callbacks import EVENTS, Callback, ConsoleLine
from mmcoop.utils.progress import progress_bar

from _helpers import tiny_data, tiny_model
from _runs import tiny_cfg

pytestmark = pytest.mark.usefixtures("one_thread")


class Log(Callback):
    """Records (event, epoch, detail) for every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_fit_start(self, trainer):
        self.events.append(("on_fit_start", trainer.epoch))

    def on_epoch_start(self, trainer, epoch):
        self.events.append(("on_epoch_start", epoch))

    def after_valuation(self, trainer, table, plan):
        assert len(table) > 0 and plan is not None and plan.num_modalities == len(table.modalities)
        self.events.append(("after_valuation", trainer.epoch))

    def after_evaluation(self, trainer, split, metrics):
        assert {"acc", "f1", "loss"} <= set(metrics)
        self.events.append((f"after_evaluation:{split}", trainer.epoch))

    def on_epoch_end(self, trainer, record):
        assert "valuation_table" not in record  # the table travels as an event only
        self.events.append(("on_epoch_end", record["epoch"] - 1))

    def on_fit_end(self, trainer):
        self.events.append(("on_fit_end", trainer.epoch))


def per_epoch(epoch: int, valued: bool) -> list[tuple[str, int]]:
    ev = [("on_epoch_start", epoch)]
    if valued:
        ev.append(("after_valuation", epoch))
    return ev + [("after_evaluation:val", epoch), ("on_epoch_end", epoch)]


def test_every_event_once_per_epoch_in_order() -> None:
    assert EVENTS == (
        "on_fit_start",
        "on_epoch_start",
        "after_valuation",
        "after_evaluation",
        "on_epoch_end",
        "on_fit_end",
    )
    data = tiny_data(48)
    log = Log()
    config = TrainConfig(epochs=3, batch_size=16, progress=False, device="cpu")
    trainer = Trainer(
        tiny_model(data),
        build_method("sample-level", {"warmup": 1}),
        DatasetSplits("t", data, data, data),
        config,
        callbacks=[log],
    )
    trainer.fit()
    expect = [("on_fit_start", 0)]
    for e in range(3):
        expect += per_epoch(e, valued=e >= 1)
    assert log.events == expect + [("on_fit_end", 3)]


def test_run_experiment_callbacks_and_resume(tmp_path) -> None:
    log = Log()
    cfg = tiny_cfg(tmp_path, method="sample-level", method_options={"warmup": 0}, train={"epochs": 2})
    run_experiment(cfg, callbacks=[log])
    first = [("on_fit_start", 0)] + per_epoch(0, True) + per_epoch(1, True) + [("on_fit_end", 2)]
    assert log.events == first + [("after_evaluation:test", 2)]
    assert (cfg.run_dir / "valuation" / "epoch_001.parquet").is_file()  # the run writer got the event too
    assert (cfg.run_dir / "valuation" / "epoch_002.parquet").is_file()
    again = Log()
    resume_experiment(cfg.run_dir, {"train": {"epochs": 3}}, callbacks=[again])
    assert again.events == [("on_fit_start", 2)] + per_epoch(2, True) + [
        ("on_fit_end", 3),
        ("after_evaluation:test", 3),
    ]
    assert (cfg.run_dir / "valuation" / "epoch_003.parquet").is_file()


def test_console_line_and_no_bars_off_a_terminal(capsys) -> None:
    line = ConsoleLine.format(
        {
            "epoch": 3,
            "train_loss": 0.5,
            "val_acc": 0.875,
            "val_acc_audio": 0.5,
            "val_acc_video": 0.75,
            "time_valuation_s": 1.25,
            "seconds": 4.0,
        },
        10,
    )
    assert line == ("epoch 3/10  loss 0.5000  val acc 0.8750  alone: audio 0.5000 video 0.7500  valuation 1.2s  4.0s")
    out = io.StringIO()
    data = tiny_data(32)
    config = TrainConfig(epochs=2, batch_size=16, progress=False, device="cpu")
    Trainer(
        tiny_model(data),
        build_method("joint"),
        DatasetSplits("t", data, data, data),
        config,
        callbacks=[ConsoleLine(out)],
    ).fit()
    lines = out.getvalue().splitlines()
    assert [ln.split("  ")[0] for ln in lines] == ["epoch 1/2", "epoch 2/2"] and "alone: a " in lines[0]
    # under pytest stderr is not a terminal: the bar is the plain iterable, nothing drawn
    it = [1, 2]
    assert progress_bar(it, "val", enabled=True) is it
    config = TrainConfig(epochs=1, batch_size=16, progress=True, device="cpu")
    Trainer(tiny_model(data), build_method("joint"), DatasetSplits("t", data, data, data), config).fit()
    captured = capsys.readouterr()
    assert captured.out.startswith("epoch 1/1  loss ") and "it/s" not in captured.err
