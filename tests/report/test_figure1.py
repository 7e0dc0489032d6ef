"""Figure 1 of a comparison: gain over joint per method with its 95% interval, at equal epochs
and at equal compute, drawn from compare.csv / summary.csv and embedded in report.html."""

from __future__ import annotations

import base64
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmcoop.report import write_report
from mmcoop.report.plots import gain_bars, gain_figure, gain_methods

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T975_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # t_{0.975, 2}


class _Imgs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[tuple[str, bytes]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img" and a.get("src", "").startswith("data:image/png;base64,"):
            self.imgs.append((a.get("alt", ""), base64.b64decode(a["src"].split(",", 1)[1])))


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three seeds: method ``a`` gains 1, 2, 3 points at equal epochs and 0, 1, 2 against joint@5ep;
    ``b`` ran one seed (no interval)."""
    runs = []
    for s in range(3):
        runs.append(
            {
                "method": "joint",
                "seed": s,
                "role": "method",
                "run_dir": f"joint_seed{s}",
                "test_acc": 0.8,
                "sample_visits": 100,
                "optimizer_steps": 10,
            }
        )
        runs.append(
            {
                "method": "a",
                "seed": s,
                "role": "method",
                "run_dir": f"a_seed{s}",
                "test_acc": 0.81 + 0.01 * s,
                "sample_visits": 250,
                "optimizer_steps": 25,
                "gain_epochs": 1.0 + s,
                "gain_visits": float(s),
                "baseline_epochs_visits": 5,
            }
        )
        runs.append(
            {
                "method": "joint@5ep",
                "seed": s,
                "role": "matched",
                "run_dir": f"joint@5ep_seed{s}",
                "test_acc": 0.81,
                "sample_visits": 250,
                "optimizer_steps": 25,
            }
        )
    runs.append(
        {
            "method": "b",
            "seed": 0,
            "role": "method",
            "run_dir": "b_seed0",
            "test_acc": 0.75,
            "sample_visits": 100,
            "optimizer_steps": 40,
            "gain_epochs": -5.0,
            "gain_visits": -5.0,
            "baseline_epochs_visits": 2,
        }
    )
    half = T975_2 / math.sqrt(3)
    nan = float("nan")
    summary = pd.DataFrame(
        [
            {
                "method": "joint",
                "seeds": 3,
                "test_acc_mean": 0.8,
                "test_acc_std": 0.0,
                "sample_visits_mean": 100,
                "optimizer_steps_mean": 10,
                "gain_epochs_n": nan,
                "gain_epochs_mean": nan,
                "gain_epochs_low": nan,
                "gain_epochs_high": nan,
                "gain_visits_n": nan,
                "gain_visits_mean": nan,
                "gain_visits_low": nan,
                "gain_visits_high": nan,
            },
            {
                "method": "a",
                "seeds": 3,
                "test_acc_mean": 0.82,
                "test_acc_std": 0.01,
                "sample_visits_mean": 250,
                "optimizer_steps_mean": 25,
                "gain_epochs_n": 3,
                "gain_epochs_mean": 2.0,
                "gain_epochs_low": 2 - half,
                "gain_epochs_high": 2 + half,
                "gain_visits_n": 3,
                "gain_visits_mean": 1.0,
                "gain_visits_low": 1 - half,
                "gain_visits_high": 1 + half,
            },
            {
                "method": "joint@5ep",
                "seeds": 3,
                "test_acc_mean": 0.81,
                "test_acc_std": 0.0,
                "sample_visits_mean": 250,
                "optimizer_steps_mean": 25,
                "gain_epochs_n": nan,
                "gain_epochs_mean": nan,
                "gain_epochs_low": nan,
                "gain_epochs_high": nan,
                "gain_visits_n": nan,
                "gain_visits_mean": nan,
                "gain_visits_low": nan,
                "gain_visits_high": nan,
            },
            {
                "method": "b",
                "seeds": 1,
                "test_acc_mean": 0.75,
                "test_acc_std": 0.0,
                "sample_visits_mean": 100,
                "optimizer_steps_mean": 40,
                "gain_epochs_n": 1,
                "gain_epochs_mean": -5.0,
                "gain_epochs_low": nan,
                "gain_epochs_high": nan,
                "gain_visits_n": 1,
                "gain_visits_mean": -5.0,
                "gain_visits_low": nan,
                "gain_visits_high": nan,
            },
        ]
    )
    return pd.DataFrame(runs), summary


def test_gain_bars_are_the_summary_gains():
    runs, summary = _tables()
    assert gain_methods(summary) == ["a", "b"]  # not the baseline, not the matched joint runs
    bars = gain_bars(summary)
    assert list(bars) == ["epochs", "visits"]
    half = T975_2 / math.sqrt(3)
    a = bars["epochs"].loc["a"]
    assert (a["mean"], a["low"], a["high"]) == (2.0, pytest.approx(2 - half), pytest.approx(2 + half))
    assert bars["visits"].loc["a", "mean"] == 1.0 and bars["visits"].loc["b", "mean"] == -5.0
    assert np.isnan(bars["epochs"].loc["b", "low"])  # one seed: no interval, still a bar
    png = gain_figure(summary, runs)
    assert png is not None and png.startswith(PNG_MAGIC)
    assert gain_figure(summary.drop(columns=[c for c in summary.columns if c.startswith("gain_")]), runs) is None
    one = summary[summary["method"].isin(["joint", "b"])]
    assert gain_figure(one).startswith(PNG_MAGIC)  # every method on one seed


def test_report_embeds_figure1_and_gain_table(tmp_path: Path):
    runs, summary = _tables()
    cdir = tmp_path / "cmp"
    cdir.mkdir()
    runs.to_csv(cdir / "compare.csv", index=False)
    summary.to_csv(cdir / "summary.csv", index=False)
    out = write_report(cdir)
    png = (cdir / "plots" / "figure1_gain.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    p = _Imgs()
    html = out.read_text()
    p.feed(html)
    fig1 = [data for alt, data in p.imgs if alt.startswith("Figure 1")]
    assert fig1 == [png]  # embedded, the same bytes as the saved file
    half = T975_2 / math.sqrt(3)
    assert f"[{2 - half:+.2f}, {2 + half:+.2f}]" in html  # equal-epoch interval of a
    assert "undefined (1 seed)" in html  # b
    assert "2.50" in html and "4.00" in html  # visits of a / steps of b relative to joint
    assert "gain_epochs" not in html  # gain columns are not repeated in the accuracy summary


def test_report_without_gains_says_so(tmp_path: Path):
    runs, summary = _tables()
    cdir = tmp_path / "old"
    cdir.mkdir()
    runs.drop(columns=[c for c in runs.columns if c.startswith(("gain_", "baseline_"))]).to_csv(
        cdir / "compare.csv", index=False
    )
    summary.drop(columns=[c for c in summary.columns if c.startswith("gain_")]).to_csv(
        cdir / "summary.csv", index=False
    )
    html = write_report(cdir).read_text()
    assert "No paired gains" in html and not (cdir / "plots" / "figure1_gain.png").exists()
