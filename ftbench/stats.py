"""Statistics over seeds: summaries with intervals, paired tests, ranks across tasks,
data efficiency, domain shift and forgetting.

Pure functions on numbers; nothing here knows a record. Distributions come from
scipy, never from hand-written formulas. Accuracies are percentages.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from scipy import stats

Interval = Literal["t", "percentile", "bca"]
PairedTest = Literal["ttest", "wilcoxon"]
INTERVALS: tuple[str, ...] = ("t", "percentile", "bca")
TESTS: tuple[str, ...] = ("ttest", "wilcoxon")
BOOTSTRAP_RESAMPLES = 4999


@dataclass(frozen=True)
class Summary:
    """Mean of one cell's seeds with its interval; `note` says why the interval is nan."""

    n: int
    mean: float
    std: float
    low: float
    high: float
    note: str | None = None

    @property
    def half_width(self) -> float:
        """Half the interval's width (the "± x" of a table)."""
        return (self.high - self.low) / 2


def summarize(values: Sequence[float], *, interval: Interval = "t", confidence: float = 0.95,
              seed: int = 0) -> Summary:
    """n, mean, std (ddof=1) and a `confidence` interval of the mean.

    `interval` is "t" (Student-t over seeds) or a seeded bootstrap ("percentile", "bca").
    >>> s = summarize([1.0, 2.0, 3.0]); round(s.low, 3), round(s.high, 3)
    (-0.484, 4.484)
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, "no runs")
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan, "one seed: no interval")
    std = float(x.std(ddof=1))
    if std == 0.0:
        return Summary(n, mean, 0.0, mean, mean)  # every seed agrees: the interval is a point
    if interval == "t":
        half = stats.t.ppf((1 + confidence) / 2, n - 1) * std / math.sqrt(n)
        return Summary(n, mean, std, mean - half, mean + half)
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, not {interval!r}")
    res = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES,
                          method="BCa" if interval == "bca" else "percentile",
                          rng=np.random.default_rng(seed))
    return Summary(n, mean, std, float(res.confidence_interval.low), float(res.confidence_interval.high))


def interval_label(interval: Interval, confidence: float = 0.95) -> str:
    """How a table's footnote names the interval."""
    pct = f"{confidence * 100:g}%"
    if interval == "t":
        return f"mean ± {pct} CI half-width, Student-t over seeds"
    kind = "BCa" if interval == "bca" else "percentile"
    return f"mean ± {pct} CI half-width, {kind} bootstrap over seeds ({BOOTSTRAP_RESAMPLES} resamples, seeded)"


# ------------------------------------------------------------------ paired tests


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
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # constant differences: scipy warns, answers p=0
        if test == "ttest":
            p = float(stats.ttest_rel(a, b).pvalue)
        elif test == "wilcoxon":
            p = float(stats.wilcoxon(a, b).pvalue)
        else:
            raise ValueError(f"test must be one of {TESTS}, not {test!r}")
    d_z = s.mean / s.std if s.std > 0 else math.copysign(math.inf, s.mean)
    return Paired(n, s.mean, s.low, s.high, p, d_z)


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


# ------------------------------------------------------------------ across tasks


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """Mean rank of each strategy (column) over tasks (rows); the highest score is
    rank 1 and ties share the average rank."""
    scores = np.asarray(scores, dtype=float)
    return stats.rankdata(-scores, axis=1).mean(axis=0)


@dataclass(frozen=True)
class Friedman:
    """The Friedman test over a tasks x strategies table, with Nemenyi's critical
    difference of average ranks; `note` says why the test was not run."""

    statistic: float
    p: float
    cd: float
    note: str | None = None


def friedman(scores: np.ndarray, alpha: float = 0.05) -> Friedman:
    """Friedman's test that all strategies (columns) rank alike over tasks (rows), and
    the Nemenyi critical difference at `alpha` (Demsar 2006)."""
    n_tasks, k = np.shape(scores)
    if k < 3 or n_tasks < 2:
        return Friedman(math.nan, math.nan, math.nan,
                        f"Friedman test needs >= 3 strategies and >= 2 tasks (have {k} and {n_tasks})")
    res = stats.friedmanchisquare(*np.asarray(scores, dtype=float).T)
    return Friedman(float(res.statistic), float(res.pvalue), nemenyi_cd(k, n_tasks, alpha))


def nemenyi_cd(k: int, n_tasks: int, alpha: float = 0.05) -> float:
    """Critical difference of average ranks: q_alpha * sqrt(k(k+1) / (6N)), with q_alpha
    the studentized range quantile over sqrt(2) (2.569 for k=4, alpha=0.05)."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n_tasks)))


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50%."""
    return float(stats.trim_mean(np.asarray(values, dtype=float), 0.25))


def _resample(tasks: list[np.ndarray], rng: np.random.Generator, reps: int) -> list[np.ndarray]:
    """Per task, `reps` resamples of its seeds with replacement: (reps, n_task) each."""
    return [t[rng.integers(0, len(t), size=(reps, len(t)))] for t in tasks]


def iqm_interval(tasks: list[Sequence[float]], *, confidence: float = 0.95, reps: int = 2000,
                 seed: int = 0) -> tuple[float, float, float]:
    """IQM of all runs pooled over tasks, and its stratified bootstrap percentile
    interval (seeds resampled within each task; Agarwal et al. 2021)."""
    arrays = [np.asarray(t, dtype=float) for t in tasks]
    point = iqm(np.concatenate(arrays))
    boot = stats.trim_mean(np.concatenate(_resample(arrays, np.random.default_rng(seed), reps), axis=1),
                           0.25, axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return point, float(low), float(high)


def probability_of_improvement(x_tasks: list[Sequence[float]], y_tasks: list[Sequence[float]], *,
                               confidence: float = 0.95, reps: int = 2000,
                               seed: int = 0) -> tuple[float, float, float]:
    """P(X > Y): per task the Mann-Whitney U of x over y divided by n*m (ties count
    1/2), averaged over tasks; with a stratified bootstrap percentile interval."""
    xs = [np.asarray(t, dtype=float) for t in x_tasks]
    ys = [np.asarray(t, dtype=float) for t in y_tasks]

    def mean_u(xa: list[np.ndarray], ya: list[np.ndarray]) -> np.ndarray:
        return np.mean([stats.mannwhitneyu(x, y, axis=-1, method="asymptotic").statistic
                        / (x.shape[-1] * y.shape[-1]) for x, y in zip(xa, ya)], axis=0)

    rng = np.random.default_rng(seed)
    boot = mean_u(_resample(xs, rng, reps), _resample(ys, rng, reps))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return float(mean_u(xs, ys)), float(low), float(high)


# ------------------------------------------------------------------ the other axes


def data_auc(n_train: Sequence[float], acc: Sequence[float]) -> float:
    """Area under accuracy vs log(n_train), the data axis normalised to [0, 1]: the
    mean accuracy over log-spaced data amounts (nan with fewer than 2 amounts)."""
    x = np.log(np.asarray(n_train, dtype=float))
    y = np.asarray(acc, dtype=float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    if len(x) < 2 or x[-1] == x[0]:
        return math.nan
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def smallest_matching(n_train: Sequence[float], acc: Sequence[float], target: float) -> float | None:
    """The smallest data amount whose accuracy is >= `target`; None if none is."""
    hits = [n for n, a in zip(n_train, acc) if a >= target]
    return min(hits) if hits else None


@dataclass(frozen=True)
class LinearFit:
    """shifted ≈ slope * test + intercept over the runs of one dataset."""

    slope: float
    intercept: float
    r: float

    def predict(self, test_acc: np.ndarray | float) -> np.ndarray | float:
        return self.slope * np.asarray(test_acc) + self.intercept


def robustness_fit(test_acc: Sequence[float], shifted_acc: Sequence[float]) -> LinearFit | None:
    """Least-squares line of shifted vs in-distribution accuracy; None when fewer
    than two distinct test accuracies leave the line undefined."""
    x = np.asarray(test_acc, dtype=float)
    if len(np.unique(x)) < 2:
        return None
    res = stats.linregress(x, np.asarray(shifted_acc, dtype=float))
    return LinearFit(float(res.slope), float(res.intercept), float(res.rvalue))


def effective_robustness(test_acc: Sequence[float], shifted_acc: Sequence[float], fit: LinearFit) -> np.ndarray:
    """Shifted accuracy above what the fit predicts from in-distribution accuracy."""
    return np.asarray(shifted_acc, dtype=float) - fit.predict(np.asarray(test_acc, dtype=float))


def forgetting(before: float, after: float) -> tuple[float, float]:
    """(drop in points, retention in % of before) of source-task accuracy."""
    return before - after, (after / before * 100 if before else math.nan)
