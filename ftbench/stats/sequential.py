"""Adaptive seeds: group-sequential paired tests that stop a comparison once it is
decided, and a sequential interval for the speed gate.

Method. A comparison of a strategy with the baseline is looked at after n_1 < n_2 <
... < n_K matched seeds (`look_schedule`: min, min + step, ..., max). At look k the
paired differences (on the test set's grid, `paired.on_grid`) give Student's t with
n_k - 1 df, for two null hypotheses: D, "no difference" (two-sided), and E, "|Δ| >=
margin" (the two one-sided tests of TOST, Schuirmann 1987). Each is tested against a
boundary that spends its level α over the looks with a Lan-DeMets error-spending
function of the information fraction t_k = n_k / n_K (Lan & DeMets 1983):
O'Brien-Fleming-type α(t) = 2 - 2Φ(z_{1-α/2} / √t), or Pocock-type α ln(1 + (e - 1)t).
The boundary c_k is set so that the chance, under the null, of first crossing at
look k is α(t_k) - α(t_{k-1}) (Jennison & Turnbull 2000, ch. 7; for E, ch. 6).

Small n. For a known variance the z statistics at the looks are jointly normal with
corr(Z_j, Z_k) = √(n_j / n_k), and `normal_bounds` solves the recursion with scipy's
multivariate normal (Genz's algorithm). With 3-10 seeds the variance is estimated, and
the usual shortcut, testing each look's t at the nominal level of the normal design
(Jennison & Turnbull's significance-level approach), exceeds α: a 5% design at looks
3, 5, 7, 9, 10 rejects 5.5% (O'Brien-Fleming) and 5.6% (Pocock) of the time
(tests/test_sequential.py measures it). The exact joint law of sequential t statistics
(Jennison & Turnbull 1991) has no scipy routine, so `t_design` runs the same spending
recursion on that law by simulation: 2^19 null paths drawn from the exact sufficient
statistics (each group's sum is normal, its within-group sum of squares chi-square)
with numpy's legacy RandomState, whose stream is frozen, so the boundaries are the same
on every machine and version. Their size is α up to that simulation's error (se
0.0003 at α = 0.05; measured 5.0% and 5.2% ± 0.15%), and they tend to
`normal_bounds` as n grows (tested).

Multiplicity. The comparisons of one family (the strategies of one task against its
baseline, or a study's primary comparisons) are tested with a group-sequential Holm
procedure (Maurer & Bretz 2013; Ye et al. 2013): at each look, every hypothesis not yet
rejected is tested against the boundary of a design at level α / c, where c is the
number of comparisons that still have an unrejected hypothesis, and c is recounted
after each rejection within the look. D and E of one comparison draw on one share of
α: with a margin > 0 they cannot both be true, so the closed test (Marcus et al. 1976) never needs both in
one intersection (Shaffer 1986's logical restrictions); this is uniformly more powerful
than Holm over all 2m hypotheses and keeps the same guarantee.

Guarantee. The chance of any false verdict in the family, a difference where Δ = 0 or
an equivalence where |Δ| >= margin, is at most α (strong family-wise control),
whatever the true Δs and however the comparisons are correlated (they share the
baseline's seeds), provided that:
- each comparison's differences are independent across seeds and normal with a common
  variance (seeds are replicates; a cell's seed effect cancels in the difference);
- the look schedule is fixed before the runs and does not depend on the data (a failed
  run, which lowers one comparison's n at a look, is tested at that look's nominal level:
  the t test's own df absorbs the lost pair, and the spending is approximate there);
- a decided comparison stops: it is never tested again on more seeds. Stopping early,
  whether for a decision or at max, only removes chances to reject (non-binding), so
  no futility boundary and no β-spending is used or needed; "equivalent" is a verdict
  spent from α, not a futility stop.
Futility (optional, `decide(futility=...)`): a comparison still undecided before the
last look stops there, undecided, when its predictive power, the chance of either
verdict at the last look given its seeds so far (`predictive_power`), is below the
threshold. Stopping only removes chances to reject, so the guarantee above stands; its
cost is power, and it rests on a spread estimated from few seeds
(tests/test_sequential.py measures both).
An earlier look is not re-tested when a later rejection raises the level (Maurer &
Bretz allow it; leaving it out is conservative). Differences with no variance on the
grid use the exact sign-flip p (2/2^n two-sided, 1/2^n per one-sided test), as
`paired.paired_test` does.

Reading the result. A fixed-n p or interval computed at the look where a comparison
stopped is biased by the stopping (Jennison & Turnbull 2000, ch. 8): in simulation a
fixed-n 95% t interval read there covered 93.9%. `repeated_interval` gives the
interval that holds at every look at once (95.2% measured), so it is the one to print.

Speed. `speed_interval` applies the same design to repeated timing measurements,
two-sample: each repetition gives y = log(run samples/s / a calibration loop's, timed
beside it), for the current code at the looks and for a baseline fixed beforehand.
The interval of mean(y current) - mean(y baseline) uses the Welch standard error, and
at look k the Welch-df t quantile of the one-sided design's nominal level (the
"nominal p" form of the boundaries; Jennison & Turnbull 2000, ch. 3). The baseline's
mean is shared by every look, so the looks' statistics are more correlated than the
design's, which makes the boundaries conservative.

References: Holm (1979) Scand. J. Stat. 6:65-70; Lan & DeMets (1983) Biometrika
70:659-663; Marcus, Peritz & Gabriel (1976) Biometrika 63:655-660; Shaffer (1986) JASA
81:826-831; Schuirmann (1987) J. Pharmacokinet. Biopharm. 15:657-680; Jennison &
Turnbull (1991) Biometrika 78:133-141, and (2000) Group Sequential Methods with
Applications to Clinical Trials, Chapman & Hall; Maurer & Bretz (2013) Stat. Biopharm.
Res. 5:311-320; Spiegelhalter, Freedman & Blackburn (1986) Control. Clin. Trials
7:8-17; Ye, Li, Liu & Yao (2013) Stat. Med. 32:1112-1124.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from scipy import optimize, stats

from ftbench.stats.paired import on_grid

Spending = Literal["obrien-fleming", "pocock"]
SPENDINGS: tuple[str, ...] = ("obrien-fleming", "pocock")
Verdict = Literal["different", "equivalent", "undecided"]
SpeedVerdict = Literal["slower", "not slower", "undecided"]
NULL_PATHS = 2 ** 19  # Monte Carlo paths per design: a 5% size to within ±0.0003 (1 se)
_PATH_SEED = 20240527  # fixed: the boundaries are part of the method, the same everywhere


def spent(kind: Spending, alpha: float, t: Sequence[float] | np.ndarray) -> np.ndarray:
    """The Lan-DeMets spending function: the error spent by information fraction t.

    >>> spent("pocock", 0.05, [1.0]).round(3).tolist()
    [0.05]
    """
    t = np.asarray(t, dtype=float)
    if kind == "obrien-fleming":
        with np.errstate(divide="ignore"):
            return 2 - 2 * stats.norm.cdf(stats.norm.isf(alpha / 2) / np.sqrt(t))
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    raise ValueError(f"spending must be one of {SPENDINGS}, not {kind!r}")


def look_schedule(min_n: int, max_n: int, step: int) -> tuple[int, ...]:
    """The seeds (or repetitions) at each look: min, min + step, ..., and max.

    >>> look_schedule(3, 10, 2)
    (3, 5, 7, 9, 10)
    """
    if not 2 <= min_n <= max_n or step < 1:
        raise ValueError(f"looks need 2 <= min <= max and step >= 1, not min {min_n}, max {max_n}, step {step}")
    looks = list(range(min_n, max_n + 1, step))
    return tuple(looks if looks[-1] == max_n else [*looks, max_n])


def look_index(looks: Sequence[int], n: int) -> int:
    """The look whose boundary judges n observations: the last look of at most n (a
    count between two looks, after a failed run, gets the earlier, wider one; below the
    first look, the first).

    >>> look_index((3, 5, 7), 6)
    1
    """
    return max([i for i, size in enumerate(looks) if size <= n] or [0])


def normal_bounds(looks: Sequence[int], alpha: float, kind: Spending = "obrien-fleming",
                  sides: int = 2) -> np.ndarray:
    """Boundaries on the z scale for a known variance (the classical design): c_k with
    P(no crossing before k, crossing at k) = α(t_k) - α(t_{k-1}) for jointly normal
    Z_k with corr √(n_j / n_k), from scipy's multivariate normal (Jennison & Turnbull
    2000, ch. 7 and 19). `sides` = 2 bounds |Z|, 1 bounds Z from above."""
    n = np.asarray(looks, dtype=float)
    cov = np.sqrt(np.minimum.outer(n, n) / np.maximum.outer(n, n))
    target = spent(kind, alpha, n / n[-1])
    bounds: list[float] = []
    for k in range(len(n)):
        bounds.append(float(optimize.brentq(lambda c: 1 - _stay([*bounds, c], cov, sides) - target[k], 0.0, 40.0,
                                            xtol=1e-6)))
    return np.array(bounds)


def _stay(bounds: list[float], cov: np.ndarray, sides: int) -> float:
    """P(no crossing at the first len(bounds) looks) for jointly normal z statistics."""
    k = len(bounds)
    upper = np.array(bounds)
    lower = -upper if sides == 2 else np.full(k, -np.inf)
    if k == 1:
        return float(stats.norm.cdf(upper[0]) - stats.norm.cdf(lower[0]))
    return float(stats.multivariate_normal.cdf(upper, np.zeros(k), cov[:k, :k], lower_limit=lower, abseps=1e-5,
                                               releps=1e-5, rng=np.random.default_rng(0)))


@functools.lru_cache(maxsize=4)
def _null_t_paths(looks: tuple[int, ...]) -> np.ndarray:
    """NULL_PATHS draws of (T_1, ..., T_K), the paired t statistics at the looks under
    Δ = 0, float32 (paths x looks). Each group of g new seeds adds a normal sum
    (variance g) and an independent chi-square(g - 1) within-group sum of squares:
    the exact law of the sufficient statistics, at a cost that does not grow with n."""
    rng = np.random.RandomState(_PATH_SEED)
    paths = np.empty((NULL_PATHS, len(looks)), dtype=np.float32)
    total, squares, before = np.zeros(NULL_PATHS), np.zeros(NULL_PATHS), 0
    for k, n in enumerate(looks):
        g = n - before  # the seeds this look adds
        group_sum = rng.standard_normal(NULL_PATHS) * math.sqrt(g)
        total += group_sum
        squares += group_sum ** 2 / g + (rng.chisquare(g - 1, NULL_PATHS) if g > 1 else 0.0)  # sum of x^2 so far
        var = (squares - total ** 2 / n) / (n - 1)
        paths[:, k] = total / np.sqrt(n * var)
        before = n
    return paths


@dataclass(frozen=True)
class SequentialDesign:
    """Boundaries of a group-sequential paired t test at each look: reject at look k
    when |T_k| (sides = 2) or T_k (sides = 1) >= critical[k], T_k with n_k - 1 df."""

    looks: tuple[int, ...]
    alpha: float
    kind: Spending
    sides: int
    critical: tuple[float, ...]

    @property
    def nominal(self) -> tuple[float, ...]:
        """Each look's nominal level: the p a t test at that look must reach."""
        return tuple(float(self.sides * stats.t.sf(c, n - 1)) for c, n in zip(self.critical, self.looks))


@functools.lru_cache(maxsize=256)
def t_design(looks: tuple[int, ...], alpha: float, kind: Spending = "obrien-fleming",
             sides: int = 2) -> SequentialDesign:
    """The spending design for Student's t at `looks` (seeds per look), total level
    `alpha`: the first boundary is the exact t quantile; each later one is the
    quantile of the simulated null paths that have not crossed yet, so that exactly
    α(t_k) - α(t_{k-1}) of all paths first cross there (module docstring).

    >>> d = t_design((3, 5, 7, 9, 10), 0.05); [round(p, 4) for p in d.nominal][:2]
    [0.0003, 0.0052]
    """
    if not 0 < alpha < 1 or sides not in (1, 2) or len(looks) < 1 or looks[0] < 2:
        raise ValueError(f"a design needs 0 < alpha < 1, sides 1 or 2 and looks of 2+ seeds, not "
                         f"alpha {alpha}, sides {sides}, looks {looks}")
    n = np.asarray(looks, dtype=float)
    step = np.diff(spent(kind, alpha, n / n[-1]), prepend=0.0)
    paths = _null_t_paths(tuple(looks))
    value = np.abs(paths) if sides == 2 else paths
    alive = np.ones(len(paths), dtype=bool)
    critical = []
    for k, n_k in enumerate(looks):
        if k == 0:
            c = float(stats.t.isf(step[0] / sides, n_k - 1))
        else:
            left = value[alive, k]
            share = step[k] * len(paths) / max(len(left), 1)
            c = float(np.quantile(left, 1 - share)) if 0 < share < 1 else (math.inf if share <= 0 else 0.0)
        critical.append(c)
        alive &= value[:, k] < c
    return SequentialDesign(tuple(looks), alpha, kind, sides, tuple(critical))


def _levels(looks: tuple[int, ...], k: int, alpha: float, kind: Spending, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Nominal levels at look k of the designs at α / c for c = 0..m (index c; c = 0
    unused): two-sided for the difference, one-sided for each test of TOST."""
    diff = [math.nan] + [t_design(looks, alpha / c, kind, 2).nominal[k] for c in range(1, m + 1)]
    equiv = [math.nan] + [t_design(looks, alpha / c, kind, 1).nominal[k] for c in range(1, m + 1)]
    return np.array(diff), np.array(equiv)


def paired_p(diffs: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """The p of the paired t test that Δ = 0 and of TOST that |Δ| >= margin, over the
    last axis of `diffs` (nan = no pair), vectorised. Differences with no variance get
    the exact sign-flip p; fewer than 2 pairs give nan (never significant)."""
    n = np.sum(~np.isnan(diffs), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan rows: fewer than 2 pairs, p = nan below
        mean = np.nanmean(diffs, axis=-1)
        se = np.nanstd(diffs, axis=-1, ddof=1) / np.sqrt(n)
        flat = (np.nanmax(diffs, axis=-1) - np.nanmin(diffs, axis=-1)) == 0
        df = np.maximum(n - 1, 1)
        p_diff = 2 * stats.t.sf(np.abs(mean) / se, df)
        p_equiv = np.maximum(stats.t.sf((mean + margin) / se, df), stats.t.cdf((mean - margin) / se, df))
    p_diff = np.where(flat, np.where(mean == 0, 1.0, np.minimum(1.0, 2.0 ** (1 - n))), p_diff)
    p_equiv = np.where(flat, np.where(np.abs(mean) < margin, 2.0 ** -n, 1.0), p_equiv)
    few = n < 2
    return np.where(few, np.nan, p_diff), np.where(few, np.nan, p_equiv)


def sequential_holm(p_diff: np.ndarray, p_equiv: np.ndarray, different: np.ndarray, equivalent: np.ndarray,
                    looks: tuple[int, ...], k: int, *, alpha: float = 0.05, kind: Spending = "obrien-fleming",
                    stopped: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One look of the group-sequential Holm procedure over the last axis (the
    family's m comparisons; leading axes are independent families, for simulation).

    `different` / `equivalent` say which hypotheses earlier looks rejected; a
    comparison with either is decided and is not tested again. Each undecided one is
    tested against the look-k boundary of the design at α / c, c the comparisons with
    a hypothesis still unrejected, recounted after each round of rejections. Returns
    the updated (different, equivalent) and each comparison's c: the one in force
    when it was decided at this look, else at the look's end. `stopped` marks
    undecided comparisons an earlier look stopped for futility: not tested again, but
    still counted in c (their hypotheses stay unrejected)."""
    m = p_diff.shape[-1]
    level_diff, level_equiv = _levels(tuple(looks), k, alpha, kind, m)
    different, equivalent = different.copy(), equivalent.copy()
    open_ = ~(different | equivalent)  # tested at this look: undecided before it
    if stopped is not None:
        open_ &= ~stopped
    share = np.zeros(p_diff.shape, dtype=int)
    while True:
        c = np.sum(~(different & equivalent), axis=-1, keepdims=True)
        new_diff = open_ & ~different & (p_diff <= level_diff[c])
        new_equiv = open_ & ~equivalent & (p_equiv <= level_equiv[c])
        new = new_diff | new_equiv
        if not new.any():
            return different, equivalent, np.where(share > 0, share, np.broadcast_to(c, share.shape))
        share = np.where(new & (share == 0), np.broadcast_to(c, share.shape), share)
        different |= new_diff
        equivalent |= new_equiv


def predictive_power(diffs: np.ndarray, looks: tuple[int, ...], *, margin: float = 1.0, alpha: float = 0.05,
                      kind: Spending = "obrien-fleming") -> np.ndarray:
    """The predictive power of a comparison: the chance that it reaches either verdict
    at the last look, given the n pairs so far (the non-nan values of the last axis of
    `diffs`), vectorised. Predictive rather than conditional on the current trend: it
    averages over what the true Δ may be given the pairs (Spiegelhalter, Freedman &
    Blackburn 1986; Jennison & Turnbull 2000, ch. 10). Conditional on the current
    trend instead, futility 0.1 cost 3.4 points of power at a planted 3-point effect
    (sd 2, looks 3, 5, ..., 10) in a simulation; this costs none measurable
    (tests/test_sequential.py).

    With d and s the mean and sd of the n differences and N = looks[-1], the last
    look's mean is d + s √((N - n) / (N n)) · T, T Student's t with n - 1 df (a flat
    prior on Δ; the spread taken as s), and its standard error s/√N. "Different" needs
    |mean| >= a = c_D s/√N, "equivalent" |mean| <= b = margin - c_E s/√N, c_D and c_E
    the last boundaries of the designs at the full `alpha` (two-sided, and one-sided
    for TOST): the most lenient a comparison can meet, since Holm's divisor is at
    least 1. So the power is 1 - P(b < |mean| < a), and 1 when b >= a. No spread
    (s = 0), fewer than 2 pairs, or n = N give nan: no estimate, never futile."""
    y = np.asarray(diffs, dtype=float)
    n_max = looks[-1]
    c_d = t_design(tuple(looks), alpha, kind, 2).critical[-1]
    c_e = t_design(tuple(looks), alpha, kind, 1).critical[-1]
    n = np.sum(~np.isnan(y), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        d = np.nanmean(y, axis=-1)
        sd = np.nanstd(y, axis=-1, ddof=1)
        se = sd / math.sqrt(n_max)
        spread = sd * np.sqrt(np.maximum(n_max - n, 0) / (n_max * n))
        a, b = c_d * se, np.maximum(margin - c_e * se, 0.0)
        df = np.maximum(n - 1, 1)
        cdf = lambda x: stats.t.cdf(x, df)  # noqa: E731
        between = (cdf((a - d) / spread) - cdf((b - d) / spread)) + (cdf((-b - d) / spread) - cdf((-a - d) / spread))
        power = np.where(b >= a, 1.0, 1.0 - between)
    return np.where((n < 2) | ~(sd > 0) | ~(spread > 0), np.nan, power)


@dataclass(frozen=True)
class ComparisonState:
    """Where one comparison stands after a look. `n`, the p-values and the levels are
    those of the look it was last tested at (the look that decided it, if decided):
    p_diff <= level_diff means "different", p_equiv <= level_equiv "equivalent"."""

    verdict: Verdict
    n: int
    mean: float
    p_diff: float
    p_equiv: float
    level_diff: float
    level_equiv: float
    share: int  # the Holm divisor c: the design's level was alpha / share
    different: bool
    equivalent: bool
    power: float | None = None  # predictive power at this look, when futility is asked for (undecided only)
    futile: bool = False  # stopped undecided before max: power below the futility threshold


@dataclass(frozen=True)
class SequentialLook:
    """The state of a family after look `k` (0-based) of `looks`."""

    k: int
    looks: tuple[int, ...]
    comparisons: tuple[ComparisonState, ...]

    @property
    def last(self) -> bool:
        return self.k == len(self.looks) - 1

    @property
    def more_seeds(self) -> tuple[bool, ...]:
        """Per comparison: whether its cells need the next look's seeds."""
        return tuple(c.verdict == "undecided" and not c.futile and not self.last for c in self.comparisons)


def decide(diffs: Sequence[Sequence[float]], k: int, looks: Sequence[int], *, margin: float = 1.0,
           alpha: float = 0.05, kind: Spending = "obrien-fleming", step: float | None = None,
           previous: SequentialLook | None = None, futility: float | None = None) -> SequentialLook:
    """Look `k` of a family of paired comparisons: `diffs[i]` are comparison i's
    differences (strategy - baseline, points) on the seeds both have so far, in seed
    order. Each undecided comparison becomes "different" (the two-sided t test crosses
    its boundary), "equivalent" (TOST within ±`margin` crosses its boundary) or stays
    "undecided"; `previous` (the result of an earlier look) carries decided ones over
    unchanged. `margin` 0 tests the difference alone. With `futility`, a comparison
    still undecided before the last look whose `predictive_power` is below it stops
    there, undecided (`futile`): it gets no more seeds and is not tested again, which
    can only remove verdicts, so the error guarantee is unchanged (non-binding
    futility; Jennison & Turnbull 2000, ch. 10); what it costs is power.
    Deterministic: the same inputs give the same result. See the module docstring for
    the guarantee and its assumptions.

    >>> look = decide([[-3.1, -2.2, -4.0, -3.5, -2.9]], 1, (3, 5, 7, 9, 10))
    >>> look.comparisons[0].verdict, look.more_seeds
    ('different', (False,))
    """
    looks = tuple(int(n) for n in looks)
    if not 0 <= k < len(looks):
        raise ValueError(f"look {k} is not one of the {len(looks)} looks {looks}")
    if not margin >= 0:
        raise ValueError(f"the equivalence margin must be >= 0 points, not {margin}")
    m = len(diffs)
    if previous is not None and (len(previous.comparisons) != m or previous.k >= k):
        raise ValueError("previous must be an earlier look of the same comparisons")
    before = previous.comparisons if previous is not None else ()
    carried = [bool(before) and (before[i].verdict != "undecided" or before[i].futile) for i in range(m)]
    width = max([len(d) for d in diffs] + [1])
    if any(len(d) > looks[k] for i, d in enumerate(diffs) if not carried[i]):
        raise ValueError(f"an undecided comparison has more than the {looks[k]} pairs of look {k}: "
                         "the boundaries assume each look adds only its planned seeds")
    table = np.full((m, width), np.nan)
    for i, d in enumerate(diffs):
        table[i, :len(d)] = on_grid(d, step)
    different = np.array([c.different for c in before] if before else [False] * m)
    equivalent = np.array([c.equivalent for c in before] if before else [False] * m)
    p_diff, p_equiv = paired_p(table, margin)
    different, equivalent, share = sequential_holm(p_diff, p_equiv, different, equivalent, looks, k, alpha=alpha,
                                                   kind=kind, stopped=np.array(carried))
    asked = futility is not None and k < len(looks) - 1
    power = predictive_power(table, looks, margin=margin, alpha=alpha, kind=kind) if asked else None
    out = []
    for i in range(m):
        if carried[i]:
            out.append(before[i])
            continue
        verdict = "different" if different[i] else "equivalent" if equivalent[i] else "undecided"
        c = int(share[i])
        mean = float(np.nanmean(table[i])) if len(diffs[i]) else math.nan
        cp = float(power[i]) if power is not None and verdict == "undecided" and not math.isnan(power[i]) else None
        out.append(ComparisonState(verdict, int(np.sum(~np.isnan(table[i]))), mean, float(p_diff[i]),
                                   float(p_equiv[i]), t_design(looks, alpha / c, kind, 2).nominal[k],
                                   t_design(looks, alpha / c, kind, 1).nominal[k], c, bool(different[i]),
                                   bool(equivalent[i]), cp, cp is not None and cp < futility))
    return SequentialLook(k, looks, tuple(out))


def repeated_interval(values: np.ndarray, looks: tuple[int, ...], k: int, *, alpha: float = 0.05,
                      kind: Spending = "obrien-fleming", sides: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) of the repeated confidence interval of the mean at look k
    (Jennison & Turnbull 2000, ch. 9), over the last axis (its first looks[k] values;
    leading axes are independent series, for simulation): mean ± critical_k · se with
    the design at `alpha`. It covers the true mean at every look at once with chance
    >= 1 - alpha (sides = 2), or misses on each side with chance <= alpha (sides = 1),
    so it stays valid after stopping at any look, where a fixed-n interval does not."""
    y = np.asarray(values, dtype=float)[..., :looks[k]]
    crit = t_design(tuple(looks), alpha, kind, sides).critical[k]
    mean = y.mean(axis=-1)
    half = crit * y.std(axis=-1, ddof=1) / math.sqrt(y.shape[-1])
    return mean, mean - half, mean + half


def speed_interval(current: Sequence[float], baseline: Sequence[float], looks: tuple[int, ...], *,
                   alpha: float = 0.05, kind: Spending = "obrien-fleming") -> tuple[float, float, float]:
    """(d, low, high): d = mean(current) - mean(baseline) of timing repetitions' log
    ratios, and its repeated one-sided bounds at the look of len(current) repetitions
    (module docstring, "Speed"): each bound misses the true difference with chance at
    most `alpha` over all looks, if the repetitions are independent and normal with
    one variance per side. A count between two looks (a failed repetition) is judged
    at the earlier look's boundary (wider).

    >>> d, low, high = speed_interval([0.02, -0.01, 0.03, 0.0], [0.0, 0.01, -0.02, 0.01], (4, 6, 8))
    >>> round(d, 3), low < 0 < high
    (0.01, True)
    """
    c, b = np.asarray(current, dtype=float), np.asarray(baseline, dtype=float)
    n, m = len(c), len(b)
    if n < 2 or m < 2:
        raise ValueError(f"a speed interval needs 2+ repetitions a side, not {n} and {m}")
    k = look_index(looks, n)
    level = t_design(tuple(looks), alpha, kind, 1).nominal[k]
    vc, vb = c.var(ddof=1) / n, b.var(ddof=1) / m
    se = math.sqrt(vc + vb)
    df = (vc + vb) ** 2 / (vc ** 2 / (n - 1) + vb ** 2 / (m - 1)) if se > 0 else float(n + m - 2)
    d = float(c.mean() - b.mean())
    half = float(stats.t.isf(level, df)) * se
    return d, d - half, d + half
