"""Strategies across tasks: average ranks, Friedman with Nemenyi's critical
difference, the IQM of chance-normalised scores and the probability of improvement."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats


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
    if np.all(np.ptp(scores, axis=1) == 0):
        return Friedman(math.nan, math.nan, nemenyi_cd(k, n_tasks, alpha),
                        "Friedman test: every task ties all strategies, nothing to rank")
    with np.errstate(all="ignore"):
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
    one seed in every task there is nothing to resample: the interval is nan.

    Not rliable's aggregate_iqm: that is scipy's trim_mean of a runs x tasks matrix,
    which drops whole values; here a value straddling a quartile counts in part, so
    the two agree when runs x tasks is a multiple of 4 and every task has the same
    seeds."""
    arrays = [np.asarray(t, dtype=float) for t in tasks]
    w = np.concatenate([np.full(len(a), 1 / len(a)) for a in arrays])
    point = float(_weighted_iqm(np.concatenate(arrays)[None], w)[0])
    if all(len(a) < 2 for a in arrays):
        return point, math.nan, math.nan
    boot = _weighted_iqm(np.concatenate(_resample(arrays, np.random.default_rng(seed), reps), axis=1), w)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return point, float(low), float(high)


def chance_normalize(values: Sequence[float], chance: float) -> np.ndarray:
    """Accuracies (%) rescaled to fixed reference scores: chance (100 / classes) is 0
    and a perfect score 100, so a task's normalised scores do not depend on which
    strategies ran or on any estimate (Agarwal et al. 2021 normalise to fixed
    reference scores too). Below chance is negative.

    >>> chance_normalize([55.0, 100.0], 10.0).tolist()
    [50.0, 100.0]
    """
    x = np.asarray(values, dtype=float)
    return (x - chance) / (100.0 - chance) * 100 if chance < 100 else np.full(len(x), math.nan)


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
