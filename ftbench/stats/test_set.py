"""The test set's own sampling uncertainty: one run's binomial (Wilson) interval,
McNemar's test of two runs scored on the same test examples (statsmodels), and the
two-level variance of a mean over seeds that all score one test set."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


def wilson(acc: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (%) of one run's accuracy `acc` (%) on `n` test examples:
    the test set's own sampling uncertainty (statsmodels' proportion_confint)."""
    from statsmodels.stats.proportion import proportion_confint

    if not n or not math.isfinite(acc):
        return math.nan, math.nan
    low, high = proportion_confint(round(acc / 100 * n), n, alpha=1 - confidence, method="wilson")
    return float(low) * 100, float(high) * 100


def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact McNemar p of two runs' per-example correctness on one test set
    (statsmodels' mcnemar on the discordant pairs)."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    return float(mcnemar(table, exact=True).pvalue)


@dataclass(frozen=True)
class TwoLevel:
    """The mean of a seeds x examples table and its variance when both the seeds and
    the test examples are samples; `seed_var` is the part a seeds-only interval sees
    (s² / n), `df` Satterthwaite's degrees of freedom of the sum."""

    mean: float
    var: float
    df: float
    seed_var: float


def two_level(y: np.ndarray) -> TwoLevel:
    """Variance of the grand mean of `y` (seeds x test examples: 100 x correct, or the
    difference of two runs' correctness on matched seeds) under the crossed random
    model y_ij = mu + seed_i + example_j + e_ij (seeds and test examples both drawn
    from their populations; Cornfield & Tukey 1956): (MS_seed + MS_example - MS_res)
    / (n N), with Satterthwaite's df. MS_seed / (n N) is s² / n of the seeds' means,
    the seeds-only variance; a negative estimate of the example term counts as 0.

    >>> round(two_level(np.array([[100., 0.], [100., 100.]])).var, 2)
    625.0
    """
    y = np.asarray(y, dtype=float)
    n, big_n = y.shape
    if n < 2 or big_n < 2:
        return TwoLevel(float(y.mean()) if y.size else math.nan, math.nan, math.nan, math.nan)
    grand, rows, cols = y.mean(), y.mean(axis=1), y.mean(axis=0)
    ms_seed = big_n * float(np.sum((rows - grand) ** 2)) / (n - 1)
    ms_ex = n * float(np.sum((cols - grand) ** 2)) / (big_n - 1)
    ms_res = float(np.sum((y - rows[:, None] - cols[None, :] + grand) ** 2)) / ((n - 1) * (big_n - 1))
    seed_var = ms_seed / (n * big_n)
    if ms_ex <= ms_res:
        return TwoLevel(float(grand), seed_var, float(n - 1), seed_var)
    total = ms_seed + ms_ex - ms_res
    df = total ** 2 / (ms_seed ** 2 / (n - 1) + ms_ex ** 2 / (big_n - 1) + ms_res ** 2 / ((n - 1) * (big_n - 1)))
    return TwoLevel(float(grand), total / (n * big_n), float(df), seed_var)


def t_interval(mean: float, var: float, df: float, confidence: float = 0.95) -> tuple[float, float]:
    """mean ± t(df) × sqrt(var): nan where the variance or df is not usable."""
    if not (var > 0 and df > 0 and math.isfinite(var)):
        return (mean, mean) if var == 0 else (math.nan, math.nan)
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * math.sqrt(var)
    return mean - half, mean + half
