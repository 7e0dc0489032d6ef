"""Issue 18.8: bad user code gets a message naming the user's target (their exception, message
and the frame in their file), shape errors name the expected shape, and impossible model
sizes are refused before anything is allocated; never "unexpected ... This is a bug"."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from _runs import TINY_ARGS
from mmcoop.cli.app import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def on_path(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.chdir(tmp_path)


def _fails(args: list[str], *needles: str) -> str:
    res = runner.invoke(app, args)
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output  # a user error, not "unexpected" (exit 1)
    assert "Traceback" not in res.output and "This is a bug" not in text, res.output
    for needle in needles:
        assert needle in text, res.output
    return text


def _user_run(tmp_path: Path, model_target: str) -> list[str]:
    cfg = {
        "data": {"target": "user_project:load"},
        "model": {"target": model_target},
        "train": {"epochs": 1, "progress": False, "batch_size": 32},
        "out_dir": str(tmp_path / "runs"),
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return ["train", "--config", str(tmp_path / "c.yaml")]


def test_a_data_builder_that_raises_is_shown_as_the_users(tmp_path):
    _fails(
        ["train", "--set", "data.target=bad_user:raises", "--out-dir", str(tmp_path / "r")],
        "data.target='bad_user:raises' raised ValueError",
        "the CSV path is wrong",
        "bad_user.py",
        "line 13",
        "in raises",
    )
    assert not (tmp_path / "r").exists()  # nothing written


def test_a_model_builder_that_raises_is_shown_as_the_users(tmp_path):
    _fails(
        _user_run(tmp_path, "bad_user:model_raises"),
        "model.target='bad_user:model_raises' raised KeyError",
        "'depth'",
        "bad_user.py",
        "in model_raises",
        'widths["depth"]',
    )


@pytest.mark.parametrize("target, got", [("bad_user:wide_fuse", "[2, 6]"), ("bad_user:flat_fuse", "[2]")])
def test_a_fuse_of_the_wrong_shape_names_the_expected_shape(tmp_path, target, got):
    _fails(
        _user_run(tmp_path, target),
        f"model.target='{target}': fuse(features) returned {got}",
        "expected logits [B, C] = [2, 3]",
    )
    assert not (tmp_path / "runs").exists()


def _line_of(path: Path, needle: str) -> int:
    """1-based line of the first line of ``path`` holding ``needle`` (the user's frame to be named)."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_wrong_encoder_input_width_is_named(tmp_path):
    line = _line_of(FIXTURES / "user_project.py", "self.enc[m](inputs[m])")
    _fails(
        _user_run(tmp_path, "bad_user:wrong_width"),
        "model.target='bad_user:wrong_width' raised RuntimeError",
        "running the model on 2 training samples",
        "imu [2, 10, 6]",
        "mat1 and mat2 shapes cannot be multiplied (2x60 and 61x4)",
        f'user_project.py", line {line}',
        "self.enc[m](inputs[m])",
    )


def test_an_impossible_model_size_is_refused_before_allocating(tmp_path, monkeypatch):
    import torch

    real = torch.nn.Linear.__init__

    def no_huge(self, i, o, *a, **k):  # a real allocation of this size would take the machine down
        assert i * o < 10**9 or k.get("device") == "meta" or torch.get_default_device().type == "meta", (
            "allocated before the size check"
        )
        real(self, i, o, *a, **k)

    monkeypatch.setattr(torch.nn.Linear, "__init__", no_huge)
    _fails(
        ["train", *TINY_ARGS, "--set", "model.dim=100000000000", "--out-dir", str(tmp_path / "r")],
        "model 'late-fusion' with model.dim=100000000000",
        "parameters",
        "TB of weights",
        "make the model smaller",
    )
    assert not (tmp_path / "r").exists()
