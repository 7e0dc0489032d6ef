"""Issue 26.5: ``mmcoop table`` over two comparisons (avmnist, mfeat): LaTeX (booktabs), Markdown and CSV
whose numbers are those of compare.csv. No LaTeX engine is installed, so the LaTeX is checked structurally."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from mmcoop.cli.app import app
from mmcoop.experiment.stats import paired_gains, summarize_gains

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


@pytest.fixture(scope="module")
def comparisons(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("tables")
    for ds, extra in (("avmnist", ["--set", "dataset_options.limit=160"]), ("mfeat", [])):
        args = ["compare", "--dataset", ds, "--data-root", str(data_root), "--epochs", "1", "--seeds", "0,1"]
        args += [
            "--methods",
            "joint,unimodal",
            "--set",
            "method_options.modality=" + ("visual" if ds == "avmnist" else "fac"),
        ]
        args += [
            "--matched",
            "none",
            "--device",
            "cpu",
            "--set",
            "train.progress=false",
            "--out-dir",
            str(out),
            "--name",
            ds,
        ]
        res = runner.invoke(app, args + extra)
        assert res.exit_code == 0, res.output
        assert "<!-- mmcoop table" in res.output and "| joint |" in res.output  # compare prints the Markdown table
    return out


def test_table_of_two_comparisons_equals_compare_csv(comparisons, tmp_path):
    prefix = tmp_path / "paper"
    res = runner.invoke(app, ["table", str(comparisons / "avmnist"), str(comparisons / "mfeat"), "--out", str(prefix)])
    assert res.exit_code == 0, res.output
    tex, md = (tmp_path / "paper.tex").read_text(), (tmp_path / "paper.md").read_text()
    csv = pd.read_csv(tmp_path / "paper.csv")
    for ds in ("avmnist", "mfeat"):
        runs = pd.read_csv(comparisons / ds / "compare.csv")
        for m in ("joint", "unimodal"):
            acc = runs.loc[runs["method"] == m, "test_acc"]
            cell = f"{100 * acc.mean():.2f} ± {100 * acc.std(ddof=1):.2f}"
            got = csv[(csv["dataset"] == ds) & (csv["method"] == m) & (csv["column"] == "test_acc")].iloc[0]
            assert got["mean"] == pytest.approx(100 * acc.mean(), abs=1e-9)
            assert got["std"] == pytest.approx(100 * acc.std(ddof=1), abs=1e-9)
            assert cell in md and cell.replace("±", r"$\pm$") in tex
        j = dict(zip(runs.loc[runs["method"] == "joint", "seed"], runs.loc[runs["method"] == "joint", "test_acc"]))
        u = dict(
            zip(runs.loc[runs["method"] == "unimodal", "seed"], runs.loc[runs["method"] == "unimodal", "test_acc"])
        )
        g = summarize_gains(list(paired_gains(u, j).values()))
        d = csv[(csv["dataset"] == ds) & (csv["method"] == "unimodal") & (csv["column"] == "diff:test_acc")].iloc[0]
        assert (d["mean"], d["low"], d["high"]) == pytest.approx((g.mean, g.low, g.high))
        # the best mean of each column is bold
        best = max(("joint", "unimodal"), key=lambda m: runs.loc[runs["method"] == m, "test_acc"].mean())
        assert bool(
            csv[(csv["dataset"] == ds) & (csv["method"] == best) & (csv["column"] == "test_acc")]["best"].iloc[0]
        )

    # Markdown: a header, a separator and one row per method, each with the same number of cells
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 4 and len({r.count(" | ") for r in rows if "---" not in r}) == 1
    assert rows[2].startswith("| joint |") and "**" in md

    # LaTeX, structurally: booktabs rules in order, two column groups of 3 (acc, macro-F1, Δ), balanced braces,
    # every body row with 1 + 2*3 cells, specials escaped outside the comment line
    body = tex.split("\n", 1)[1]
    assert tex.startswith("% mmcoop table")
    pos = [
        body.index(k) for k in (r"\begin{tabular}{lrrrrrr}", r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}")
    ]
    assert pos == sorted(pos)
    assert body.count(r"\multicolumn{3}{c}") == 2 and r"\cmidrule(lr){2-4} \cmidrule(lr){5-7}" in body
    assert body.count("{") == body.count("}")
    table_rows = body[body.index(r"\midrule") : body.index(r"\bottomrule")].strip().splitlines()[1:]
    assert len(table_rows) == 2 and all(r.count("&") == 6 and r.endswith(r"\\") for r in table_rows)
    assert not re.search(r"(?<!\\)[%_#]", body.replace(r"\%", "").replace(r"\_", ""))
    assert r"\textbf{" in body

    # a second run replaces its own files; a user's file of that name is kept
    assert runner.invoke(app, ["table", str(comparisons / "mfeat"), "--out", str(prefix)]).exit_code == 0
    (tmp_path / "mine.md").write_text("my notes\n")
    res = runner.invoke(app, ["table", str(comparisons / "mfeat"), "--out", str(tmp_path / "mine")])
    assert res.exit_code == 2 and "not written by `mmcoop table`" in " ".join(res.output.split())
    assert (tmp_path / "mine.md").read_text() == "my notes\n"
    res = runner.invoke(app, ["table", str(tmp_path)])
    assert res.exit_code == 2 and "neither a comparison" in res.output
