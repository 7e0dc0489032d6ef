"""Discoverability: ``mmcoop --version``, ``mmcoop methods [NAME]``, ``mmcoop datasets [NAME]`` and help texts
whose lists come from the registries."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

from typer.testing import CliRunner

import mmcoop
from mmcoop.cli.app import app
from mmcoop.cli.info import docstring_attributes, method_info, registry_lists
from mmcoop.data import DATASETS
from mmcoop.methods import METHODS

runner = CliRunner()
CLI = Path(mmcoop.__file__).parent / "cli"


def _run(*args: str, code: int = 0) -> str:
    res = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert res.exit_code == code, res.output
    return res.output


def test_version() -> None:
    assert _run("--version").strip() == f"mmcoop {mmcoop.__version__}"


def test_methods_lists_every_registered_method_one_line_each() -> None:
    lines = _run("methods").splitlines()
    names = METHODS.names()
    assert [ln.split()[0] for ln in lines[: len(names)]] == names
    for line, name in zip(lines, names):  # the summary is the first line of the class docstring
        assert line.split(None, 1)[1] == method_info(name).summary
        assert method_info(name).summary, name


def test_method_details_come_from_the_options_and_docstrings() -> None:
    out = " ".join(_run("methods", "ogm-ge").split())
    cls = METHODS.get("ogm-ge")
    for f in dataclasses.fields(cls.Options):
        assert f.name in out
    assert "0.8" in out and "50" in out  # defaults of alpha and modulation_ends
    assert "GeWu-Lab/OGM-GE_CVPR2022" in out and "Deliberate differences" in out
    assert "modulation strength" in out  # the Attributes: text of alpha
    out = " ".join(_run("methods", "sample-level").split())
    assert "bands [lower bound, copies]" in out  # brackets are not taken for markup
    assert "GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation" in out and "warmup" in out


def test_every_method_documents_each_option_and_peers_cite_paper_and_code() -> None:
    for name in METHODS.names():
        info = method_info(name)
        undocumented = [o.name for o in info.options if not o.help]
        assert not undocumented, (name, undocumented)
        if name not in ("joint", "unimodal"):
            assert info.paper.startswith("Paper:"), name
            assert re.search(r"\b[\w-]+/[\w.-]+\b", info.paper), name  # the official repository, owner/name
            assert info.differences, name


def test_unknown_method_lists_the_valid_ones() -> None:
    out = _run("methods", "nope", code=2)
    assert "nope" in out and "sample-level" in out


def test_docstring_attributes_merge_bases_and_continuations() -> None:
    class Base:
        """Base.

        Attributes:
            a: first line
                continued.
            b: base b.
        """

    class Child(Base):
        """Child.

        Attributes:
            b: child b.

        Example: not an attribute.
        """

    assert docstring_attributes(Child) == {"a": "first line continued.", "b": "child b."}


def test_datasets_table_and_details(tmp_path) -> None:
    out = _run("datasets", "--data-root", str(tmp_path))
    for name in DATASETS.names():
        assert name in out
    assert "mmcoop datasets kinetics-sounds" in out  # a missing dataset points to its details
    out = _run("datasets", "synthetic", "--data-root", str(tmp_path))
    assert "modality m0" in out and "modality m1" in out and "classes: " in out and "400/100/100" in out
    out = _run("datasets", "kinetics-sounds", "--data-root", str(tmp_path))
    assert "_1fps_path.txt" in out and "not found" in out and str(tmp_path) in " ".join(out.split()).replace(" ", "")
    # the layout once, in full (the official names' ks_visual/... line is another layout)
    assert len(re.findall(r"(?<!ks_)visual/<split>/<id>/frame_00001\.jpg", out)) == 1


def test_help_lists_are_generated_from_the_registries() -> None:
    lists = registry_lists()
    assert lists["METHODS"] == ", ".join(METHODS.names())
    for cmd in ("train", "compare"):
        text = " ".join(_run(cmd, "--help").split())
        for name in METHODS.names() + DATASETS.names():
            assert name in text, (cmd, name)
        assert not re.search(r"\{[A-Z]+\}", text)  # every placeholder filled
    text = _run("value", "--help")
    assert not re.search(r"\{[A-Z]+\}", text) and "logprob" in text


def test_no_hand_written_name_lists_in_help_texts() -> None:
    """A help string naming three or more registered methods, datasets or presets is a hand-kept list."""
    names = set(METHODS.names()) | set(DATASETS.names()) | set(registry_lists()["PRESETS"].split(", "))
    for path in CLI.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "help" and isinstance(node.value, ast.Constant):
                text = str(node.value.value)
                found = {n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)}
                assert len(found) < 3, (path.name, text)
