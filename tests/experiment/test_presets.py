"""Every preset trains 1 epoch on a tiny fixture in its dataset's layout (real MNIST frames and
FSDD audio), through `mmcoop train --preset`, with its ResNet-18 encoders; the preset's values
are recorded in config.yaml."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from _helpers import skip_real_data
import yaml
from typer.testing import CliRunner

from mmcoop.cli.app import app
from mmcoop.experiment.presets import PRESETS, preset_config

FIXTURES = Path(__file__).resolve().parents[1]  # av_fixtures.py
DATA = Path(os.environ.get("MMCOOP_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
pytestmark = pytest.mark.skipif(skip_real_data("mnist"), reason=f"real data folder {DATA} absent (set MMCOOP_DATA)")


def _fixtures():
    sys.path.insert(0, str(FIXTURES))
    import av_fixtures

    return av_fixtures


BUILD = {  # preset -> (fixture builder, extra dataset options)
    "kinetics-sounds": ("build_kinetics_sounds", {}),
    "cremad": ("build_cremad", {"val_fraction": 0.5}),
    "ave": ("build_ave_pmr", {}),
    "vggsound": ("build_vggsound", {"val_fraction": 0.5}),
    "ucf101": ("build_ucf101", {"val_fraction": 1 / 3}),
    "mm-debiased": ("build_mm_debiased", {}),
    "balancedav": ("build_balancedav", {"val_fraction": 1 / 3}),
}


#: presets of datasets without frames, each trained by its dataset's own test module
OWN_TESTS = {
    "basicmotions": "tests/datasets/test_basicmotions.py",
    "mosei": "tests/datasets/test_mosei.py",
    "mosi": "tests/datasets/test_mosei.py",
    "food101": "tests/datasets/test_food101.py",  # ViT-B is too large to train in a test: the values are checked
}


def test_every_preset_has_a_fixture():
    assert set(PRESETS.names()) == set(BUILD) | set(OWN_TESTS)
    assert all((FIXTURES.parent / path).is_file() for path in OWN_TESTS.values())


@pytest.mark.parametrize("preset", sorted(BUILD))
def test_preset_trains_one_epoch(preset, tmp_path, monkeypatch):
    fx = _fixtures()
    builder, extra = BUILD[preset]
    root = tmp_path / "data"
    root.mkdir()
    content = fx.Content(DATA)
    if preset == "mm-debiased":
        split_json = DATA / "mm-debiased" / "MM-Debiased.json"
        getattr(fx, builder)(root, content, split_json)
        extra = {"split_json": str(split_json)}
    else:
        getattr(fx, builder)(root, content)
    monkeypatch.chdir(tmp_path)
    sets = [
        "dataset_options.root=" + str(root),
        "dataset_options.image_size=32",
        "train.epochs=1",
        "train.batch_size=4",
        "train.eval_batch_size=8",
        "train.progress=false",
        "model.dim=16",
    ]
    sets += [f"dataset_options.{k}={v}" for k, v in extra.items()]
    args = ["train", "--preset", preset, "--name", "p"]
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((tmp_path / "runs/p/config.yaml").read_text())
    want = preset_config(preset)
    assert cfg["preset"] == preset and cfg["dataset"] == want["dataset"]
    assert cfg["train"]["optimizer"] == want["train"]["optimizer"] and cfg["train"]["lr"] == want["train"]["lr"]
    assert cfg["model"]["options"]["encoders"] == want["model"]["options"]["encoders"]
    assert (tmp_path / "runs/p/results.json").is_file()


def test_describe_preset_says_what_it_sets_and_what_the_user_overrides():
    from mmcoop.experiment.presets import describe_preset

    text = describe_preset(
        {"train": {"epochs": 2, "lr": 5e-5}, "dataset_options": {"image_size": 32}}, "kinetics-sounds"
    )
    assert text.startswith("preset kinetics-sounds sets ")
    assert "dataset_options.num_frames=3" in text and "dataset_options.expect_classes=31" in text
    assert "train.optimizer=adam" in text and "model.dim=512" in text
    assert text.endswith("; you override dataset_options.image_size (224 -> 32), train.epochs (60 -> 2)")
    assert "train.lr (" not in text  # the same value is not an override
