"""Statistics over seeds: summaries with intervals, paired tests, which cells can be
told from the best, effect sizes, equivalence and power, test-set uncertainty, ranks
across tasks, data efficiency, domain shift and forgetting.

Pure functions on numbers; nothing here knows a record. Distributions come from
scipy, never from hand-written formulas; TOST, power, Wilson and McNemar come from
statsmodels. Accuracies are percentages. Every method is chosen to stay honest at
the 3-5 seeds people run: see README's "How to read the report".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from scipy import optimize, stats

Interval = Literal["t", "percentile", "bca"]
PairedTest = Literal["ttest", "wilcoxon"]
INTERVALS: tuple[str, ...] = ("t", "percentile", "bca")
TESTS: tuple[str, ...] = ("ttest", "wilcoxon")
BOOTSTRAP_RESAMPLES = 4999
# A percentile bootstrap of the mean of normal seeds covers 76% at n = 3, 83% at n = 5 and
# 91% at n = 10 when it says 95% (simulated, 2000 samples each: it ignores the t
# distribution's extra width); below this n the t interval is used.
BOOTSTRAP_MIN_N = 10


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
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, not {interval!r}")
    if interval == "t" or n < BOOTSTRAP_MIN_N:
        half = stats.t.ppf((1 + confidence) / 2, n - 1) * std / math.sqrt(n)
        note = None if interval == "t" else f"{n} seeds: bootstrap under-covers below {BOOTSTRAP_MIN_N}, Student-t used"
        return Summary(n, mean, std, mean - half, mean + half, note)
    res = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES,
                          method="BCa" if interval == "bca" else "percentile",
                          rng=np.random.default_rng(seed))
    return Summary(n, mean, std, float(res.confidence_interval.low), float(res.confidence_interval.high))


def summarize_log(values: Sequence[float], *, confidence: float = 0.95) -> Summary:
    """Geometric mean of positive values (times, rates) with the Student-t interval of
    the mean log, mapped back: the interval is asymmetric and never below zero.

    >>> s = summarize_log([1.0, 4.0]); round(s.mean, 3)
    2.0
    """
    x = np.asarray(values, dtype=float)
    if len(x) and np.any(x <= 0):
        return summarize(x, confidence=confidence)  # a zero or negative time: no log scale
    s = summarize(np.log(x), confidence=confidence)
    return Summary(s.n, math.exp(s.mean) if s.n else math.nan, s.std, math.exp(s.low) if s.n > 1 else math.nan,
                   math.exp(s.high) if s.n > 1 else math.nan, s.note)


def interval_label(interval: Interval, confidence: float = 0.95) -> str:
    """How a table's footnote names the interval."""
    pct = f"{confidence * 100:g}%"
    if interval == "t":
        return f"mean ± {pct} CI half-width, Student-t over seeds"
    kind = "BCa" if interval == "bca" else "percentile"
    return (f"mean ± {pct} CI half-width, {kind} bootstrap over seeds ({BOOTSTRAP_RESAMPLES} resamples, seeded; "
            f"[low, high] where asymmetric); cells with fewer than {BOOTSTRAP_MIN_N} seeds use Student-t, "
            "as the bootstrap under-covers there")


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


def wilson(acc: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (%) of one run's accuracy `acc` (%) on `n` test examples:
    the test set's own sampling uncertainty (statsmodels' proportion_confint)."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(round(acc / 100 * n), n, alpha=1 - confidence, method="wilson")
    return float(low) * 100, float(high) * 100


def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact McNemar p of two runs' per-example correctness on one test set
    (statsmodels' mcnemar on the discordant pairs)."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    return float(mcnemar(table, exact=True).pvalue)


def welch_diff(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """mean(a) - mean(b) of independent samples with Welch's interval (scipy)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return diff, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-identical seeds: scipy warns of cancellation
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    return diff, float(ci.low), float(ci.high)


# ------------------------------------------------------------------ across tasks


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """Mean rank of each strategy (column) over tasks (rows); the highest score is
    rank 1 and ties share the average rank."""
    scores = np.asarray(scores, dtype=float)
    return stats.rankdata(-scores, axis=1).mean(axis=0)


@dataclass(frozen=True)
class Friedman:
    """The Friedman test over a tasks x strategies table, with Nemenyi's critical
    difference of average ranks; `note` says why the test was not run. `statistic`
    is Friedman's chi-square, `f` Iman and Davenport's F; `method` names where p
    comes from."""

    statistic: float
    p: float
    cd: float
    note: str | None = None
    f: float = math.nan
    method: str = ""


# Below this many tasks the chi-square (and F) approximations are poor: p is permuted.
FRIEDMAN_EXACT_TASKS = 10


def _friedman_chi2(scores: np.ndarray) -> np.ndarray:
    """Friedman's chi-square along the last two axes (tasks, strategies), no tie correction."""
    n, k = scores.shape[-2:]
    ranks = stats.rankdata(scores, axis=-1).sum(axis=-2)
    return 12 / (n * k * (k + 1)) * np.sum(ranks ** 2, axis=-1) - 3 * n * (k + 1)


def friedman(scores: np.ndarray, alpha: float = 0.05, *, seed: int = 0) -> Friedman:
    """Friedman's test that all strategies (columns) rank alike over tasks (rows), and
    the Nemenyi critical difference at `alpha` (Demsar 2006).

    p: with fewer than FRIEDMAN_EXACT_TASKS tasks, a permutation test that shuffles the
    strategies within each task (scipy's permutation_test, exact when small enough),
    because the chi-square approximation is badly conservative there; otherwise Iman
    and Davenport's F, which Demsar recommends over the chi-square.
    """
    scores = np.asarray(scores, dtype=float)
    n_tasks, k = np.shape(scores)
    if k < 3 or n_tasks < 2:
        return Friedman(math.nan, math.nan, math.nan,
                        f"Friedman test needs >= 3 strategies and >= 2 tasks (have {k} and {n_tasks})")
    chi2 = float(stats.friedmanchisquare(*scores.T).statistic)
    denom = n_tasks * (k - 1) - chi2
    f = (n_tasks - 1) * chi2 / denom if denom > 0 else math.inf
    if n_tasks < FRIEDMAN_EXACT_TASKS:
        # permutation_type="samples" permutes each task's values across the strategies.
        res = stats.permutation_test(tuple(scores.T), lambda *cols, axis: _friedman_chi2(np.stack(cols, -1)),
                                     permutation_type="samples", alternative="greater", n_resamples=9999,
                                     vectorized=True, rng=np.random.default_rng(seed))
        p = float(res.pvalue)
        exact = math.factorial(k) ** n_tasks <= 9999
        method = "exact permutation" if exact else "permutation, 9999 resamples, seeded"
    else:
        p = float(stats.f.sf(f, k - 1, (k - 1) * (n_tasks - 1))) if math.isfinite(f) else 0.0
        method = "Iman-Davenport F"
    return Friedman(chi2, p, nemenyi_cd(k, n_tasks, alpha), None, f, method)


def nemenyi_cd(k: int, n_tasks: int, alpha: float = 0.05) -> float:
    """Critical difference of average ranks: q_alpha * sqrt(k(k+1) / (6N)), with q_alpha
    the studentized range quantile over sqrt(2) (2.569 for k=4, alpha=0.05)."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n_tasks)))


def iqm(values: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """Interquartile mean: the mean of the middle 50%. With `weights`, of the middle
    50% of the weighted distribution (a value straddling a quartile counts in part)."""
    x = np.asarray(values, dtype=float)
    if weights is None:
        return float(stats.trim_mean(x, 0.25))
    return float(_weighted_iqm(x[None], np.asarray(weights, dtype=float))[0])


def _weighted_iqm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted IQM of each row of x, weights w (shared by the rows, any scale)."""
    order = np.argsort(x, axis=-1, kind="stable")
    xs, ws = np.take_along_axis(x, order, -1), w[order] / w.sum()
    hi = np.cumsum(ws, axis=-1)
    lo = hi - ws
    inside = np.clip(np.minimum(hi, 0.75) - np.maximum(lo, 0.25), 0, None)  # mass within [q1, q3]
    return np.sum(inside * xs, axis=-1) / 0.5


def _resample(tasks: list[np.ndarray], rng: np.random.Generator, reps: int) -> list[np.ndarray]:
    """Per task, `reps` resamples of its seeds with replacement: (reps, n_task) each."""
    return [t[rng.integers(0, len(t), size=(reps, len(t)))] for t in tasks]


def iqm_interval(tasks: list[Sequence[float]], *, confidence: float = 0.95, reps: int = 2000,
                 seed: int = 0) -> tuple[float, float, float]:
    """IQM of all runs pooled over tasks, each task weighing the same whatever its
    seed count (a run weighs 1 / its task's seeds), and its stratified bootstrap
    percentile interval (seeds resampled within each task; Agarwal et al. 2021). With
    one seed in every task there is nothing to resample: the interval is nan."""
    arrays = [np.asarray(t, dtype=float) for t in tasks]
    w = np.concatenate([np.full(len(a), 1 / len(a)) for a in arrays])
    point = float(_weighted_iqm(np.concatenate(arrays)[None], w)[0])
    if all(len(a) < 2 for a in arrays):
        return point, math.nan, math.nan
    boot = _weighted_iqm(np.concatenate(_resample(arrays, np.random.default_rng(seed), reps), axis=1), w)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return point, float(low), float(high)


def normalize_tasks(tasks: dict[object, dict[object, Sequence[float]]]) -> dict[object, dict[object, np.ndarray]]:
    """Per task, scores min-max normalised over every run of every strategy of that
    task to [0, 100] (0 = the task's worst run, 100 = its best), so tasks of different
    difficulty weigh alike. `tasks` is task -> strategy -> values."""
    out = {}
    for task, by_strategy in tasks.items():
        every = np.concatenate([np.asarray(v, dtype=float) for v in by_strategy.values()])
        lo, span = every.min(), np.ptp(every)
        out[task] = {s: (np.asarray(v, dtype=float) - lo) / span * 100 if span > 0 else np.full(len(v), 50.0)
                     for s, v in by_strategy.items()}
    return out


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

    if all(len(x) < 2 and len(y) < 2 for x, y in zip(xs, ys)):
        return float(mean_u(xs, ys)), math.nan, math.nan  # one seed each: nothing to resample
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


def _logit(acc: np.ndarray | float) -> np.ndarray:
    """logit of an accuracy in %, clipped to [0.1, 99.9] so 0 and 100 stay finite."""
    p = np.clip(np.asarray(acc, dtype=float) / 100, 0.001, 0.999)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class LinearFit:
    """logit(shifted) ≈ slope * logit(test) + intercept over reference runs
    (Taori et al. 2020 fit in logit space: the trend is linear there)."""

    slope: float
    intercept: float
    r: float

    def predict(self, test_acc: np.ndarray | float) -> np.ndarray | float:
        """The shifted accuracy (%) the line predicts from test accuracy (%)."""
        return 100 / (1 + np.exp(-(self.slope * _logit(test_acc) + self.intercept)))


def robustness_fit(test_acc: Sequence[float], shifted_acc: Sequence[float]) -> LinearFit | None:
    """Least-squares line of logit(shifted) vs logit(test); None when fewer than two
    distinct test accuracies leave the line undefined."""
    x = np.asarray(test_acc, dtype=float)
    if len(np.unique(x)) < 2:
        return None
    res = stats.linregress(_logit(x), _logit(np.asarray(shifted_acc, dtype=float)))
    return LinearFit(float(res.slope), float(res.intercept), float(res.rvalue))


def effective_robustness(test_acc: Sequence[float], shifted_acc: Sequence[float], fit: LinearFit) -> np.ndarray:
    """Shifted accuracy (points) above what the fit predicts from test accuracy."""
    return np.asarray(shifted_acc, dtype=float) - fit.predict(np.asarray(test_acc, dtype=float))


def forgetting(before: float, after: float) -> tuple[float, float]:
    """(drop in points, retention in % of before) of source-task accuracy."""
    return before - after, (after / before * 100 if before else math.nan)
