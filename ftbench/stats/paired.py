"""Paired comparisons on matched seeds: the paired test, Holm, effect size with its
interval, equivalence (TOST), power, and which cells a group can tell from its best.

Differences are compared on the test set's own grid: an accuracy on n test examples
moves in steps of 100 / n points, and a record stores it as float32 x 100, so two
runs one example apart differ by 100 / n ± 1e-6. `on_grid` snaps differences to
that step (or to GRID_TOLERANCE where no step is known) before any test sees them,
so "the same difference on every seed" is recognised as such. No function here
raises on a degenerate input: each returns nan with a note saying why.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from scipy import optimize, stats

from ftbench.stats.seeds import t_quantile
from ftbench.stats.test_set import two_level

PairedTest = Literal["ttest", "wilcoxon"]
TESTS: tuple[str, ...] = ("ttest", "wilcoxon")
# Differences closer than this (points, or log units for times) are equal: far above
# float32 noise (~1e-5 at 100), far below any real difference (one example in 10^6).
GRID_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Paired:
    """One strategy against another on matched seeds; diff = a - b. `df` is the t
    test's degrees of freedom (n - 1, or Satterthwaite's with the test set)."""

    n_pairs: int
    mean_diff: float
    diff_low: float
    diff_high: float
    p: float
    d_z: float
    note: str | None = None
    df: float = math.nan
    se: float = math.nan


def on_grid(values: Sequence[float] | np.ndarray, step: float | None = None) -> np.ndarray:
    """`values` snapped to multiples of `step` (one test example = 100 / n_test
    points), or of GRID_TOLERANCE without one.

    >>> on_grid([0.18518519, 0.18518601], 100 / 540).tolist() == [100 / 540] * 2
    True
    """
    step = step if step and step > 0 else GRID_TOLERANCE
    return np.round(np.asarray(values, dtype=float) / step) * step


def match_seeds(a: dict[int, float], b: dict[int, float]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The seeds both have, and their values in that order."""
    seeds = sorted(set(a) & set(b))
    return seeds, np.array([a[s] for s in seeds], dtype=float), np.array([b[s] for s in seeds], dtype=float)


def sign_flip_p(n: int) -> float:
    """Exact two-sided sign-flip (permutation) p of n equal nonzero differences: 2 / 2**n.

    >>> sign_flip_p(5)
    0.0625
    """
    return min(1.0, 2.0 ** (1 - n))


wilcoxon_min_p = sign_flip_p  # the smallest p the exact Wilcoxon test can give for n pairs


def paired_test(a: Sequence[float], b: Sequence[float], *, test: PairedTest = "ttest", confidence: float = 0.95,
                step: float | None = None, examples: np.ndarray | None = None) -> Paired:
    """Paired comparison of matched samples `a` and `b` (differences on the grid of
    `step`): mean difference with its Student-t interval, the p of `test` (scipy's
    t or Wilcoxon) and Cohen's d_z = mean / sd of the differences.

    `examples` (seeds x test examples, the two runs' per-example correctness
    difference in points) adds the test set's sampling variance (`two_level`): the
    t statistic and interval then use the two-level variance and its Satterthwaite
    df, and answer for the population the test set was drawn from (t-test only).
    Equal differences on every seed without `examples` have no variance to test:
    p is the exact sign-flip p, 2 / 2**n.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, not {test!r}")
    diff = on_grid(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), step)
    n = len(diff)
    if n < 2:
        return Paired(n, float(diff.mean()) if n else math.nan, math.nan, math.nan, math.nan, math.nan,
                      f"{n} matched seed(s): a paired test needs 2")
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    if examples is not None and test == "ttest":
        level = two_level(examples)
        if level.var > 0:
            t = mean / math.sqrt(level.var)
            half = t_quantile((1 + confidence) / 2, level.df) * math.sqrt(level.var)
            p = float(2 * stats.t.sf(abs(t), level.df))
            return Paired(n, mean, mean - half, mean + half, p, mean / sd if sd > 0 else math.nan,
                          None, level.df, math.sqrt(level.var))
    if np.all(diff == 0):
        return Paired(n, 0.0, 0.0, 0.0, 1.0, math.nan, "every difference is 0", n - 1, 0.0)
    if np.ptp(diff) == 0:  # not sd == 0: the mean of equal floats is not always one of them
        mean = float(diff[0])
        return Paired(n, mean, mean, mean, sign_flip_p(n), math.nan,
                      f"all {n} differences equal: no variance, exact sign-flip p", n - 1, 0.0)
    se = sd / math.sqrt(n)
    half = t_quantile((1 + confidence) / 2, n - 1) * se
    if test == "ttest":
        p = float(2 * stats.t.sf(abs(mean / se), n - 1))
    else:
        p = _wilcoxon_p(diff)
    return Paired(n, mean, mean - half, mean + half, p, mean / sd, None, n - 1, se)


def _wilcoxon_p(diff: np.ndarray) -> float:
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        try:
            return float(stats.wilcoxon(diff).pvalue)
        except ValueError:
            return math.nan


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
    """Hedges' g_z of paired differences: d_z = mean / sd times the small-sample
    factor J = 1 - 3 / (4(n - 1) - 1), and the interval of the population δ_z from
    inverting the noncentral t (Cumming & Finch 2001). J corrects the point's bias
    only: the inverted bounds are already exact for δ_z, and shrinking them by J
    made a stated 95% cover 71-79% at n = 3. nan below 3 pairs, without variance,
    or where the noncentral t gives no finite bound.

    Hand-written: scipy and statsmodels give the noncentral t but no interval for g_z.
    """
    d = np.asarray(diff, dtype=float)
    n = len(d)
    if n < 3 or np.ptp(d) == 0:
        return math.nan, math.nan, math.nan
    dz = float(d.mean() / d.std(ddof=1))
    df, t_obs, j = n - 1, dz * math.sqrt(n), 1 - 3 / (4 * (n - 1) - 1)
    tail = (1 - confidence) / 2
    low, high = _ncp(t_obs, df, 1 - tail), _ncp(t_obs, df, tail)
    return j * dz, low / math.sqrt(n), high / math.sqrt(n)


def _ncp(t_obs: float, df: int, q: float) -> float:
    """The noncentrality at which t_obs is the q-quantile (nct.cdf falls as it grows); nan if none is found."""
    def f(nc: float) -> float:
        with np.errstate(all="ignore"):
            return float(stats.nct.cdf(t_obs, df, nc)) - q

    step = 1.0 + abs(t_obs)
    lo, hi = t_obs - step, t_obs + step
    while True:
        f_lo, f_hi = f(lo), f(hi)
        if not (math.isfinite(f_lo) and math.isfinite(f_hi)) or step > 1e4:
            return math.nan  # nct.cdf gives up far in the tail: no finite bound
        if f_lo >= 0 >= f_hi:
            break
        step *= 2
        lo, hi = t_obs - step, t_obs + step
    try:
        return float(optimize.brentq(f, lo, hi))
    except (ValueError, RuntimeError):
        return math.nan


def tost_paired(a: Sequence[float], b: Sequence[float], margin: float, *, step: float | None = None,
                examples: np.ndarray | None = None) -> float:
    """p of the paired two one-sided tests that |mean(a - b)| < margin: small p backs
    "equivalent within ±margin". Over seeds it is statsmodels' ttost_paired (on the
    differences snapped to the grid); with `examples`, the same two t tests on the
    two-level variance and its df. nan below 2 pairs or without variance."""
    diff = on_grid(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), step)
    if len(diff) < 2:
        return math.nan
    if examples is not None:
        level = two_level(examples)
        if level.var > 0:
            se, df = math.sqrt(level.var), level.df
            mean = float(diff.mean())
            return float(max(stats.t.sf((mean + margin) / se, df), stats.t.cdf((mean - margin) / se, df)))
    if np.ptp(diff) == 0:
        return math.nan
    from statsmodels.stats.weightstats import ttost_paired

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttost_paired(diff, np.zeros_like(diff), -margin, margin)[0])


def power_paired(n: int, sd_diff: float, alpha: float, power: float = 0.8) -> tuple[float, float]:
    """(minimum detectable mean difference with `n` pairs, pairs needed to detect a
    1-point difference) for a two-sided paired t-test at `alpha` and `power`, from the
    noncentral t (statsmodels' TTestPower). nan where undefined."""
    if n < 2 or not sd_diff > 0 or not 0 < alpha < 1:
        return math.nan, math.nan
    from statsmodels.stats.power import TTestPower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            mde = float(TTestPower().solve_power(nobs=n, alpha=alpha, power=power)) * sd_diff
            need = float(TTestPower().solve_power(effect_size=1.0 / sd_diff, alpha=alpha, power=power))
        except (ValueError, RuntimeError, ArithmeticError):
            return math.nan, math.nan
    return mde, math.ceil(need) if math.isfinite(need) else math.nan


@dataclass(frozen=True)
class PairResult:
    """A two-sided test of two cells of one group; diff = a - b, signed so that > 0 favours a."""

    a: object
    b: object
    diff: float
    p: float


def pair_tests(cells: dict, *, higher: bool = True, test: PairedTest = "ttest", step: float | None = None,
               examples=None) -> list[PairResult]:
    """A two-sided paired test of every pair of `cells` (key -> {seed: value}) with
    at least 2 seeds, on matched seeds. `examples(a, b, seeds)`, when given, returns
    the per-example difference table of two cells (or None) for the two-level test."""
    keys = [k for k, v in cells.items() if len(v) >= 2]
    sign = 1 if higher else -1
    out = []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            seeds, x, y = match_seeds(cells[a], cells[b])
            ex = examples(a, b, seeds) if examples is not None and len(seeds) >= 2 else None
            res = paired_test(x, y, test=test, step=step, examples=ex)
            out.append(PairResult(a, b, sign * res.mean_diff if len(x) else 0.0, res.p))
    return out


@dataclass(frozen=True)
class BestSet:
    """The cells a group cannot tell from its best: `best` has the best mean among the
    testable cells, `worse` those some other cell beats significantly, `untestable`
    those with fewer than 2 seeds."""

    best: object | None
    worse: set
    untestable: set


def best_of(cells: dict, pairs: list[PairResult], adjusted: Sequence[float], *, higher: bool = True,
            alpha: float = 0.05) -> BestSet:
    """The BestSet of `cells` from its pairs' multiplicity-adjusted p-values: a cell is
    worse when some other cell beats it with adjusted p < alpha."""
    keys = [k for k, v in cells.items() if len(v) >= 2]
    untestable = {k for k in cells if k not in keys}
    if not keys:
        return BestSet(None, set(), untestable)
    sign = 1 if higher else -1
    best = max(keys, key=lambda k: sign * float(np.mean(list(cells[k].values()))))
    worse = {(pr.b if pr.diff > 0 else pr.a) for pr, p in zip(pairs, adjusted) if p < alpha and pr.diff != 0}
    return BestSet(best, worse - {best}, untestable)


def best_set(cells: dict, *, higher: bool = True, alpha: float = 0.05, test: PairedTest = "ttest",
             step: float | None = None) -> BestSet:
    """Which of `cells` (key -> {seed: value}) are significantly worse than another,
    with Holm over this group's k(k-1)/2 pairs alone (the report instead puts every
    group of a table into one family: ftbench.report.core.Family).

    Every pair of testable cells gets a two-sided paired test on matched seeds, so the
    chance of calling any cell worse when it is not stays <= alpha whatever the true
    means (strong family-wise error control). Testing against the observed best alone,
    as picking it first and then comparing, does not control that error (about 8% at
    k = 6, n = 5 with alpha = 0.05).
    """
    pairs = pair_tests(cells, higher=higher, test=test, step=step)
    return best_of(cells, pairs, holm([pr.p for pr in pairs]), higher=higher, alpha=alpha)
