"""What the command line prints besides results: mmcoop's warnings as one clean line, progress bars only
on a terminal, and the reason when the report's explorer could not draw the run's samples.

Before: a raw ``UserWarning`` with a source path and code line (``warnings.warn(...)``) reached the
console; ``mmcoop value RUN > out.txt`` started with a tqdm bar; ``mmcoop report`` said nothing when the
explorer could not load the run's data (the reason was only inside the HTML).
"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path

import pytest
from _runs import tiny_cfg
from typer.testing import CliRunner

from mmcoop.cli.app import app
from mmcoop.cli.output import show_warnings
from mmcoop.errors import DataError, MMCoopWarning
from mmcoop.experiment import run_experiment
from mmcoop.utils.progress import show_progress

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def _clean(output: str) -> None:
    assert "Warning:" not in output and "warnings.warn" not in output and ".py:" not in output, output


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_experiment(tiny_cfg(tmp_path_factory.mktemp("console"), train={"epochs": 2})).run_dir


def test_a_repaired_run_is_one_warning_line(tmp_path: Path) -> None:
    run = run_experiment(tiny_cfg(tmp_path, train={"epochs": 2})).run_dir
    (run / "checkpoints" / "best.pt").unlink()
    res = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "3"])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if "repaired after an interruption" in line]
    assert len(lines) == 1 and lines[0].startswith(f"warning: {run}: repaired after an interruption"), res.output
    _clean(res.output)


def test_value_piped_has_no_progress_bar(run: Path) -> None:
    res = runner.invoke(app, ["value", str(run)])  # CliRunner's streams are not terminals, as a pipe
    assert res.exit_code == 0, res.output
    assert "valuating" not in res.output and "it/s" not in res.output and "\r" not in res.output, res.output


def test_progress_is_decided_by_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not show_progress(True) and not show_progress(None)
    monkeypatch.setattr(sys, "stderr", Tty())
    assert show_progress(True) and show_progress(None) and not show_progress(False)


def test_report_says_why_the_explorer_has_no_samples(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["value", str(run)]).exit_code == 0

    def gone(run_dir: Path) -> None:
        raise DataError("the data folder /mnt/gone is absent")

    monkeypatch.setattr("mmcoop.cli.app._run_splits", gone)
    res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "warning:" in text and "sample explorer" in text and "/mnt/gone is absent" in text, res.output
    _clean(res.output)


def test_show_warnings_prints_own_warnings_as_one_line_and_passes_others_on(capsys) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with show_warnings():
            warnings.warn("a stale [bold]file[/bold]", MMCoopWarning, stacklevel=1)
            warnings.warn("not ours", DeprecationWarning, stacklevel=1)
    assert capsys.readouterr().err == "warning: a stale [bold]file[/bold]\n"
    assert [str(w.message) for w in seen] == ["not ours"]  # a foreign warning is shown as before
