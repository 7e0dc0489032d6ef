"""The code examples of the README and the guides run verbatim.

A fenced block preceded by ``<!-- example: NAME -->`` in ``README.md`` or any ``docs/**/*.md`` is an
example: blocks named like files (``mylab.py``, ``mylab.yaml``) are written into a fresh folder, then
in the document's order every Python block runs (``runpy``) and every block named ``commands...`` runs
its ``mmcoop ...`` lines through the CLI. The README's quick start and the "Your own model and data"
guide have their own, stricter tests below (what the runs must have produced).
"""

from __future__ import annotations

import json
import re
import runpy
import shlex
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mmcoop.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
OWN_MODEL = ROOT / "docs" / "guides" / "own-model-and-data.md"
MARK = re.compile(r"<!-- (?:readme-)?example: (\S+) -->\n```\w*\n(.*?)```", flags=re.S)


def example_blocks(path: Path) -> dict[str, str]:
    """``<!-- example: NAME -->`` followed by a fenced block -> {NAME: code}, in document order."""
    return dict(MARK.findall(path.read_text()))


def documents_with_examples() -> list[Path]:
    """The guides with examples, except those with a dedicated test here (the README, own model and data)."""
    return [p for p in sorted((ROOT / "docs").rglob("*.md")) if example_blocks(p) and p != OWN_MODEL]


def _cli(args: list[str]):
    extra = ["--set", "train.progress=false"] if args[0] in ("train", "compare") else []
    return CliRunner().invoke(app, [*args, *extra])


@pytest.mark.parametrize(
    "doc", documents_with_examples() or [None], ids=lambda p: str(p.relative_to(ROOT)) if p else "none"
)
def test_document_examples_run(doc: Path | None, tmp_path, monkeypatch) -> None:
    if doc is None:  # no guide has examples yet: the collector itself must still find the README's
        assert "quickstart.py" in example_blocks(ROOT / "README.md")
        return
    blocks = example_blocks(doc)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = [name[:-3] for name in blocks if name.endswith(".py")]
    try:
        for name, code in blocks.items():
            if "." in name:
                (tmp_path / name).write_text(code)
        for name, code in blocks.items():
            if name.endswith(".py"):
                runpy.run_path(str(tmp_path / name), run_name="__main__")
            elif name.startswith("commands"):
                lines = [ln.split("#")[0].strip() for ln in code.splitlines()]
                for args in [shlex.split(ln)[1:] for ln in lines if ln.startswith("mmcoop ")]:
                    res = _cli(args)
                    assert res.exit_code == 0, (doc.name, args, res.output)
    finally:
        for m in modules:
            sys.modules.pop(m, None)


def test_readme_quickstart_values_every_mfeat_view(tmp_path, monkeypatch, capsys) -> None:
    blocks = example_blocks(ROOT / "README.md")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart.py").write_text(blocks["quickstart.py"])
    runpy.run_path(str(tmp_path / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    for view in ("fou", "fac", "kar", "pix", "zer", "mor"):  # the mean per view, then the per-sample columns
        assert f"'{view}'" in out and f"phi_{view}" in out
    assert (tmp_path / "runs" / "mfeat_sample-level-weighted_seed0" / "results.json").is_file()


@pytest.fixture
def project(tmp_path, monkeypatch):
    blocks = example_blocks(OWN_MODEL)
    assert {"mylab.py", "run.py", "mylab.yaml", "commands"} <= set(blocks)
    for name in ("mylab.py", "run.py", "mylab.yaml"):
        (tmp_path / name).write_text(blocks[name])
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path, blocks
    sys.modules.pop("mylab", None)


def test_python_example_trains_and_values(project, capsys):
    tmp, _ = project
    runpy.run_path(str(tmp / "run.py"), run_name="__main__")
    out = capsys.readouterr().out
    acc = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert acc > 0.4  # 4 classes: chance is 0.25
    run = tmp / "runs" / "mylab_sample-level"
    cfg = (run / "config.yaml").read_text()
    assert "mylab:load_data" in cfg and "mylab:make_model" in cfg  # targets recorded for reloading
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(metrics[-1][f"copies_{m}"] for m in ("audio", "video", "text")) > 0  # re-sampling acted


def test_yaml_and_commands_run(project):
    tmp, blocks = project
    lines = [ln.split("#")[0].strip() for ln in blocks["commands"].splitlines()]
    commands = [shlex.split(ln)[1:] for ln in lines if ln.startswith("mmcoop ")]
    assert [c[0] for c in commands] == ["train", "value", "compare", "report"]
    for args in commands:
        res = _cli(args)
        assert res.exit_code == 0, (args, res.output)
    assert (tmp / "runs/mylab_joint/valuation/test.parquet").is_file()
    assert (tmp / "runs/compare_custom/report.html").is_file()
    rows = pd.read_csv(tmp / "runs/compare_custom/compare.csv")
    runs = rows[~rows["method"].str.contains("@")]  # compute-matched joint baselines are named joint@...
    assert sorted(zip(runs["method"], runs["seed"])) == [
        ("joint", 0),
        ("joint", 1),
        ("sample-level", 0),
        ("sample-level", 1),
    ]
