"""Summaries of a comparison: mean and sample std over seeds, and their printed form."""

import pandas as pd
import pytest

from mmcoop.experiment.compare import format_summary, summarize


def _runs(seeds: list[int]) -> pd.DataFrame:
    accs = {"joint": [0.80, 0.90, 0.85], "sample-level": [0.70, 0.74, 0.78]}
    return pd.DataFrame(
        [
            {"method": m, "seed": s, "test_acc": accs[m][i], "seconds_per_epoch": 2.0 + i, "best_val_acc": 0.5}
            for m in accs
            for i, s in enumerate(seeds)
        ]
    )


def test_summarize_mean_and_sample_std_per_method():
    summary = summarize(_runs([0, 1, 2])).set_index("method")
    assert summary.loc["joint", "seeds"] == 3
    assert summary.loc["joint", "test_acc_mean"] == pytest.approx(0.85)
    assert summary.loc["joint", "test_acc_std"] == pytest.approx(0.05)  # ddof=1: sqrt((0.05^2 * 2) / 2)
    assert summary.loc["sample-level", "test_acc_std"] == pytest.approx(0.04)
    assert summary.loc["sample-level", "seconds_per_epoch_mean"] == pytest.approx(3.0)


def test_format_summary_shows_spread_only_with_several_seeds():
    several = format_summary(summarize(_runs([0, 1, 2]))).set_index("method")
    assert several.loc["joint", "acc"] == "85.0 ± 5.0" and several.loc["joint", "s/epoch"] == "3.0"
    assert "best_val_acc" not in several.columns
    one = format_summary(summarize(_runs([7]))).set_index("method")
    assert one.loc["joint", "acc"] == "80.0" and one.loc["sample-level", "acc"] == "70.0"
    assert one.loc["joint", "seeds"] == 1
