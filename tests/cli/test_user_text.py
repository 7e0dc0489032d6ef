"""User text (sample ids, run names, paths) is printed as written: rich never reads it as markup.

Before: an id ``[/]1`` made ``mmcoop value RUN --top K`` fail with "unexpected MarkupError";
``[bold red]x[/bold red] [link=http://e.x]y[/link]4`` was printed as ``x y4``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmcoop.cli.output import esc
from mmcoop.experiment import RunConfig, run_experiment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(FIXTURES))
    import hostile_ids

    out = tmp_path_factory.mktemp("hostile")
    run = run_experiment(RunConfig.from_dict(hostile_ids.config(str(out), name="[bold]r[/bold]"))).run_dir
    yield run
    mp.undo()


def test_value_top_prints_markup_like_ids_as_written(hostile_run: Path) -> None:
    from hostile_ids import HOSTILE

    from mmcoop.cli.app import app

    res = CliRunner().invoke(app, ["value", str(hostile_run), "--top", "32"])
    assert res.exit_code == 0, res.output
    assert "MarkupError" not in res.output and "error:" not in res.output
    for sample_id in HOSTILE:
        assert sample_id in res.output, (sample_id, res.output)
    assert f"wrote {hostile_run / 'valuation' / 'test.parquet'}" in res.output  # the run name [bold]r[/bold]


def test_train_prints_a_markup_like_run_name_as_written(tmp_path: Path) -> None:
    from _runs import TINY_ARGS

    from mmcoop.cli.app import app

    res = CliRunner().invoke(
        app, ["train", *TINY_ARGS, "--epochs", "1", "--out-dir", str(tmp_path), "--name", "[red]n"]
    )
    assert res.exit_code == 0, res.output
    assert "[red]n: best-validation model" in " ".join(res.output.split())
    assert f"run directory: {tmp_path / '[red]n'}" in res.output


@pytest.mark.parametrize("text", ["[/]1", "[bold red]x[/bold red]", "a\\", "[link=http://e.x]y[/link]", "[[x]]"])
def test_esc_round_trips_through_rich(text: str) -> None:
    from rich.console import Console

    c = Console(width=200, record=True)
    c.print(f"[bold]id:[/] {esc(text)}", highlight=False)
    assert c.export_text().rstrip("\n") == f"id: {text}"
