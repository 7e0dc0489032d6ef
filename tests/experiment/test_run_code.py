"""Issue 23.5: a command loading a run runs only the code its ``config.yaml`` shows.

A run trained with ``data.target=<evil>:load`` whose ``config.yaml`` was then replaced by a
clean run's still names the evil target in ``checkpoints/last.pt``. ``value`` (and ``--resume``,
and ``compare --resume`` reading finished runs) must refuse without importing it, naming the
differing key; ``--trust-run`` runs the checkpoint's code and says so.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmcoop.cli.app import app

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
COMMON = [
    "--set",
    "model.target=user_project:build",
    "--set",
    "model.options.hidden=8",
    "--set",
    "train.progress=false",
    "--set",
    "train.batch_size=32",
    "--epochs",
    "1",
    "--device",
    "cpu",
    "--out-dir",
    "runs",
]


@pytest.fixture
def swapped(tmp_path, monkeypatch) -> tuple[Path, str, Path]:
    """``runs/evil`` trained with an evil data target, its config.yaml replaced by the clean run's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(FIXTURES))
    evil = f"evil_{abs(hash(str(tmp_path))) % 10**8}"  # a module name no other test imported
    flag = tmp_path / "PWNED"
    (tmp_path / f"{evil}.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(flag)!r}).write_text('imported')\n"
        "def load(seed=0):\n"
        "    import user_project\n"
        "    return user_project.load(seed, 60, 24)\n"
    )
    for name, target in (("evil", f"{evil}:load"), ("clean", "user_project:load")):
        res = runner.invoke(app, ["train", *COMMON, "--set", f"data.target={target}", "--name", name])
        assert res.exit_code == 0, res.output
    shutil.copy(tmp_path / "runs" / "clean" / "config.yaml", tmp_path / "runs" / "evil" / "config.yaml")
    flag.unlink()
    monkeypatch.delitem(sys.modules, evil)
    return tmp_path / "runs" / "evil", evil, flag


def _refused(res, evil: str) -> None:
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "data.target" in text and f"{evil}:load" in text and "--trust-run" in text, res.output
    assert "model.target" not in text  # only the differing key is named
    assert "Traceback" not in res.output


def test_value_refuses_code_the_config_does_not_show(swapped):
    run, evil, flag = swapped
    before = sorted(p.name for p in run.rglob("*"))
    _refused(runner.invoke(app, ["value", str(run)]), evil)
    _refused(runner.invoke(app, ["probe", str(run)]), evil)  # every command that loads the run
    assert not flag.exists() and evil not in sys.modules  # never imported, never called
    assert sorted(p.name for p in run.rglob("*")) == before


def test_resume_refuses_code_the_config_does_not_show(swapped):
    run, evil, flag = swapped
    _refused(runner.invoke(app, ["train", "--resume", str(run), "--epochs", "2"]), evil)
    assert not flag.exists() and evil not in sys.modules


def test_trust_run_runs_the_checkpoints_code_and_says_so(swapped):
    run, evil, flag = swapped
    res = runner.invoke(app, ["value", str(run), "--trust-run"])
    assert res.exit_code == 0, res.output
    assert "warning: --trust-run: running code that config.yaml does not show" in res.output
    assert f"data.target='{evil}:load'" in " ".join(res.output.split())  # what runs is shown
    assert flag.exists()  # the user asked for it


def test_a_config_that_agrees_on_code_loads(swapped, tmp_path):
    clean = tmp_path / "runs" / "clean"
    cfg = clean / "config.yaml"
    cfg.write_text(cfg.read_text().replace("epochs: 1", "epochs: 5"))  # a harmless edit: no code differs
    res = runner.invoke(app, ["value", str(clean)])
    assert res.exit_code == 0, res.output


def test_compare_resume_refuses_a_run_with_hidden_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(FIXTURES))
    evil = f"evilc_{abs(hash(str(tmp_path))) % 10**8}"
    flag = tmp_path / "PWNED"
    (tmp_path / f"{evil}.py").write_text(
        f"import pathlib\npathlib.Path({str(flag)!r}).write_text('imported')\n"
        "def load(seed=0):\n    import user_project\n    return user_project.load(seed, 60, 24)\n"
    )
    args = ["compare", *COMMON, "--methods", "joint", "--seeds", "0", "--matched", "none", "--name", "c"]
    assert runner.invoke(app, [*args, "--set", f"data.target={evil}:load"]).exit_code == 0
    for f in [*(tmp_path / "runs" / "c").rglob("*.yaml"), *(tmp_path / "runs" / "c").rglob("*.json")]:
        f.write_text(f.read_text().replace(f"{evil}:load", "user_project:load"))  # what a reader now sees
    flag.unlink()
    monkeypatch.delitem(sys.modules, evil)
    res = runner.invoke(app, [*args, "--set", "data.target=user_project:load", "--resume"])
    _refused(res, evil)
    assert not flag.exists() and evil not in sys.modules
