"""Third-party plugins through entry points: a tiny package beside mmcoop (a folder on
``PYTHONPATH`` holding the package and its ``*.dist-info`` with ``entry_points.txt``, which is
what ``pip install`` leaves) adds a method (a module that registers itself) and a model (an
entry point naming the builder); ``mmcoop train`` uses both. A plugin that cannot be used (it raises
at import, or its entry point names ``5`` or ``None``) is named once in a warning and left out; a command
that needs it stops with one message naming it. An entry point named like a built-in is ignored, and said."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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


def _python(code: str, plugin_root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_root), str(SRC)]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300, check=False
    )


#: three commands in one process (one torch import): the command line as typed, each output apart
THREE_COMMANDS = """
    import json
    from typer.testing import CliRunner
    from mmcoop.cli.app import app
    tiny = ["--dataset", "synthetic", "--epochs", "1", "--set", "dataset_options.sizes=[48,24,24]", "--set",
            "model.dim=6", "--set", "train.progress=false", "--device", "cpu"]
    out = []
    for args in (["methods"], ["train", *tiny, "--name", "b"], ["train", *tiny, "--name", "c", "--method", "broken"]):
        res = CliRunner().invoke(app, args)
        out.append({"code": res.exit_code, "output": res.output})
    print(json.dumps(out))
"""


def _warnings(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("warning:")]


def test_a_plugin_that_raises_at_import_is_named_once_and_left_out(tmp_path) -> None:
    root = _plugin(
        tmp_path / "site",
        "mmcoop_brokenplug",
        {"method.py": "raise RuntimeError('half-installed')\n"},
        """
        [mmcoop.methods]
        broken = mmcoop_brokenplug.method
    """,
    )
    named = ("plugin 'broken'", "mmcoop_brokenplug.method", "mmcoop.methods", "half-installed", "uninstall")
    res = _python(f"import os; os.chdir({str(tmp_path)!r})\n" + textwrap.dedent(THREE_COMMANDS), root)
    assert res.returncode == 0, res.stderr
    listed, trained, needs = json.loads(res.stdout.splitlines()[-1])
    assert listed["code"] == 0 and "joint" in listed["output"], listed  # every command still works without it
    (line,) = _warnings(listed["output"])  # named once, on one line, without Python's source line
    assert all(n in line for n in named), line
    assert trained["code"] == 0 and _warnings(trained["output"]) == [], trained  # a built-in-only run
    assert (tmp_path / "runs" / "b" / "results.json").is_file()
    assert needs["code"] == 2, needs  # the command needs it: a clear error naming it
    error = " ".join(needs["output"].split())
    assert "error: method 'broken' is not available" in error and all(n in error for n in named), error
    for r in (listed, trained, needs):
        assert "Traceback" not in r["output"] and "warnings.warn" not in r["output"], r


#: a plugin with ``odd5`` (``X = 5``) and ``oddNone`` (``X = None``) in every entry-point group
ODD_GROUPS = ["mmcoop.methods", "mmcoop.datasets", "mmcoop.loggers", "mmcoop.models"]
READ_ODD = """
    import json, warnings
    from mmcoop.methods import METHODS; from mmcoop.data import DATASETS; from mmcoop.models import MODELS
    from mmcoop.integrations.loggers import LOGGERS
    out = {}
    for group, reg in {"mmcoop.methods": METHODS, "mmcoop.datasets": DATASETS, "mmcoop.models": MODELS,
                       "mmcoop.loggers": LOGGERS}.items():
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            names = reg.names()
        out[group] = {"warnings": [f"{w.category.__name__}: {w.message}" for w in seen], "listed": names}
        for name in ("odd5", "oddNone"):
            try:
                reg.get(name)
            except Exception as e:
                out[group][name] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))
"""


def test_an_entry_point_to_a_non_class_names_the_plugin_and_group(tmp_path) -> None:
    eps = "".join(
        f"[{g}]\nodd5 = mmcoop_oddplug.things:FIVE\noddNone = mmcoop_oddplug.things:NONE\n" for g in ODD_GROUPS
    )
    root = _plugin(tmp_path / "site", "mmcoop_oddplug", {"things.py": "FIVE = 5\nNONE = None\n"}, eps)
    res = _python(READ_ODD, root)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.splitlines()[-1])
    for group in ODD_GROUPS:
        got = out[group]
        assert (
            "odd5" not in got["listed"]
            and "oddNone" not in got["listed"]
            and "joint" in out["mmcoop.methods"]["listed"]
        )
        assert len(got["warnings"]) == 2, got  # one warning per broken entry point
        for name, attr, value in (("odd5", "FIVE", "5"), ("oddNone", "NONE", "None")):
            plugin = f"plugin {name!r} (mmcoop_oddplug.things:{attr}, entry point group {group!r}) names {value}"
            assert got[name].startswith("ConfigError: ") and plugin in got[name], got
            assert [w for w in got["warnings"] if plugin in w and w.startswith("MMCoopWarning: ")], got
        assert "AttributeError" not in json.dumps(got)


def test_an_entry_point_named_like_a_built_in_is_ignored_and_said_once(tmp_path) -> None:
    root = _plugin(
        tmp_path / "site",
        "mmcoop_shadowplug",
        {"method.py": METHOD.replace('@METHODS.register("plug-smooth")\n', "")},
        """
        [mmcoop.methods]
        joint = mmcoop_shadowplug.method:LabelSmoothing
    """,
    )
    res = _mmcoop(["methods", "joint"], root, tmp_path)
    assert res.returncode == 0, res.stderr + res.stdout
    out = res.stderr + res.stdout
    (line,) = _warnings(out)
    assert "plugin 'joint' (mmcoop_shadowplug.method:LabelSmoothing" in line and "is ignored" in line, out
    assert "label smoothing" not in out and "Traceback" not in out  # the built-in joint is shown
