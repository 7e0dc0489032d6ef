"""Every bad input gives one message naming the key/file/path, a non-zero exit, and no traceback.

Each case below was a raw traceback (or a silent wrong run) before; ``--debug`` shows
the traceback again.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmcoop.utils.io as io_mod
from _faults import FullDisk as _FullDisk
from _runs import TINY_ARGS
from mmcoop.cli.app import app
from mmcoop.errors import ConfigError, StorageError
from mmcoop.utils.io import atomic_torch_save

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def _train(tmp_path: Path, *args: str):
    return runner.invoke(
        app, ["train", *TINY_ARGS, "--epochs", "1", "--out-dir", str(tmp_path / "runs"), "--name", "r", *args]
    )


def _message(res, needle: str, code: int = 2) -> str:
    text = " ".join(res.output.split())
    assert res.exit_code == code, res.output
    assert needle in text, res.output
    assert "Traceback" not in res.output
    assert text.count("error:") == 1, res.output
    return text


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--set", "train.lr=abc"], "config key 'train.lr' must be a number, got 'abc'"),
        (["--lr", "nan"], "config key 'train.lr' must be a finite number"),
        (["--set", "train.lr=.inf"], "config key 'train.lr' must be a finite number"),
        (["--set", "train.weight_decay=-1"], "train.weight_decay must be a finite number >= 0, got -1.0"),
        (["--set", "train.momentum=-0.5"], "train.momentum must be a finite number >= 0"),
        (["--set", "train.divergence_factor=0.5"], "train.divergence_factor must be a number > 1"),
        (["--device", "gpu3"], "train.device='gpu3' is not a device"),
        (["--device", "cuda:7"], "train.device='cuda:7'"),
        (["--seed", "99999999999999999999999"], "seed must be an integer in [0, 4294967295]"),
        (["--epochs", "99999999999999999999"], "train.epochs must be at most 100000, got 99999999999999999999"),
        (["--set", "train.epochs=100001"], "train.epochs must be at most 100000"),
        (["--seed", "-1"], "seed must be an integer in [0, 4294967295]"),
        (["--set", "model.dim=0"], "model.dim must be >= 1"),
        (["--set", "dataset_options.noise=[1,2,3]"], "dataset_options.noise has 3 values for 2 modalities"),
        (["--set", "dataset_options.sizes=[48,0,24]"], "dataset_options.sizes must be 3 integers >= 1"),
        (["--set", "train.lr=[1"], "is not valid YAML"),
        (["--set", "=3"], "empty key part"),
    ],
)
def test_bad_values(tmp_path, args, needle):
    _message(_train(tmp_path, *args), needle)
    assert not (tmp_path / "runs" / "r").exists()  # refused before anything was written


def test_a_numeric_string_is_a_number(tmp_path):
    # YAML 1.1 reads 1e-3 (no dot) as a string; it is still a valid learning rate
    res = _train(tmp_path, "--set", "train.lr=1e-3")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    "content,needle",
    [
        (None, "is a folder; pass a YAML file"),
        (bytes(range(256)), "is not a text file"),
        (b"train: {epochs: [1,\n", "is not valid YAML"),
        (b"\x00\x01binary\x02", "is not valid YAML"),
        (b"- a\n- b\n", "must hold a mapping of keys"),
    ],
)
def test_bad_config_files(tmp_path, content, needle):
    path = tmp_path / "cfg"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    text = _message(_train(tmp_path, "--config", str(path)), needle)
    assert str(path) in text


def test_value_batch_size_zero_and_bad_split(tmp_path):
    assert _train(tmp_path).exit_code == 0
    run = str(tmp_path / "runs" / "r")
    _message(runner.invoke(app, ["value", run, "--batch-size", "0"]), "--batch-size must be >= 1, got 0")
    _message(runner.invoke(app, ["value", run, "--split", "dev"]), "--split must be train, val or test")


def test_value_checks_the_output_folder_before_computing(tmp_path, monkeypatch):
    assert _train(tmp_path).exit_code == 0
    run = tmp_path / "runs" / "r"
    calls = []
    import mmcoop.experiment as exp

    monkeypatch.setattr(exp, "load_run", lambda *a, **k: calls.append(a) or pytest.fail("computed first"))
    (run / "valuation").write_text("a file where the folder should be")
    _message(runner.invoke(app, ["value", str(run)]), f"cannot write {run / 'valuation'}")
    (run / "valuation").unlink()

    real_mkstemp = io_mod.tempfile.mkstemp

    def read_only(*a, **k):  # what a read-only mount answers (root ignores chmod, so inject it)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(io_mod.tempfile, "mkstemp", read_only)
    _message(runner.invoke(app, ["value", str(run)]), "the file system is read-only")
    monkeypatch.setattr(io_mod.tempfile, "mkstemp", real_mkstemp)
    assert calls == []


def test_full_disk_is_one_clear_message(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(io_mod, "os", _FullDisk(limit=0))
    target = tmp_path / "ckpt" / "last.pt"
    with pytest.raises(StorageError, match="disk is full") as e:
        atomic_torch_save({"w": torch.zeros(3)}, target)
    assert e.value.errno == errno.ENOSPC and isinstance(e.value, OSError)
    assert str(target) in str(e.value)
    assert list(target.parent.iterdir()) == []  # no target, no temporary file left


def test_full_disk_during_training(tmp_path, monkeypatch):
    monkeypatch.setattr(io_mod, "os", _FullDisk(limit=4096))  # small text files fit, checkpoints do not
    text = _message(_train(tmp_path), "the disk is full")
    assert ".pt" in text


def test_compare_refuses_repeated_seeds_and_methods_before_training(tmp_path):
    base = ["compare", *TINY_ARGS, "--epochs", "1", "--out-dir", str(tmp_path), "--name", "c"]
    _message(runner.invoke(app, base + ["--seeds", "0,0", "--methods", "joint"]), "--seeds repeats 0")
    _message(runner.invoke(app, base + ["--seeds", "0", "--methods", "joint,joint"]), "names joint more than once")
    assert not (tmp_path / "c").exists()


def test_compare_refuses_an_existing_run_before_training_any(tmp_path):
    base = ["compare", *TINY_ARGS, "--epochs", "1", "--out-dir", str(tmp_path), "--name", "c", "--methods", "joint"]
    assert runner.invoke(app, base + ["--seeds", "1"]).exit_code == 0
    _message(runner.invoke(app, base + ["--seeds", "0,1"]), "already holds a run")
    assert not (tmp_path / "c" / "joint_seed0").exists()  # seed 0 was not trained before the refusal


def test_empty_avmnist_split_is_named(tmp_path, data_root):
    root = tmp_path / "root"
    (root / "fsdd" / "recordings").mkdir(parents=True)
    (root / "fsdd" / "recordings" / "3_jackson_12.wav").symlink_to(
        data_root / "fsdd" / "recordings" / "3_jackson_12.wav"
    )
    (root / "mnist").symlink_to(data_root / "mnist")
    res = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "avmnist",
            "--data-root",
            str(root),
            "--out-dir",
            str(tmp_path / "runs"),
            "--set",
            "dataset_options.cache=false",
        ],
    )
    _message(res, "avmnist: the val and test split would be empty with the 1 recording(s)")


def test_debug_shows_the_traceback(tmp_path):
    res = runner.invoke(app, ["--debug", "train", *TINY_ARGS, "--set", "train.lr=abc"])
    assert res.exit_code != 0 and isinstance(res.exception, ConfigError)


def test_an_unexpected_error_says_how_to_see_it(tmp_path, monkeypatch):
    import mmcoop.experiment as exp

    def boom(*a, **k):
        raise RuntimeError("something internal")

    monkeypatch.setattr(exp, "run_experiment", boom)
    _message(_train(tmp_path), "unexpected RuntimeError: something internal", code=1)
    assert "--debug" in _train(tmp_path).output
