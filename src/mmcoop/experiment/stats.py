"""Statistics of a comparison over seeds: paired gains over a baseline and their intervals.

A small functional core (plain floats and numpy, no torch): a method and the
baseline trained with the same seed see the same splits, initialisation and
shuffles, so their difference on that seed is one paired observation. Over ``n``
seeds the mean gain gets a two-sided confidence interval from the paired t
statistic (``mean ± t_{(1+level)/2, n-1} · sd / sqrt(n)``) and, optionally, a
percentile bootstrap over seeds. With one seed the interval is undefined (NaN).

The Student-t quantile is computed here (no SciPy dependency): the two-sided tail
``P(|T| > t) = I_{ν/(ν+t²)}(ν/2, 1/2)`` through the regularised incomplete beta
function (continued fraction, modified Lentz evaluation), inverted by bisection.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

_EPS = 1e-300
_CF_TOL = 1e-15
_CF_MAX_TERMS = 10_000


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of ``I_x(a, b)`` (converges fast for ``x < (a+1)/(a+b+2)``)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _EPS else _EPS)
    out = d
    for m in range(1, _CF_MAX_TERMS):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # even term d_{2m}
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):  # odd term d_{2m+1}
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _EPS else _EPS)
            c = 1.0 + num / c
            c = c if abs(c) > _EPS else _EPS
            step = c * d
            out *= step
        if abs(step - 1.0) < _CF_TOL:
            return out
    return out  # pragma: no cover - the fraction converges for every a, b > 0 used here


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function ``I_x(a, b)`` for ``a, b > 0`` and ``0 <= x <= 1``."""
    if not (a > 0 and b > 0):
        raise ValueError(f"betainc needs a, b > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs 0 <= x <= 1, got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = a * math.log(x) + b * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """CDF of Student's t distribution with ``df`` degrees of freedom at ``t``."""
    if df <= 0:
        raise ValueError(f"t distribution needs df > 0, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    half_tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - half_tail if t > 0 else half_tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (e.g. ``t_quantile(0.975, 2) = 4.3027``).

    Bisection on ``t_cdf`` (monotone), to about 1e-12 relative precision.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"t distribution needs df > 0, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def paired_gains(method: Mapping[Any, float], baseline: Mapping[Any, float], scale: float = 100.0) -> dict[Any, float]:
    """Per-seed gain ``scale * (method[seed] - baseline[seed])`` over the seeds both have.

    Args:
        method: seed -> metric of the method (e.g. test accuracy in [0, 1]).
        baseline: seed -> the same metric of the baseline run with that seed.
        scale: 100 gives percentage points for accuracies in [0, 1].

    Returns:
        ``{seed: gain}`` in sorted seed order.

    Raises:
        ValueError: no seed in common.
    """
    seeds = sorted(set(method) & set(baseline))
    if not seeds:
        raise ValueError(f"no common seed between the method ({sorted(method)}) and the baseline ({sorted(baseline)})")
    return {s: scale * (float(method[s]) - float(baseline[s])) for s in seeds}


@dataclass(frozen=True)
class GainSummary:
    """Mean of paired gains and its two-sided interval(s).

    Attributes:
        n: number of seeds.
        mean: mean gain.
        sd: sample standard deviation (ddof=1; NaN for one seed).
        low, high: paired-t interval ``mean ∓ t_{(1+level)/2, n-1} · sd / sqrt(n)`` (NaN for one seed).
        level: confidence level (0.95).
        boot_low, boot_high: percentile-bootstrap interval over seeds (NaN unless requested and n >= 2).
    """

    n: int
    mean: float
    sd: float
    low: float
    high: float
    level: float
    boot_low: float = math.nan
    boot_high: float = math.nan

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sample sd and paired-t interval of ``values``: ``(mean, sd, low, high)``.

    With one value sd and the interval are NaN (undefined); with zero values everything is NaN.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    if x.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, x.size - 1) * sd / math.sqrt(x.size)
    return mean, sd, mean - half, mean + half


def bootstrap_interval(
    values: Sequence[float], level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampling seeds with replacement).

    Draws ``resamples`` index rows ``[resamples, n]`` from ``numpy.random.default_rng(seed)``
    (``integers(0, n, size=(resamples, n))``), takes each row's mean and returns the
    ``(1-level)/2`` and ``(1+level)/2`` quantiles (numpy's linear interpolation).
    NaN for fewer than two values (a single seed has no spread to resample).
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if resamples < 1:
        raise ValueError(f"bootstrap needs resamples >= 1, got {resamples}")
    if x.size < 2:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))
    means = x[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def summarize_gains(values: Sequence[float], level: float = 0.95, bootstrap: int = 0, seed: int = 0) -> GainSummary:
    """`GainSummary` of per-seed gains: paired-t interval, plus a bootstrap one when ``bootstrap > 0``."""
    mean, sd, low, high = t_interval(values, level)
    boot = bootstrap_interval(values, level, bootstrap, seed) if bootstrap > 0 else (math.nan, math.nan)
    return GainSummary(len(values), mean, sd, low, high, level, *boot)


__all__ = [
    "GainSummary",
    "betainc",
    "bootstrap_interval",
    "paired_gains",
    "summarize_gains",
    "t_cdf",
    "t_interval",
    "t_quantile",
]
