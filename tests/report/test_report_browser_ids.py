"""Sample ids that look like HTML (``<!--<script>``, ``</script>``) are shown as rows of the report's explorer.

Before: one id ``<!--<script>`` emptied the explorer (0 rows): the inline JSON escaped ``</`` but not
``<!--`` and ``<script``, so the HTML parser swallowed the page's second script. Every JSON the report
embeds goes through :func:`mmcoop.report.format.json_for_html`; the page is checked in headless Chromium.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _browser import chromium, need_browser, table_rows
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mmcoop.report.format import json_for_html

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
pytestmark = pytest.mark.usefixtures("one_thread")

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(_json)
def test_json_for_html_reads_back_and_holds_no_markup_characters(obj) -> None:
    text = json_for_html(obj)
    assert json.loads(text) == obj
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}


def test_json_for_html_escapes_comment_and_script_openers() -> None:
    text = json_for_html({"id": "<!--<script></script>&"})
    assert text == '{"id":"\\u003c!--\\u003cscript\\u003e\\u003c/script\\u003e\\u0026"}'


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_browser()
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(FIXTURES))
    import hostile_ids

    from mmcoop.cli.app import app
    from mmcoop.experiment import RunConfig, run_experiment

    run = run_experiment(RunConfig.from_dict(hostile_ids.config(str(tmp_path_factory.mktemp("ids"))))).run_dir
    for args in (["value", str(run)], ["report", str(run)]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
    yield run / "report.html"
    mp.undo()


def test_html_like_ids_are_rows_of_the_explorer(report: Path, tmp_path: Path) -> None:
    from hostile_ids import HOSTILE

    html = report.read_text()
    blob = re.search(r'<script type="application/json" id="mmx-data">(.*?)</script>', html, re.DOTALL).group(1)
    assert set(HOSTILE) <= set(json.loads(blob)["views"][0]["id"])
    with chromium(report, tmp_path / "profile") as driver:
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
        ids = [r[0] for r in table_rows(driver)]
    assert len(ids) == 32  # every test sample is a row
    assert set(HOSTILE) <= set(ids), ids[:6]
