"""Third-party plugins through entry points: a tiny package beside mmcoop (a folder on
``PYTHONPATH`` holding the package and its ``*.dist-info`` with ``entry_points.txt``, which is
what ``pip install`` leaves) adds a method (a module that registers itself) and a model (an
entry point naming the builder); ``mmcoop train`` uses both. A broken plugin stops with one
message naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

METHOD = '''
from torch.nn import functional as F

from mmcoop.methods import METHODS, Method


@METHODS.register("plug-smooth")
class LabelSmoothing(Method):
    """Joint training with label smoothing 0.1 (a third-party method)."""

    def loss(self, ctx, batch, feats, logits):
        self.calls = getattr(self, "calls", 0) + 1
        ctx.log["plugin_steps"] = self.calls
        return F.cross_entropy(logits.float(), batch["label"], label_smoothing=0.1)
'''

MODEL = '''
from torch import nn

from mmcoop.models import from_modules


class Head(nn.Module):
    def __init__(self, widths, num_classes):
        super().__init__()
        self.fc = nn.Linear(sum(widths), num_classes)

    def forward(self, feats):
        import torch
        return self.fc(torch.cat(feats, 1))


def build(modalities, num_classes, *, specs, dim=64, fusion="concat"):
    """Tiny MLP per modality of width ``model.dim`` (a third-party model builder; registered builders
    receive ``dim`` and ``fusion`` from the config, this one has a single head)."""
    encoders = {s.name: nn.Sequential(nn.Flatten(), nn.Linear(int(__import__("math").prod(s.shape)), dim), nn.ReLU())
                for s in specs}
    return from_modules(encoders, Head([dim] * len(specs), num_classes), num_classes)
'''


def _plugin(root: Path, name: str, files: dict[str, str], entry_points: str) -> Path:
    """A package ``name`` installed into folder ``root`` the way pip lays it out."""
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for fname, text in files.items():
        (pkg / fname).write_text(textwrap.dedent(text))
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return root


def _mmcoop(args: list[str], plugin_root: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_root), str(SRC)]))
    return subprocess.run(
        [sys.executable, "-m", "mmcoop", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_plugin_method_and_model_train_through_the_cli(tmp_path) -> None:
    root = _plugin(
        tmp_path / "site",
        "mmcoop_tinyplug",
        {"method.py": METHOD, "model.py": MODEL},
        """
        [mmcoop.methods]
        plug-smooth = mmcoop_tinyplug.method

        [mmcoop.models]
        plug-mlp = mmcoop_tinyplug.model:build
    """,
    )
    res = _mmcoop(
        [
            "train",
            "--dataset",
            "synthetic",
            "--method",
            "plug-smooth",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--name",
            "p",
            "--set",
            "model.name=plug-mlp",
            "--set",
            "model.dim=6",
            "--set",
            "dataset_options.sizes=[64,32,32]",
            "--set",
            "train.progress=false",
        ],
        root,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr + res.stdout
    run = tmp_path / "runs" / "p"
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["plugin_steps"] == 2  # 64 samples, batch size 32: the plugin's loss ran every step
    config = (run / "config.yaml").read_text()
    assert "plug-smooth" in config and "plug-mlp" in config
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(SRC)]))
    code = (
        "from mmcoop.methods import METHODS; from mmcoop.models import MODELS; "
        "print(METHODS.get('plug-smooth').name, MODELS.names())"
    )
    listed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert listed.stdout.split()[0] == "plug-smooth" and "plug-mlp" in listed.stdout, listed.stderr


def test_a_broken_plugin_gives_one_clear_message(tmp_path) -> None:
    root = _plugin(
        tmp_path / "site",
        "mmcoop_brokenplug",
        {"method.py": "raise RuntimeError('half-installed')\n"},
        """
        [mmcoop.methods]
        broken = mmcoop_brokenplug.method
    """,
    )
    res = _mmcoop(
        [
            "train",
            "--dataset",
            "synthetic",
            "--epochs",
            "1",
            "--name",
            "b",
            "--set",
            "dataset_options.sizes=[64,32,32]",
        ],
        root,
        tmp_path,
    )
    assert res.returncode != 0
    out = res.stderr + res.stdout
    assert "plugin 'broken'" in out and "mmcoop_brokenplug.method" in out and "half-installed" in out
    assert "mmcoop.methods" in out and "uninstall" in out
    assert "Traceback" not in out
