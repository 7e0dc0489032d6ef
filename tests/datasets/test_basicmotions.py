"""basicmotions: the real BasicMotions files bundled with aeon, and the archive's layout in a data root."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _readers import train_and_value

from mmcoop.data import load_dataset
from mmcoop.datasets import basicmotions as bm
from mmcoop.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def aeon_files() -> Path:
    # the dev extra installs aeon; its absence is a broken setup, not a skip
    found = bm.aeon_dir()
    assert found is not None, "aeon is not installed: pip install 'mmcoop[basicmotions]'"
    return found


@pytest.fixture(scope="module")
def splits(aeon_files: Path):
    return load_dataset("basicmotions", None, seed=0)


def test_the_real_files_split_into_two_sensors(splits, aeon_files: Path) -> None:
    from aeon.datasets import load_basic_motions

    assert splits.info["source"] == "aeon" and splits.modalities == ["accelerometer", "gyroscope"]
    assert [(s.kind, s.shape) for s in splits.specs] == [("sequence", (100, 3))] * 2
    assert {k: len(splits.split(k)) for k in ("train", "val", "test")} == {"train": 32, "val": 8, "test": 40}
    assert torch.bincount(splits.val.labels).tolist() == [2, 2, 2, 2]  # stratified: 2 of each class's 10
    rows = sorted(splits.train.extras["row"].tolist() + splits.val.extras["row"].tolist())
    assert rows == list(range(40))  # train and val partition the train file
    assert splits.test.sample_ids == [f"test_{r:02d}" for r in range(40)]
    assert splits.val.sample_ids == [f"train_{int(r):02d}" for r in splits.val.extras["row"]]
    # by hand: aeon's own loader, channels 0-2 and 3-5, standardised per channel with train's statistics
    x, y = load_basic_motions(split="test")
    xt, _ = load_basic_motions(split="train")
    fit = xt[splits.train.extras["row"].numpy()]
    z = (x - fit.mean(axis=(0, 2))[:, None]) / fit.std(axis=(0, 2))[:, None]
    want = {"accelerometer": z[:, :3].transpose(0, 2, 1), "gyroscope": z[:, 3:].transpose(0, 2, 1)}
    for m, arr in want.items():
        assert torch.allclose(splits.test.inputs[m], torch.from_numpy(arr).float(), atol=1e-6)
    assert [bm.CLASSES[i] for i in splits.test.labels.tolist()] == [str(v).lower() for v in y]
    train = torch.cat([splits.train.inputs[m] for m in bm.SENSORS], dim=2).double()
    assert train.mean((0, 1)).abs().max() < 1e-6 and (train.std((0, 1), unbiased=False) - 1).abs().max() < 1e-5


def test_seeded_val_and_raw_values(splits, aeon_files: Path) -> None:
    again = load_dataset("basicmotions", None, seed=0)
    assert torch.equal(again.val.extras["row"], splits.val.extras["row"])
    other = load_dataset("basicmotions", None, seed=1, standardize=False)
    assert not torch.equal(other.val.extras["row"], splits.val.extras["row"])
    first = (aeon_files / "BasicMotions_TEST.ts").read_text().split("@data")[1].split()[0]
    acc_x = [float(v) for v in first.split(":")[0].split(",")]
    assert torch.allclose(other.test.inputs["accelerometer"][0, :, 0], torch.tensor(acc_x))


def test_a_data_root_copy_wins_and_is_checked(aeon_files: Path, tmp_path: Path) -> None:
    folder = tmp_path / "BasicMotions"
    shutil.copytree(aeon_files, folder)
    path = folder / "BasicMotions_TEST.ts"
    text = path.read_text()
    head, body = text.split("@data")
    path.write_text(head + "@data" + body.replace("0.", "7.", 1))  # change the first case's first value
    ds = load_dataset("basicmotions", tmp_path, seed=0, standardize=False)
    assert ds.info["source"] == "data_root"
    assert (
        ds.test.inputs["accelerometer"][0, 0, 0]
        != load_dataset("basicmotions", None, 0, standardize=False).test.inputs["accelerometer"][0, 0, 0]
    )
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-5]) + "\n")  # 35 cases
    with pytest.raises(DataError, match=r"BasicMotions_TEST.ts holds series of shape \(35, 6, 100\)"):
        load_dataset("basicmotions", tmp_path, seed=0)
    (folder / "BasicMotions_TRAIN.ts").unlink()
    with pytest.raises(DataError, match=r"missing BasicMotions file .*BasicMotions_TRAIN.ts"):
        load_dataset("basicmotions", tmp_path, seed=0)


def test_without_aeon_one_message_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bm, "aeon_dir", lambda: None)
    with pytest.raises(DataError, match=r"aeon package \(not installed\)\. pip install 'mmcoop\[basicmotions\]'"):
        load_dataset("basicmotions", tmp_path, seed=0)


def test_trains_one_epoch_and_values_by_sample_id(aeon_files: Path, tmp_path: Path) -> None:
    table = train_and_value(tmp_path, "basicmotions")
    assert table.modalities == ["accelerometer", "gyroscope"]
    assert table.sample_id == [f"test_{r:02d}" for r in range(40)]
    assert np.isin(table.phi.numpy(), [-0.5, 0.0, 0.5, 1.0, 1.5]).all()  # M = 2, 0/|S| values


def test_the_demo_preset_is_the_shared_base_of_a_comparison(aeon_files: Path, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from mmcoop.cli.app import app
    from mmcoop.experiment.presets import preset_config

    args = ["compare", "--preset", "basicmotions", "--methods", "joint,sample-level", "--seeds", "3"]
    args += ["--epochs", "2", "--matched", "none", "--out-dir", str(tmp_path), "--name", "c", "--device", "cpu"]
    res = CliRunner().invoke(app, args + ["--set", "train.progress=false", "--set", "method_options.warmup=1"])
    assert res.exit_code == 0, res.output
    want = preset_config("basicmotions")
    runs = sorted(p.parent for p in (tmp_path / "c").glob("*/config.yaml"))
    assert len(runs) == 2
    for run in runs:
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert cfg["preset"] == "basicmotions" and cfg["dataset"] == "basicmotions" and cfg["seed"] == 3
        assert cfg["model"] == {**want["model"], "target": None}
        assert cfg["train"]["lr"] == want["train"]["lr"] and cfg["train"]["batch_size"] == 8
        assert cfg["train"]["epochs"] == 2  # the flag overrides the preset
        assert cfg["dataset_options"] == {"expect_classes": 4}
