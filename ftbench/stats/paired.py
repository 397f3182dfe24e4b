"""Paired comparisons on matched seeds: the paired test, Holm, effect size with its
interval, equivalence (TOST), power, and which cells a group can tell from its best."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from scipy import optimize, stats

from ftbench.stats.seeds import summarize

PairedTest = Literal["ttest", "wilcoxon"]
TESTS: tuple[str, ...] = ("ttest", "wilcoxon")


@dataclass(frozen=True)
class Paired:
    """One strategy against another on matched seeds; diff = a - b."""

    n_pairs: int
    mean_diff: float
    diff_low: float
    diff_high: float
    p: float
    d_z: float
    note: str | None = None


def match_seeds(a: dict[int, float], b: dict[int, float]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The seeds both have, and their values in that order."""
    seeds = sorted(set(a) & set(b))
    return seeds, np.array([a[s] for s in seeds], dtype=float), np.array([b[s] for s in seeds], dtype=float)


def paired_test(a: Sequence[float], b: Sequence[float], *, test: PairedTest = "ttest",
                confidence: float = 0.95) -> Paired:
    """Paired comparison of matched samples `a` and `b`: mean difference with its
    Student-t interval, the p-value of `test` (scipy's ttest_rel or wilcoxon) and
    Cohen's d_z = mean(diff) / sd(diff)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(a)
    if n < 2:
        return Paired(n, float(np.mean(a - b)) if n else math.nan, math.nan, math.nan, math.nan, math.nan,
                      f"{n} matched seed(s): a paired test needs 2")
    s = summarize(a - b, interval="t", confidence=confidence)
    diff = a - b
    if np.all(diff == 0):
        # scipy answers nan for identical samples; they do not differ at all.
        return Paired(n, 0.0, 0.0, 0.0, 1.0, 0.0)
    if s.std == 0:
        # Constant nonzero differences leave no variance to estimate: a t-test has no
        # answer (scipy says p=0). The exact sign-flip permutation p respects n: 2/2**n.
        return Paired(n, s.mean, math.nan, math.nan, min(1.0, wilcoxon_min_p(n)), math.nan,
                      f"all {n} differences equal: no variance, exact sign-flip p")
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if test == "ttest":
            p = float(stats.ttest_rel(a, b).pvalue)
        elif test == "wilcoxon":
            p = float(stats.wilcoxon(a, b).pvalue)
        else:
            raise ValueError(f"test must be one of {TESTS}, not {test!r}")
    return Paired(n, s.mean, s.low, s.high, p, s.mean / s.std)


def wilcoxon_min_p(n: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon signed-rank test can give
    for n pairs without ties or zeros (all differences of one sign): 2 / 2**n.

    >>> wilcoxon_min_p(5)
    0.0625
    """
    return 2.0 ** (1 - n)


def test_label(test: PairedTest) -> str:
    """How a footnote names the paired test."""
    return "paired t-test" if test == "ttest" else "Wilcoxon signed-rank test"


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down); nan entries stay nan and do not
    count as comparisons.

    >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, math.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    # The i-th smallest p is multiplied by (m - i); a later one may not fall below an earlier one.
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def hedges_gz(diff: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Hedges' g_z of paired differences (d_z = mean / sd with the small-sample factor
    J = 1 - 3 / (4(n - 1) - 1)) and its interval from inverting the noncentral t
    (Cumming & Finch 2001). nan below 3 pairs or without variance.

    Hand-written: scipy and statsmodels give the noncentral t but no interval for g_z.
    """
    d = np.asarray(diff, dtype=float)
    n = len(d)
    if n < 3 or d.std(ddof=1) == 0:
        return math.nan, math.nan, math.nan
    dz = float(d.mean() / d.std(ddof=1))
    df, t_obs, j = n - 1, dz * math.sqrt(n), 1 - 3 / (4 * (n - 1) - 1)

    def ncp(q: float) -> float:
        """The noncentrality at which t_obs is the q-quantile; cdf falls as ncp grows."""
        f = lambda nc: stats.nct.cdf(t_obs, df, nc) - q  # noqa: E731
        step = 1.0 + abs(t_obs)
        lo, hi = t_obs - step, t_obs + step
        while f(lo) < 0 or f(hi) > 0:  # widen until the root is bracketed
            step *= 2
            lo, hi = t_obs - step, t_obs + step
            if step > 1e4 or not (math.isfinite(f(lo)) and math.isfinite(f(hi))):
                return math.nan  # nct.cdf gives up far in the tail: no finite bound
        return optimize.brentq(f, lo, hi)

    tail = (1 - confidence) / 2
    return j * dz, j * ncp(1 - tail) / math.sqrt(n), j * ncp(tail) / math.sqrt(n)


def tost_paired(a: Sequence[float], b: Sequence[float], margin: float) -> float:
    """p of the paired two one-sided tests that |mean(a - b)| < margin (statsmodels'
    ttost_paired): small p backs "equivalent within ±margin". nan below 2 pairs or
    without variance."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or np.std(a - b) == 0:
        return math.nan
    from statsmodels.stats.weightstats import ttost_paired

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttost_paired(a, b, -margin, margin)[0])


def power_paired(n: int, sd_diff: float, alpha: float, power: float = 0.8) -> tuple[float, float]:
    """(minimum detectable mean difference with `n` pairs, pairs needed to detect a
    1-point difference) for a two-sided paired t-test at `alpha` and `power`, from the
    noncentral t (statsmodels' TTestPower). nan where undefined."""
    if n < 2 or not sd_diff > 0:
        return math.nan, math.nan
    from statsmodels.stats.power import TTestPower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mde = float(TTestPower().solve_power(nobs=n, alpha=alpha, power=power)) * sd_diff
        need = float(TTestPower().solve_power(effect_size=1.0 / sd_diff, alpha=alpha, power=power))
    return mde, math.ceil(need) if math.isfinite(need) else math.nan


@dataclass(frozen=True)
class BestSet:
    """The cells a group cannot tell from its best: `best` has the best mean among the
    testable cells, `worse` those some other cell beats significantly (Holm over every
    pair of testable cells), `untestable` those with fewer than 2 seeds."""

    best: object | None
    worse: set
    untestable: set


def best_set(cells: dict, *, higher: bool = True, alpha: float = 0.05, test: PairedTest = "ttest") -> BestSet:
    """Which of `cells` (key -> {seed: value}) are significantly worse than another.

    Every pair of testable cells gets a two-sided paired test on matched seeds and Holm
    adjusts over all k(k-1)/2 of them, so the chance of calling any cell worse when it
    is not stays <= alpha whatever the true means (strong family-wise error control).
    Testing against the observed best alone, as picking it first and then comparing,
    does not control that error (about 8% at k = 6, n = 5 with alpha = 0.05).
    """
    keys = [k for k, v in cells.items() if len(v) >= 2]
    untestable = {k for k in cells if k not in keys}
    if not keys:
        return BestSet(None, set(), untestable)
    sign = 1 if higher else -1
    best = max(keys, key=lambda k: sign * float(np.mean(list(cells[k].values()))))
    pairs, diffs = [], []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            _, x, y = match_seeds(cells[a], cells[b])
            pairs.append((a, b, sign * float(np.mean(x - y)) if len(x) else 0.0))
            diffs.append(x - y)
    pvals = _paired_pvalues(diffs, test)
    worse = set()
    for (a, b, diff), p in zip(pairs, holm(pvals)):
        if p < alpha and diff != 0:
            worse.add(b if diff > 0 else a)
    return BestSet(best, worse - {best}, untestable)


def _paired_pvalues(diffs: list[np.ndarray], test: PairedTest) -> np.ndarray:
    """paired_test's p for many difference vectors; the t-test in one scipy call
    (ttest_rel one pair at a time is the slow part of marking a large table)."""
    if test != "ttest":
        return np.array([paired_test(d, np.zeros_like(d), test=test).p for d in diffs])
    out = np.full(len(diffs), math.nan)
    t, df, idx = [], [], []
    for i, d in enumerate(diffs):
        n = len(d)
        if n < 2:
            continue
        sd = float(d.std(ddof=1))
        if sd == 0:
            out[i] = 1.0 if np.all(d == 0) else min(1.0, wilcoxon_min_p(n))
        else:
            t.append(float(d.mean()) / (sd / math.sqrt(n)))
            df.append(n - 1)
            idx.append(i)
    if idx:
        out[idx] = 2 * stats.t.sf(np.abs(t), df)
    return out
