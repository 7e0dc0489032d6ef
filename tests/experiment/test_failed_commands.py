"""Issue 23: a failed command changes nothing, and a damaged checkpoint is named as damaged.

- ``report`` on a disk that fills up while ``report.html`` is written leaves no new file behind
  (no ``plots/*.png``, no temporary file) and keeps an earlier report as it was;
- with only ``last.pt`` damaged, ``value --checkpoint best`` works from the intact ``best.pt``;
  a refusal never advises ``--overwrite`` (which would discard the good ``best.pt``);
- with ``best.pt`` truncated, ``report`` says it is damaged (never "best.pt of epoch None").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmcoop.utils.io as io_mod
from _faults import FullDisk
from _runs import TINY_ARGS
from mmcoop.cli.app import app

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(folder.rglob("*"))
        if p.name != ".mmcoop.lock"
    }


@pytest.fixture
def run(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(
        app,
        ["train", *TINY_ARGS, "--method", "sample-level", "--set", "method_options.warmup=1", "--epochs", "2"]
        + ["--out-dir", "runs", "--name", "r"],
    )
    assert res.exit_code == 0, res.output
    return tmp_path / "runs" / "r"


def _one_message(res, *needles: str) -> str:
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    for needle in needles:
        assert needle in text, res.output
    assert "Traceback" not in res.output
    return text


def test_a_report_failing_on_a_full_disk_leaves_nothing_behind(run, monkeypatch):
    first = runner.invoke(app, ["report", str(run)])
    assert first.exit_code == 0, first.output
    html = (run / "report.html").stat().st_size
    pngs = sorted((run / "plots").glob("*.png"))
    assert pngs and max(p.stat().st_size for p in pngs) < html  # the page embeds every plot: the largest file
    with_report = _tree(run)
    (run / "report.html").unlink()
    for p in pngs:
        p.unlink()
    (run / "plots").rmdir()
    before = _tree(run)

    monkeypatch.setattr(io_mod, "os", FullDisk(limit=html - 1024))  # every plot fits, the page does not
    _one_message(runner.invoke(app, ["report", str(run)]), "the disk is full", "report.html")
    assert _tree(run) == before  # no plots/accuracy.png without a report.html, no temporary file

    monkeypatch.undo()
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    again = _tree(run)
    monkeypatch.setattr(io_mod, "os", FullDisk(limit=html - 1024))
    _one_message(runner.invoke(app, ["report", str(run)]), "the disk is full")
    assert _tree(run) == again  # an earlier report and its plots stay exactly as they were
    assert set(again) == set(with_report)


def test_value_best_works_when_only_last_pt_is_damaged(run):
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])  # truncated
    res = runner.invoke(app, ["value", str(run), "--checkpoint", "best"])
    assert res.exit_code == 0, res.output
    assert (run / "valuation" / "test.parquet").is_file()
    refused = runner.invoke(app, ["value", str(run), "--checkpoint", "last"])
    text = _one_message(refused, "last.pt")
    assert "--overwrite" not in text  # it would discard the intact best.pt
    assert "--checkpoint best" in text


def test_report_names_a_truncated_best_pt_as_damaged(run):
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:100])
    res = runner.invoke(app, ["report", str(run)])
    text = " ".join(res.output.split())
    assert "epoch None" not in text and "epoch None" not in (run / "report.html").read_text()
    assert "best.pt" in text and "damaged" in text, res.output
    assert "damaged" in (run / "report.html").read_text()
    assert "mmcoop train --resume" in text  # what rewrites it from the commit record
    fixed = runner.invoke(app, ["train", "--resume", str(run)])  # the advice works: best.pt rewritten
    assert fixed.exit_code == 0, fixed.output
    again = runner.invoke(app, ["report", str(run)])
    assert again.exit_code == 0 and "damaged" not in again.output, again.output
    assert "best.pt of epoch" in (run / "report.html").read_text()


def test_a_crafted_checkpoint_is_refused_in_one_clean_sentence(tmp_path):
    import os

    import torch

    from mmcoop.errors import RunDirError
    from mmcoop.utils.io import load_checkpoint

    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    path = tmp_path / "x.pt"
    torch.save({"epoch": 1, "x": Payload()}, path)
    with pytest.raises(RunDirError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert f"{path} holds the Python object {os.system.__module__}.system besides tensors" in msg, msg
    assert "blocked" not in msg and ". besides" not in msg
