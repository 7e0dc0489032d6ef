"""Statistics of a comparison: Student-t quantiles, paired gains, t and bootstrap intervals,
gain summaries and their printed form, against hand-computed values and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from mmcoop.errors import ConfigError
from mmcoop.experiment.compare import (
    add_gain_summary,
    format_gains,
    matched_epochs,
    parse_matched,
    parse_methods,
    summarize,
)
from mmcoop.experiment.stats import (
    betainc,
    bootstrap_interval,
    paired_gains,
    summarize_gains,
    t_cdf,
    t_interval,
    t_quantile,
)
from mmcoop.methods import METHODS

T975_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # closed form for 2 df: (2p-1)/sqrt(2p(1-p)) = 4.30265


# -- the t distribution -----------------------------------------------------------------------
def test_betainc_closed_forms():
    for x in (0.0, 0.1, 0.37, 0.9, 1.0):
        assert betainc(1, 1, x) == pytest.approx(x, abs=1e-14)
        assert betainc(3, 1, x) == pytest.approx(x**3, abs=1e-14)  # I_x(a, 1) = x^a
        assert betainc(1, 4, x) == pytest.approx(1 - (1 - x) ** 4, abs=1e-14)  # I_x(1, b) = 1 - (1-x)^b
    assert betainc(7.5, 7.5, 0.5) == pytest.approx(0.5, abs=1e-14)  # symmetry
    # I_x(1/2, 1/2) = (2/pi) asin(sqrt(x))
    assert betainc(0.5, 0.5, 0.3) == pytest.approx(2 / math.pi * math.asin(math.sqrt(0.3)), abs=1e-13)
    with pytest.raises(ValueError):
        betainc(0, 1, 0.5)
    with pytest.raises(ValueError):
        betainc(1, 1, 1.5)


def test_t_cdf_closed_forms():
    for t in (-30.0, -2.0, -0.3, 0.0, 0.7, 4.0, 100.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-13)  # Cauchy
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-13)
    assert t_cdf(math.inf, 3) == 1.0 and t_cdf(-math.inf, 3) == 0.0


def test_t_quantile_closed_forms_and_table():
    assert t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-10)  # 12.7062
    assert t_quantile(0.975, 2) == pytest.approx(T975_2, rel=1e-10)
    assert t_quantile(0.975, 2) == pytest.approx(4.3027, abs=1e-4)
    # printed t tables (two-sided 95%): df 4, 9, 29
    assert t_quantile(0.975, 4) == pytest.approx(2.776445, abs=1e-6)
    assert t_quantile(0.975, 9) == pytest.approx(2.262157, abs=1e-6)
    assert t_quantile(0.975, 29) == pytest.approx(2.045230, abs=1e-6)
    assert t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)  # -> the normal quantile
    assert t_quantile(0.025, 4) == pytest.approx(-2.776445, abs=1e-6)
    assert t_quantile(0.5, 3) == 0.0
    for p in (0.6, 0.9, 0.995):
        assert t_cdf(t_quantile(p, 5), 5) == pytest.approx(p, abs=1e-12)
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


# -- paired gains and intervals --------------------------------------------------------------------
def test_paired_gains_same_seed_in_points():
    g = paired_gains({0: 0.80, 1: 0.90, 5: 0.5}, {1: 0.91, 0: 0.75, 2: 0.1})
    assert list(g) == [0, 1]  # seeds both have, sorted
    assert g[0] == pytest.approx(5.0) and g[1] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="no common seed"):
        paired_gains({0: 1.0}, {1: 1.0})


def test_t_interval_by_hand():
    mean, sd, low, high = t_interval([1.0, 2.0, 3.0])
    half = T975_2 / math.sqrt(3)  # sd = 1
    assert (mean, sd) == (pytest.approx(2.0), pytest.approx(1.0))
    assert low == pytest.approx(2 - half) and high == pytest.approx(2 + half)
    s = summarize_gains([1.0, 2.0, 3.0])
    assert s.n == 3 and s.half_width == pytest.approx(half) and math.isnan(s.boot_low)
    # two seeds, gains 4 and 0: mean 2, sd sqrt(8), half-width 12.7062 * sqrt(8) / sqrt(2) = 25.41
    _, sd2, lo2, hi2 = t_interval([4.0, 0.0])
    assert sd2 == pytest.approx(math.sqrt(8)) and hi2 - 2 == pytest.approx(math.tan(math.pi * 0.475) * 2, rel=1e-9)
    # a 90% interval uses t_{0.95, 2} = 2.919986
    _, _, lo90, _ = t_interval([1.0, 2.0, 3.0], level=0.90)
    assert lo90 == pytest.approx(2 - 2.919986 / math.sqrt(3), abs=1e-6)


def test_one_seed_interval_is_undefined():
    mean, sd, low, high = t_interval([1.5])
    assert mean == 1.5 and all(math.isnan(v) for v in (sd, low, high))
    s = summarize_gains([1.5], bootstrap=100)
    assert s.n == 1 and math.isnan(s.low) and math.isnan(s.boot_low)
    assert all(math.isnan(v) for v in t_interval([]))


def test_bootstrap_equals_brute_force_loop():
    x = [0.5, 3.0, -1.0, 2.0]
    lo, hi = bootstrap_interval(x, resamples=500, seed=7)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 4, size=(500, 4))
    means = [sum(x[j] for j in row) / 4 for row in idx.tolist()]  # one resample at a time
    assert lo == pytest.approx(np.quantile(means, 0.025)) and hi == pytest.approx(np.quantile(means, 0.975))
    assert bootstrap_interval(x, resamples=500, seed=7) == (lo, hi)  # seeded: repeatable
    assert bootstrap_interval([2.0, 2.0, 2.0], resamples=50) == (2.0, 2.0)
    assert all(math.isnan(v) for v in bootstrap_interval([1.0]))


def test_bootstrap_approaches_exact_enumeration():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    means = np.sort([x[list(c)].mean() for c in itertools.product(range(4), repeat=4)])  # all 256 resamples
    cdf = np.arange(1, means.size + 1) / means.size
    exact_lo, exact_hi = means[np.searchsorted(cdf, 0.025)], means[np.searchsorted(cdf, 0.975)]
    lo, hi = bootstrap_interval(x, resamples=40_000, seed=1)
    assert lo == pytest.approx(exact_lo, abs=0.25) and hi == pytest.approx(exact_hi, abs=0.25)  # grid step 0.25


# -- the gain summary of a comparison ---------------------------------------------------------
def _runs() -> pd.DataFrame:
    rows = []
    for s, (j, m, m2) in enumerate([(0.80, 0.81, 0.70), (0.85, 0.87, 0.71), (0.90, 0.93, 0.72)]):
        rows.append(
            {
                "method": "joint",
                "seed": s,
                "test_acc": j,
                "sample_visits": 100,
                "optimizer_steps": 10,
                "seconds_per_epoch": 2.0,
            }
        )
        rows.append(
            {
                "method": "m",
                "seed": s,
                "test_acc": m,
                "sample_visits": 250,
                "optimizer_steps": 25,
                "seconds_per_epoch": 1.0 + s,
                "gain_epochs": 100 * (m - j),
                "gain_visits": 100 * (m - j) - 1,
                "baseline_epochs_visits": 5,
            }
        )
        rows.append(
            {
                "method": "one",
                "seed": s,
                "test_acc": m2,
                "sample_visits": 100,
                "optimizer_steps": 40,
                "gain_epochs": 100 * (m2 - j) if s == 0 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def test_gain_summary_by_hand():
    runs = _runs()
    s = add_gain_summary(summarize(runs), runs, bootstrap=200, bootstrap_seed=3).set_index("method")
    half = T975_2 / math.sqrt(3)  # gains 1, 2, 3 points
    assert s.loc["m", "gain_epochs_mean"] == pytest.approx(2.0)
    assert s.loc["m", "gain_epochs_low"] == pytest.approx(2 - half) and s.loc["m", "gain_epochs_high"] == pytest.approx(
        2 + half
    )
    assert s.loc["m", "gain_visits_mean"] == pytest.approx(1.0)
    assert s.loc["m", "gain_epochs_boot_low"] == pytest.approx(
        bootstrap_interval([1.0, 2.0, 3.0], resamples=200, seed=3)[0]
    )
    assert math.isnan(s.loc["joint", "gain_epochs_mean"])  # the baseline has no gain
    assert s.loc["one", "gain_epochs_n"] == 1 and math.isnan(s.loc["one", "gain_epochs_low"])
    assert s.loc["m", "sample_visits_mean"] == 250

    table = format_gains(s.reset_index(), runs).set_index("method")
    assert list(table.index) == ["m", "one"]
    boot = bootstrap_interval([1.0, 2.0, 3.0], resamples=200, seed=3)
    assert table.loc["m", "gain"] == f"+2.0 [{2 - half:+.1f}, {2 + half:+.1f}]\nboot [{boot[0]:+.1f}, {boot[1]:+.1f}]"
    assert table.loc["m", "gain"].startswith("+2.0 [-0.5, +4.5]\n")
    assert table.loc["m", "visits ×joint"] == "2.50" and table.loc["m", "steps ×joint"] == "2.50"
    assert table.loc["m", "s/epoch ×joint"] == "1.00" and table.loc["one", "s/epoch ×joint"] == "–"
    assert table.loc["m", "gain@visits"].startswith("+1.0 [") and table.loc["m", "gain@visits"].endswith(
        "\nvs joint 5 ep"
    )
    assert table.loc["one", "gain"] == "-10.0 (1 seed: no CI)\nboot n/a" and table.loc["one", "steps ×joint"] == "4.00"


# -- parsing and matching ----------------------------------------------------------------------------
def test_parse_matched():
    assert parse_matched("steps,visits") == ("visits", "steps")
    assert parse_matched("visits") == ("visits",)
    assert parse_matched("none") == () and parse_matched("") == ()
    assert parse_matched("flops,visits") == ("visits", "flops")  # issue 26: the same training FLOPs
    with pytest.raises(ConfigError, match="--matched"):
        parse_matched("joules")


def test_matched_epochs_rounds_half_up_and_never_below():
    assert matched_epochs(1600, 800, 2) == 2
    assert matched_epochs(2000, 800, 2) == 3  # 2.5 -> 3 (Python's round would give 2)
    assert matched_epochs(2900, 800, 2) == 4  # 3.625 -> 4
    assert matched_epochs(1000, 800, 2) == 2  # fewer visits than joint: the equal-epoch joint run is the match
    assert matched_epochs(5000, 0, 2) == 2 and matched_epochs(float("nan"), 800, 2) == 2


def test_methods_all_runs_every_registered_method():
    names = [m.label for m in parse_methods("all")]
    assert names[0] == "joint"
    assert set(names) == set(METHODS.names()) - {"unimodal"}
    assert "unimodal" in [m.label for m in parse_methods("all", {"modality": "m0"})]
    assert [m.label for m in parse_methods("all,unimodal")].count("unimodal") == 1
    assert [m.label for m in parse_methods("joint,all")].count("joint") == 1


def test_methods_all_skips_methods_defined_for_fewer_modalities(tmp_path):
    import pytest

    from mmcoop.experiment import RunConfig, parse_methods, run_compare

    base = RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"num_modalities": 3},
            "train": {"epochs": 1, "progress": False},
            "out_dir": str(tmp_path),
        }
    )
    specs = [m for m in parse_methods("all") if m.name in ("joint", "greedy")]
    with pytest.warns(UserWarning, match="skipping greedy"):
        _, df, _ = run_compare(base, specs, [0], name="c", matched=())
    assert list(df["method"]) == ["joint"]
    with pytest.raises(Exception, match="defined for fewer modalities"):  # named explicitly: refused up front
        run_compare(base, parse_methods("joint,greedy"), [0], name="d", matched=())
