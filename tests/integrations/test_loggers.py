"""Live logging: train.loggers writes TensorBoard events, a W&B offline run, a CSV; missing extras fail clearly."""

from __future__ import annotations

import csv
import glob
import json
import re
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmcoop.cli.app import app
from mmcoop.errors import ConfigError
from mmcoop.experiment import run_experiment
from mmcoop.integrations.loggers import LOGGERS, build_loggers, check_loggers, scalars

from _runs import TINY_ARGS, tiny_cfg

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "logging.md"
MODALITIES = ["m0", "m1"]  # the synthetic dataset's


def documented_tags() -> set[str]:
    """The scalar tags listed in docs/guides/logging.md, with <modality> expanded."""
    block = re.search(r"<!-- logged-scalars -->\n```text\n(.*?)```", GUIDE.read_text(), flags=re.S).group(1)
    tags = set()
    for tag in block.split():
        tags |= {tag.replace("<modality>", m) for m in MODALITIES} if "<modality>" in tag else {tag}
    return tags


def metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_scalars_map_records_to_tags() -> None:
    rec = {
        "epoch": 2,
        "train_loss": 0.5,
        "val_acc": 0.75,
        "val_acc_m0": 0.5,
        "contrib_m1": 0.25,
        "copies_m0": 3,
        "time_valuation_s": 1.5,
        "is_best": True,
        "val_f1": float("nan"),
        "train_units": 10,
    }
    assert scalars(rec) == {
        "loss/train": 0.5,
        "acc/val": 0.75,
        "acc_alone/m0": 0.5,
        "contribution/m1": 0.25,
        "copies/m0": 3.0,
        "time/valuation_s": 1.5,
    }


def test_tensorboard_event_files_hold_the_documented_scalars(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    res = runner.invoke(
        app,
        [
            "train",
            *TINY_ARGS,
            "--epochs",
            "2",
            "--out-dir",
            str(tmp_path),
            "--name",
            "tb",
            "--method",
            "sample-level",
            "--set",
            "method_options.warmup=0",
            "--set",
            "train.loggers=[jsonl,tensorboard]",
        ],
    )
    assert res.exit_code == 0, res.output
    run = tmp_path / "tb"
    assert glob.glob(str(run / "tensorboard" / "events.out.tfevents.*"))
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert documented_tags() <= tags, documented_tags() - tags
    recs = metrics(run)
    for tag, key in (
        ("loss/train", "train_loss"),
        ("acc/val", "val_acc"),
        ("acc_alone/m1", "val_acc_m1"),
        ("contribution/m0", "contrib_m0"),
        ("copies/m1", "copies_m1"),
    ):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2]
        assert [e.value for e in events] == pytest.approx([r[key] for r in recs], rel=1e-6)
    assert {"phi/m0", "phi/m1"} <= set(acc.Tags()["histograms"])
    hist = acc.Histograms("phi/m0")[0].histogram_value
    assert hist.num == 48  # one phi per training sample
    # the event files are mmcoop's: --overwrite replaces the run instead of refusing
    res = runner.invoke(
        app, ["train", *TINY_ARGS, "--epochs", "1", "--out-dir", str(tmp_path), "--name", "tb", "--overwrite"]
    )
    assert res.exit_code == 0, res.output
    assert not (run / "tensorboard").exists()


def read_wandb_history(path: str) -> list[dict]:
    """History rows of an offline ``run-*.wandb`` file (LevelDB-log records of wandb protobufs)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, records, cur = Path(path).read_bytes(), 7, 32768, [], b""  # 7-byte W&B file header
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if kind == 0 and length == 0:
            break
        cur += data[pos : pos + length]
        pos += length
        if kind in (1, 4):  # full or last fragment
            records.append(cur)
            cur = b""
    rows = []
    for raw in records:
        rec = pb.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "history":
            rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
    return rows


def test_wandb_offline_run_holds_the_same_scalars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")  # a dev dependency; CI installs it
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = tiny_cfg(
        tmp_path,
        "wb",
        method="sample-level",
        method_options={"warmup": 0},
        train={"epochs": 2, "loggers": ["jsonl", "wandb"]},
    )
    run_experiment(cfg)
    files = glob.glob(str(cfg.run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(files) == 1
    rows = [r for r in read_wandb_history(files[0]) if "loss/train" in r]
    recs = metrics(cfg.run_dir)
    assert [r["_step"] for r in rows] == [1, 2]
    for row, rec in zip(rows, recs):
        assert documented_tags() <= set(row)
        assert row == {**row, **scalars(rec)}  # every scalar of the epoch, same value
        assert sum(row["phi/m0/values"]) == 48  # the histogram of the epoch's valuation: one phi per sample
    again = tiny_cfg(tmp_path, "wb", train={"epochs": 1})
    run_experiment(again, overwrite=True)  # the wandb folders are mmcoop's: replaced, not refused
    assert not (cfg.run_dir / "wandb").exists()


def test_csv_logger_and_resume_keeps_rows(tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path, "c", train={"epochs": 1, "loggers": ["csv"]})
    run_experiment(cfg)
    from mmcoop.experiment.run import resume_experiment

    resume_experiment(cfg.run_dir, {"train": {"epochs": 2}})
    rows = list(csv.DictReader((cfg.run_dir / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    recs = metrics(cfg.run_dir)
    assert [float(r["loss/train"]) for r in rows] == pytest.approx([r["train_loss"] for r in recs])
    assert (cfg.run_dir / "metrics.jsonl").is_file()  # jsonl is written even when not listed
    run_experiment(cfg, overwrite=True)  # metrics.csv is mmcoop's: replaced, not refused
    assert [r["epoch"] for r in csv.DictReader((cfg.run_dir / "metrics.csv").open())] == ["1"]


def test_missing_package_gives_one_clear_message(tmp_path: Path) -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - the project's environment has no mlflow
        pytest.skip("mlflow is installed here")
    with pytest.raises(ConfigError, match=r"pip install 'mmcoop\[mlflow\]'"):
        check_loggers(["jsonl", "mlflow"])
    res = runner.invoke(
        app,
        [
            "train",
            *TINY_ARGS,
            "--epochs",
            "1",
            "--out-dir",
            str(tmp_path),
            "--name",
            "ml",
            "--set",
            "train.loggers=[mlflow]",
        ],
    )
    assert res.exit_code == 2 and "Traceback" not in res.output
    text = " ".join(res.output.split())
    assert "'mlflow' package is not installed" in text and "pip install 'mmcoop[mlflow]'" in text
    assert not (tmp_path / "ml").exists()  # refused before the run directory was made


def test_unknown_logger_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="unknown logger 'tensorbord'; valid loggers: csv, jsonl, mlflow, tensorboard"
    ):
        build_loggers(["tensorbord"], tmp_path)
    assert {"jsonl", "tensorboard", "wandb", "mlflow", "csv"} <= set(LOGGERS.names())
