"""``mmcoop data prepare`` from raw videos to training: labels from class folders or a CSV, split files, the
official names, a carved val split, and the two-command path (prepare, then train + value).

Videos are generated with PyAV (``tests/_video.py``): two classes that differ in colour and
in the pitch of a tone, one second each.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _video import mux_video
from typer.testing import CliRunner

from mmcoop.cli.app import app

pytestmark = pytest.mark.usefixtures("one_thread")
CLASSES = {"cat": ((40, 40, 200), 1200.0), "dog": ((200, 40, 40), 440.0)}


def make_video(path: Path, cls: str, seed: int) -> None:
    colour, freq = CLASSES[cls]
    rng = np.random.default_rng(seed)
    frames = np.clip(np.array(colour) + rng.integers(-20, 20, (4, 16, 16, 3)), 0, 255).astype(np.uint8)
    t = np.arange(8000) / 8000
    audio = (8000 * np.sin(2 * np.pi * freq * t) + rng.normal(0, 300, t.shape)).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    mux_video(path, frames, 4, audio, 8000, "mpeg4", "pcm_s16le")


def run(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())  # rich wraps long lines


@pytest.mark.slow
def test_raw_videos_in_class_folders_to_a_trained_valued_run_in_two_commands(tmp_path: Path, monkeypatch) -> None:
    raw = tmp_path / "raw"
    for split, n in (("train", 3), ("test", 1)):
        for c, cls in enumerate(CLASSES):
            for i in range(n):
                make_video(raw / split / cls / f"{cls}_{split}{i}.mkv", cls, 10 * c + i)
    out = tmp_path / "kinetics-sounds"
    text = run(
        "data",
        "prepare",
        "--dataset",
        "kinetics-sounds",
        "--videos",
        str(raw),
        "--out",
        str(out),
        "--layout",
        "official",
        "--no-progress",
    )
    assert "8 clip(s) prepared" in text and "moved 2 train clip(s) to val" in text
    assert json.loads((out / "ks_audio" / "classes.json").read_text()) == {"classes": ["cat", "dog"]}
    assert (out / "ks_audio" / "test_1fps_path.txt").read_text().split("\n")[:2] == [
        "test/cat_test0 0",
        "test/dog_test0 1",
    ]
    assert (out / "ks_visual" / "val").is_dir() and (out / "ks_audio" / "val_1fps_path.txt").is_file()
    monkeypatch.chdir(tmp_path)
    run(
        "train",
        "--dataset",
        "kinetics-sounds",
        "--set",
        f"dataset_options.root={out}",
        "--set",
        "dataset_options.image_size=16",
        "--set",
        "dataset_options.num_frames=2",
        "--set",
        "model.dim=8",
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--name",
        "ks",
    )
    results = json.loads((tmp_path / "runs" / "ks" / "results.json").read_text())
    assert "acc" in json.dumps(results)
    run("value", str(tmp_path / "runs" / "ks"), "--split", "test")
    table = pd.read_parquet(tmp_path / "runs" / "ks" / "valuation" / "test.parquet")
    assert len(table) == 2  # one test clip per class


def test_labels_csv_splits_and_resume(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    rows = []
    for c, cls in enumerate(CLASSES):
        for i in range(3):
            make_video(raw / f"{cls}{i}.mkv", cls, 10 * c + i)
            rows.append(f"{cls}{i},{cls},{'test' if i == 2 else 'train'}")
    (tmp_path / "labels.csv").write_text("id,label,split\n" + "\n".join(rows) + "\n")
    out = tmp_path / "ks"
    args = (
        "data",
        "prepare",
        "--dataset",
        "kinetics-sounds",
        "--videos",
        str(raw),
        "--out",
        str(out),
        "--labels",
        str(tmp_path / "labels.csv"),
        "--no-progress",
    )
    text = run(*args)
    assert "6 clip(s) prepared" in text and "moved 2 train clip(s) to val (val_fraction=0.1" in text
    lines = {s: (out / f"{s}_1fps_path.txt").read_text().split() for s in ("train", "val", "test")}
    assert lines["test"] == ["test/cat2", "0", "test/dog2", "1"]
    assert len(lines["train"]) == len(lines["val"]) == 4  # one clip per class in each
    assert (out / "audio" / "test" / "dog2.npy").is_file() and (out / "visual" / "test" / "dog2").is_dir()
    (out / "test_1fps_path.txt").write_text("test/cat2 0\n")
    again = run(*args)
    assert "0 clip(s) prepared, 6 already done" in again
    assert (out / "test_1fps_path.txt").read_text() == "test/cat2 0\ntest/dog2 1\n"  # prepare's own file: rewritten
    report = json.loads((out / "prepare_report.json").read_text())
    assert "test_1fps_path.txt" in report["index_files"] and report["classes"] == ["cat", "dog"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "test_1fps_path.txt").write_text("mine\n")  # a file prepare did not write: left alone
    text = run(*args[:7], str(other), *args[8:])
    assert (other / "test_1fps_path.txt").read_text() == "mine\n"
    assert "test_1fps_path.txt exists and was not written by prepare" in text
