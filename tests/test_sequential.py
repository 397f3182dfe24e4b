"""Adaptive seeds (issue 27): the group-sequential design's boundaries against the
classical values and scipy/statsmodels, and Monte Carlo checks of its error rates,
power, seeds saved and the speed procedure. Each rate is asserted within Monte Carlo
error of its stated level and printed (`pytest tests/test_sequential.py -s`)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy import stats as sps

from ftbench.stats import paired, sequential as sq

ALPHA = 0.05
LOOKS = sq.look_schedule(3, 10, 2)  # the example: min 3, max 10, step 2
STEP = 100 / 540  # one test example of the quickstart's digits test set, in points
REPS = 20_000  # Monte Carlo families per scenario: se 0.0015 at a 5% rate


def _se(p: float, reps: int = REPS) -> float:
    return math.sqrt(p * (1 - p) / reps)


def _at_most(rate: float, level: float, reps: int = REPS) -> bool:
    """rate <= level within Monte Carlo error (3 standard errors at the level)."""
    return rate <= level + 3 * _se(level, reps)


def test_examples_in_docstrings():
    assert doctest.testmod(sq).failed == 0


def test_spending_functions_spend_alpha_by_the_end():
    t = np.linspace(0.05, 1, 20)
    for kind in sq.SPENDINGS:
        a = sq.spent(kind, ALPHA, t)
        assert np.all(np.diff(a) > 0) and a[-1] == pytest.approx(ALPHA)
    # O'Brien-Fleming-type spends almost nothing early, Pocock-type much more
    assert sq.spent("obrien-fleming", ALPHA, [0.3])[0] < 0.001 < 0.02 < sq.spent("pocock", ALPHA, [0.3])[0]
    with pytest.raises(ValueError, match="spending must be one of"):
        sq.spent("haybittle", ALPHA, t)


def test_look_schedule():
    assert sq.look_schedule(3, 10, 2) == (3, 5, 7, 9, 10)
    assert sq.look_schedule(3, 9, 3) == (3, 6, 9)
    assert sq.look_schedule(5, 5, 1) == (5,)
    with pytest.raises(ValueError, match="min <= max"):
        sq.look_schedule(1, 10, 2)


def test_normal_bounds_match_the_published_lan_demets_obrien_fleming_design():
    # Five equally spaced looks, one-sided alpha 0.025: the classical Lan-DeMets
    # O'Brien-Fleming-type boundaries (as R gsDesign's sfLDOF gives them).
    bounds = sq.normal_bounds((1, 2, 3, 4, 5), 0.025, "obrien-fleming", sides=1)
    assert bounds == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=2e-3)


@pytest.mark.parametrize("kind", sq.SPENDINGS)
def test_normal_bounds_spend_as_the_spending_function_says(kind):
    """Independent of the multivariate normal integration: simulated z paths cross
    each two-sided boundary for the first time as often as the spending says."""
    rng = np.random.default_rng(1)
    n = np.array(LOOKS)
    z = np.cumsum(rng.standard_normal((400_000, n[-1])), axis=1)[:, n - 1] / np.sqrt(n)
    first = np.cumsum(np.abs(z) >= sq.normal_bounds(LOOKS, ALPHA, kind), axis=1) > 0
    for rate, target in zip(first.mean(axis=0), sq.spent(kind, ALPHA, n / n[-1])):
        assert abs(rate - target) <= 3 * _se(target, 400_000) + 1e-4, (kind, rate, target)


def test_t_design_tends_to_the_normal_design_as_seeds_grow():
    looks = (2000, 4000, 6000, 8000, 10000)
    for kind in sq.SPENDINGS:
        t_crit = np.array(sq.t_design(looks, ALPHA, kind).critical)
        assert t_crit == pytest.approx(sq.normal_bounds(looks, ALPHA, kind), abs=0.03)


def test_t_design_is_wider_than_the_normal_design_at_few_seeds():
    t_crit = np.array(sq.t_design(LOOKS, ALPHA).critical)
    z_crit = sq.normal_bounds(LOOKS, ALPHA)
    assert np.all(t_crit > z_crit)
    # the first look is exact: the t quantile at the spent level
    assert t_crit[0] == pytest.approx(sps.t.isf(sq.spent("obrien-fleming", ALPHA, [0.3])[0] / 2, 2))


@pytest.mark.parametrize("kind", sq.SPENDINGS)
@pytest.mark.parametrize("sides", [1, 2])
def test_boundaries_fall_as_alpha_grows(kind, sides):
    """The group-sequential Holm procedure is valid when a design at a larger level has
    lower boundaries at every look (Maurer & Bretz 2013): check it for the levels a
    family of up to 8 comparisons uses."""
    crit = np.array([sq.t_design(LOOKS, ALPHA / c, kind, sides).critical for c in range(1, 9)])
    assert np.all(np.diff(crit, axis=0) > 0)


def test_paired_p_agrees_with_paired_test_and_statsmodels_tost():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(2, 11))
        diff = paired.on_grid(rng.normal(rng.normal(0, 1), rng.uniform(0.2, 2), n), STEP)
        if np.ptp(diff) == 0:
            continue  # no variance: the test below checks the sign-flip p (statsmodels gives nan)
        p_diff, p_equiv = sq.paired_p(diff[None, :], 1.0)
        assert p_diff[0] == pytest.approx(paired.paired_test(diff, np.zeros(n), step=STEP).p, rel=1e-9)
        assert p_equiv[0] == pytest.approx(paired.tost_paired(diff, np.zeros(n), 1.0, step=STEP), rel=1e-9)


def test_paired_p_without_variance_is_the_exact_sign_flip_p():
    p_diff, p_equiv = sq.paired_p(np.array([[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [2.0, 2.0, 2.0],
                                            [1.0, np.nan, np.nan]]), 1.0)
    assert p_diff[:3].tolist() == [0.25, 1.0, 0.25] and math.isnan(p_diff[3])
    assert p_equiv[:3].tolist() == [0.125, 0.125, 1.0] and math.isnan(p_equiv[3])


def test_decide_carries_decided_comparisons_and_asks_seeds_for_the_rest():
    first = sq.decide([[-3.1, -2.2, -4.0, -3.5, -2.9], [0.1, -0.2, 0.05, 0.1, 0.0], [1, -1, 2, 0, 1]], 1, LOOKS)
    assert [c.verdict for c in first.comparisons] == ["different", "equivalent", "undecided"]
    assert first.more_seeds == (False, False, True)
    worse = first.comparisons[0]
    assert worse.p_diff <= worse.level_diff and worse.share == 3 and worse.n == 5
    assert worse.level_diff == pytest.approx(sq.t_design(LOOKS, ALPHA / 3).nominal[1])
    # the decided comparisons' cells got no more seeds; the third got look 2's
    second = sq.decide([[-3.1, -2.2, -4.0, -3.5, -2.9], [0.1, -0.2, 0.05, 0.1, 0.0], [1, -1, 2, 0, 1, 3, 2]], 2,
                       LOOKS, previous=first)
    assert second.comparisons[:2] == first.comparisons[:2]
    assert second.comparisons[2].n == 7 and second.comparisons[2].verdict == "undecided"
    last = sq.decide([[-3.1], [0.1], [1, -1, 2, 0, 1, 3, 2, 0, 1, 1]], 4, LOOKS, previous=second)
    assert last.last and last.more_seeds == (False, False, False)
    with pytest.raises(ValueError, match="more than the 5 pairs"):
        sq.decide([[0.1] * 7], 1, LOOKS)
    with pytest.raises(ValueError, match="not one of the 5 looks"):
        sq.decide([[0.1] * 3], 5, LOOKS)


def test_decide_is_the_vectorised_procedure():
    """decide() on one family gives what the simulations below measure."""
    rng = np.random.default_rng(5)
    for _ in range(30):
        d = paired.on_grid(rng.normal(rng.choice([0.0, 1.0, 3.0], 4)[:, None], 1.0, (4, 10)), STEP)
        different, equivalent = np.zeros(4, bool), np.zeros(4, bool)
        look = None
        for k, n in enumerate(LOOKS):
            p_diff, p_equiv = sq.paired_p(d[:, :n], 1.0)
            different, equivalent, _ = sq.sequential_holm(p_diff, p_equiv, different, equivalent, LOOKS, k)
            seen = [d[i, :n] if look is None or look.more_seeds[i] else d[i, :look.comparisons[i].n]
                    for i in range(4)]
            look = sq.decide(seen, k, LOOKS, step=STEP, previous=look)
            assert [c.different for c in look.comparisons] == different.tolist()
            assert [c.equivalent for c in look.comparisons] == equivalent.tolist()


# --- Monte Carlo: a family is a baseline and m strategies on the same seeds ---------

def _family(deltas, sd: float, looks: tuple[int, ...], rng: np.random.Generator, *,
            kind: sq.Spending = "obrien-fleming", margin: float = 1.0, reps: int = REPS,
            futility: float | None = None):
    """REPS families run adaptively: each strategy differs from the baseline by
    deltas[i] points, the differences have sd `sd` (the baseline's seed noise is
    shared, so two comparisons correlate 0.5) and sit on the test set's grid. Seeds
    come in a fixed order, so a cell stopped at look k holds the first n_k of them.
    With `futility`, an undecided comparison whose predictive power is below it
    stops before max (`decide(futility=...)`, checked against this copy below).
    Returns (different, equivalent, seeds each strategy ran, seeds the baseline ran)."""
    m, n = len(deltas), looks[-1]
    noise = sd / math.sqrt(2)
    d = paired.on_grid(np.asarray(deltas, dtype=float)[None, :, None] + rng.normal(0, noise, (reps, m, n))
                       - rng.normal(0, noise, (reps, 1, n)), STEP)
    different, equivalent = np.zeros((reps, m), bool), np.zeros((reps, m), bool)
    stopped = np.zeros((reps, m), bool)
    seeds = np.full((reps, m), n)
    for k, n_k in enumerate(looks):
        undecided = ~(different | equivalent | stopped)
        p_diff, p_equiv = sq.paired_p(d[..., :n_k], margin)
        different, equivalent, _ = sq.sequential_holm(p_diff, p_equiv, different, equivalent, looks, k, kind=kind,
                                                      stopped=stopped)
        seeds = np.where(undecided & (different | equivalent), n_k, seeds)
        if futility is not None and k < len(looks) - 1:
            power = sq.predictive_power(d[..., :n_k], looks, margin=margin, kind=kind)
            futile = undecided & ~(different | equivalent) & (power < futility)  # nan: never futile
            stopped |= futile
            seeds = np.where(futile, n_k, seeds)
    return different, equivalent, seeds, seeds.max(axis=1)


def _runs(seeds: np.ndarray, baseline: np.ndarray) -> float:
    return float((seeds.sum(axis=1) + baseline).mean())


@pytest.mark.slow
@pytest.mark.parametrize("kind", sq.SPENDINGS)
def test_single_difference_test_has_exactly_its_level(kind):
    """A/A, one comparison, no equivalence (margin 0): the calibrated t boundaries
    reject α of the time. The usual shortcut (each look's t at the normal design's
    nominal level) rejects more: that is why the t boundaries are calibrated."""
    rng = np.random.default_rng(11)
    different, _, _, _ = _family([0.0], 2.0, LOOKS, rng, kind=kind, margin=0.0)
    rate = different.mean()
    x = rng.standard_normal((REPS * 5, LOOKS[-1]))
    nominal = 2 * sps.norm.sf(sq.normal_bounds(LOOKS, ALPHA, kind))
    naive = np.any([sq.paired_p(x[:, :n], 0.0)[0] <= nominal[k] for k, n in enumerate(LOOKS)], axis=0).mean()
    print(f"\n{kind}, looks {LOOKS}, A/A: size {rate:.4f} ± {_se(rate):.4f} (calibrated t); "
          f"{naive:.4f} ± {_se(naive, REPS * 5):.4f} at the normal design's nominal levels")
    assert abs(rate - ALPHA) <= 3 * _se(ALPHA)
    assert naive > ALPHA + 3 * _se(ALPHA, REPS * 5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sq.SPENDINGS)
@pytest.mark.parametrize("m", [1, 5])
def test_aa_family_wise_false_difference_rate_is_at_most_alpha(kind, m):
    rng = np.random.default_rng(12 + m)
    different, equivalent, seeds, baseline = _family([0.0] * m, 2.0, LOOKS, rng, kind=kind)
    rate = different.any(axis=1).mean()
    print(f"\n{kind}, A/A, {m} strategies vs the baseline (sd of Δ 2, margin 1): family-wise false difference "
          f"{rate:.4f} ± {_se(rate):.4f}; called equivalent {equivalent.mean():.3f}; runs "
          f"{_runs(seeds, baseline):.1f} of {(m + 1) * LOOKS[-1]}")
    assert _at_most(rate, ALPHA)


@pytest.mark.slow
@pytest.mark.parametrize("deltas, sd", [([2.0], 2.0), ([2.0, -2.0, 2.0, -2.0, 2.0], 2.0), ([1.0], 0.5),
                                        ([1.0, -1.0, 0.0, 0.0, 3.0], 0.5)])
def test_false_equivalence_and_any_false_verdict_rates_are_at_most_alpha(deltas, sd):
    """|Δ| >= margin is not equivalent: the issue's 2 points at margin 1, and the
    hardest case, Δ exactly at the margin with little noise. With Δ = 0 among them,
    any false verdict (difference or equivalence) counts."""
    rng = np.random.default_rng(13)
    different, equivalent, seeds, baseline = _family(deltas, sd, LOOKS, rng)
    delta = np.asarray(deltas)
    false_equiv = (equivalent & (np.abs(delta) >= 1.0)).any(axis=1).mean()
    any_false = ((equivalent & (np.abs(delta) >= 1.0)) | (different & (delta == 0))).any(axis=1).mean()
    print(f"\nΔ {deltas}, sd {sd}, margin 1: false equivalence {false_equiv:.4f} ± {_se(false_equiv):.4f}, "
          f"any false verdict {any_false:.4f}; runs {_runs(seeds, baseline):.1f} of {(len(deltas) + 1) * 10}")
    assert _at_most(false_equiv, ALPHA) and _at_most(any_false, ALPHA)


@pytest.mark.slow
@pytest.mark.parametrize("deltas", [[3.0], [3.0, 0.0, 0.0, 0.0, 0.0], [2.0]])
def test_planted_effect_power_against_the_fixed_design_of_max_seeds(deltas):
    """A planted 3-point effect (sd of Δ 2 points, looks 3, 5, 7, 9, 10) is detected
    nearly as often as with 10 seeds everywhere (within 2 points alone, 5 among four
    null comparisons), on fewer runs. Looking costs power where an effect is near the
    fixed design's limit: the last look's nominal level is 0.031, not 0.05 (Δ = 2:
    within 8 points)."""
    rng = np.random.default_rng(14)
    seq = _family(deltas, 2.0, LOOKS, rng)
    fixed = _family(deltas, 2.0, (LOOKS[-1],), rng)
    power, power_fixed = seq[0][:, 0].mean(), fixed[0][:, 0].mean()
    runs, runs_fixed = _runs(seq[2], seq[3]), _runs(fixed[2], fixed[3])
    used = {n: round(float(np.mean(seq[2][:, 0] == n)), 3) for n in LOOKS}
    print(f"\nplanted Δ {deltas} (sd 2): power {power:.4f} ± {_se(power):.4f} adaptive vs {power_fixed:.4f} fixed "
          f"at 10 seeds; runs {runs:.1f} vs {runs_fixed:.0f} ({1 - runs / runs_fixed:.0%} saved); the planted "
          f"cell stopped at {used}")
    assert runs < runs_fixed
    assert power >= power_fixed - {3.0: 0.02 if len(deltas) == 1 else 0.05, 2.0: 0.08}[deltas[0]]
    if deltas == [3.0]:
        assert runs <= 0.8 * runs_fixed


@pytest.mark.slow
@pytest.mark.parametrize("kind", sq.SPENDINGS)
def test_study_like_family_saves_runs_and_keeps_its_verdicts(kind):
    """Five strategies against a baseline, as in a study: two far behind, one
    moderately, two equal to it (sd of Δ 1.5). Runs saved against 10 seeds
    everywhere, and how often each comparison reaches each verdict either way."""
    deltas = [-15.0, -6.0, -3.0, 0.0, 0.0]
    rng = np.random.default_rng(15)
    seq = _family(deltas, 1.5, LOOKS, rng, kind=kind)
    fixed = _family(deltas, 1.5, (LOOKS[-1],), rng)
    runs, runs_fixed = _runs(seq[2], seq[3]), _runs(fixed[2], fixed[3])
    false_diff = seq[0][:, 3:].any(axis=1).mean()
    print(f"\n{kind}, Δ {deltas}, sd 1.5: runs {runs:.1f} vs {runs_fixed:.0f} fixed ({1 - runs / runs_fixed:.0%} "
          f"saved); mean seeds per strategy {seq[2].mean(axis=0).round(1).tolist()}; 'different' "
          f"{seq[0].mean(axis=0).round(3).tolist()} (fixed {fixed[0].mean(axis=0).round(3).tolist()}); "
          f"'equivalent' {seq[1].mean(axis=0).round(3).tolist()} (fixed {fixed[1].mean(axis=0).round(3).tolist()}); "
          f"false difference {false_diff:.4f}")
    assert runs < 0.9 * runs_fixed and _at_most(false_diff, ALPHA)
    assert seq[0][:, :2].mean() >= 0.99  # the large effects are found either way


def test_predictive_power_against_a_direct_simulation_of_its_model():
    """predictive_power is the chance that the last look's mean lands where a verdict
    is possible, under its model: σ² drawn from (n - 1) s² / χ²(n - 1), Δ from N(d,
    σ²/n), the coming seeds from N(Δ, σ²) (a flat prior on Δ and log σ), the last
    look's standard error taken as s/√N. Simulated directly here, step by step."""
    rng = np.random.default_rng(3)
    c_d, c_e = (sq.t_design(LOOKS, ALPHA, "obrien-fleming", sides).critical[-1] for sides in (2, 1))
    draws = 400_000
    for seen in ([0.4, -1.2, 2.0, 0.3, -0.9], [-2.5, -1.0, -3.1], [0.1, -0.3, 0.2, 0.0, 0.1, -0.1, 0.2]):
        y = np.asarray(seen)
        n, big = len(y), LOOKS[-1]
        d, s = y.mean(), y.std(ddof=1)
        sigma = s * np.sqrt((n - 1) / rng.chisquare(n - 1, draws))
        delta = rng.normal(d, sigma / math.sqrt(n))
        rest = rng.normal(delta[:, None], sigma[:, None], (draws, big - n))
        final = (y.sum() + rest.sum(axis=1)) / big
        se = s / math.sqrt(big)
        simulated = np.mean((np.abs(final) >= c_d * se) | (np.abs(final) <= 1.0 - c_e * se))
        power = float(sq.predictive_power(y[None, :], LOOKS)[0])
        assert power == pytest.approx(simulated, abs=0.003), seen
    assert np.isnan(sq.predictive_power(np.array([[1.0, 1.0, 1.0]]), LOOKS)[0])  # no spread: no estimate
    assert np.isnan(sq.predictive_power(np.arange(10.0)[None, :], LOOKS)[0])  # at max: nothing to predict
    assert sq.predictive_power(np.array([[-9.0, -10.0, -11.0]]), LOOKS)[0] > 0.99


def test_decide_with_futility_is_the_vectorised_procedure_and_stops_futile_comparisons():
    rng = np.random.default_rng(6)
    stops = 0
    for _ in range(40):
        d = paired.on_grid(rng.normal(rng.choice([0.0, 0.5, 3.0], 4)[:, None], 2.5, (4, 10)), STEP)
        different, equivalent, stopped = np.zeros(4, bool), np.zeros(4, bool), np.zeros(4, bool)
        look = None
        for k, n in enumerate(LOOKS):
            undecided = ~(different | equivalent | stopped)
            p_diff, p_equiv = sq.paired_p(d[:, :n], 1.0)
            different, equivalent, _ = sq.sequential_holm(p_diff, p_equiv, different, equivalent, LOOKS, k,
                                                          stopped=stopped)
            if k < len(LOOKS) - 1:
                stopped |= undecided & ~(different | equivalent) & (sq.predictive_power(d[:, :n], LOOKS) < 0.1)
            seen = [d[i, :n] if look is None or look.more_seeds[i] else d[i, :look.comparisons[i].n]
                    for i in range(4)]
            look = sq.decide(seen, k, LOOKS, step=STEP, previous=look, futility=0.1)
            assert [c.different for c in look.comparisons] == different.tolist()
            assert [c.equivalent for c in look.comparisons] == equivalent.tolist()
            assert [c.futile for c in look.comparisons] == stopped.tolist()
            assert all(not more for c, more in zip(look.comparisons, look.more_seeds) if c.futile)
        stops += int(stopped.sum())
    assert stops > 0  # the scenario stops some comparisons for futility


@pytest.mark.slow
@pytest.mark.parametrize("deltas, sd", [([0.0] * 5, 2.0), ([3.0], 2.0), ([3.0, 0.0, 0.0, 0.0, 0.0], 2.0),
                                        ([2.0], 2.0), ([-15.0, -6.0, -3.0, 0.0, 0.0], 1.5),
                                        ([-8.0, -2.0, 0.0, 0.4, 0.0], 2.5)])
def test_futility_keeps_the_error_rates_and_what_it_costs_in_power(deltas, sd):
    """Futility 0.1 against none, on the same simulated seeds: false verdicts (a
    difference where Δ = 0, equivalence where |Δ| >= 1) stay at most α; each planted
    effect's power, and the runs. The last scenario is like the quickstart's 2-shot
    task: noisy, two comparisons near 0 that neither verdict reaches by 10 seeds."""
    delta = np.asarray(deltas)
    rows = {}
    for futility in (None, 0.1):
        seq = _family(deltas, sd, LOOKS, np.random.default_rng(16), futility=futility)
        false = ((seq[1] & (np.abs(delta) >= 1.0)) | (seq[0] & (delta == 0))).any(axis=1).mean()
        rows[futility] = (seq[0].mean(axis=0), seq[1].mean(axis=0), _runs(seq[2], seq[3]), false)
    (diff0, equiv0, runs0, false0), (diff1, equiv1, runs1, false1) = rows[None], rows[0.1]
    print(f"\nΔ {deltas}, sd {sd}: runs {runs0:.1f} -> {runs1:.1f} with futility 0.1 ({1 - runs1 / runs0:.0%} "
          f"fewer); 'different' {diff0.round(3).tolist()} -> {diff1.round(3).tolist()}; 'equivalent' "
          f"{equiv0.round(3).tolist()} -> {equiv1.round(3).tolist()}; any false verdict {false0:.4f} -> "
          f"{false1:.4f}")
    assert _at_most(false1, ALPHA) and false1 <= false0  # stopping can only remove verdicts
    assert runs1 <= runs0
    planted = np.abs(delta) >= 2
    assert np.all(diff1[planted] >= diff0[planted] - 0.03)  # power lost at a planted effect: at most 3 points


@pytest.mark.slow
def test_repeated_interval_covers_at_every_look_at_once():
    """Δ = 1.3, sd 2: the two-sided repeated 95% interval holds Δ at all five looks at
    once 95% of the time; the fixed-n t interval, read at the look where the
    procedure stopped, covers less (the bias of stopping where Δ looks large)."""
    rng = np.random.default_rng(16)
    d = 1.3 + rng.normal(0, 2.0, (REPS, LOOKS[-1]))
    covered = np.ones(REPS, bool)
    stop, naive = np.full(REPS, len(LOOKS) - 1), np.zeros(REPS, bool)
    for k, n in enumerate(LOOKS):
        _, low, high = sq.repeated_interval(d, LOOKS, k)
        covered &= (low < 1.3) & (1.3 < high)
        stop = np.where((stop == len(LOOKS) - 1) & (k < stop) & ((low > 0) | (high < 0)), k, stop)
    for k, n in enumerate(LOOKS):
        half = sps.t.isf(0.025, n - 1) * d[:, :n].std(axis=1, ddof=1) / math.sqrt(n)
        naive = np.where(stop == k, np.abs(d[:, :n].mean(axis=1) - 1.3) < half, naive)
    rate = covered.mean()
    print(f"\nrepeated 95% interval, looks {LOOKS}: covers at every look {rate:.4f} ± {_se(rate):.4f}; a fixed-n "
          f"95% t interval at the stopping look covers {naive.mean():.4f}")
    assert abs(rate - 0.95) <= 3 * _se(0.05) and naive.mean() < 0.95 - 3 * _se(0.05)


# --- the speed gate ------------------------------------------------------------------

SPEED_LOOKS = sq.look_schedule(4, 16, 2)  # ftbench's own gate (results/baselines/ci-gate.yaml)
BASE_REPS = 10  # the baseline file's repetitions


def _loaded_log_ratios(rng: np.random.Generator, ratio: float, reps: int, n: int, sd: float = 0.17) -> np.ndarray:
    """Calibrated log ratios timed under load: each run and its calibration loop are
    timed in alternate slots of a load that drifts (AR(1), coefficient 0.5) with
    heavy-tailed jolts (Student t, 4 df); the calibration cancels what the two slots
    share. sd 0.17: the spread of single fresh-process repetitions measured (while
    building the gate) under one CPU burner per core; 0.11 idle, and 0.08-0.16 in
    the idle baselines of benchmarks/gate_under_load.py."""
    phi, df = 0.5, 4
    jolts = rng.standard_t(df, (reps, 2 * n + 20)) / math.sqrt(df / (df - 2)) * sd * math.sqrt((1 + phi) / 2)
    load = np.zeros_like(jolts)
    for t in range(1, jolts.shape[1]):
        load[:, t] = phi * load[:, t - 1] + jolts[:, t]
    load = load[:, 20:]  # past the start-up
    return math.log(ratio) - (load[:, 1::2] - load[:, 0::2])


def _speed_runs(rng, ratio: float, threshold: float = 0.8, reps: int = REPS):
    """The gate's procedure, vectorised: a baseline of BASE_REPS idle repetitions
    (sd 0.11), the current code's under load, judged at each look until decided."""
    base = rng.normal(0.0, 0.11, (reps, BASE_REPS))
    y = _loaded_log_ratios(rng, ratio, reps, SPEED_LOOKS[-1])
    verdict, used = np.full(reps, "undecided", dtype=object), np.full(reps, SPEED_LOOKS[-1])
    cut, vb = math.log(threshold), base.var(axis=1, ddof=1) / BASE_REPS
    for k, n in enumerate(SPEED_LOOKS):
        vc = y[:, :n].var(axis=1, ddof=1) / n
        df = (vc + vb) ** 2 / (vc ** 2 / (n - 1) + vb ** 2 / (BASE_REPS - 1))
        half = sps.t.isf(sq.t_design(SPEED_LOOKS, 0.05, "obrien-fleming", 1).nominal[k], df) * np.sqrt(vc + vb)
        d = y[:, :n].mean(axis=1) - base.mean(axis=1)
        new = (verdict == "undecided") & ((d + half < cut) | (d - half > cut))
        verdict = np.where(new, np.where(d + half < cut, "slower", "not slower"), verdict)
        used = np.where(new, n, used)
    return verdict, used, y, base


def test_speed_interval_is_the_vectorised_procedure_and_welch_at_one_look():
    rng = np.random.default_rng(20)
    verdict, used, y, base = _speed_runs(rng, 0.7, reps=40)
    for v, n, row, b in zip(verdict, used, y, base):
        _, low, high = sq.speed_interval(row[:n], b, SPEED_LOOKS)
        got = "slower" if high < math.log(0.8) else "not slower" if low > math.log(0.8) else "undecided"
        assert got == v
    # one look: the interval is the fixed-n one-sided Welch interval at alpha (scipy's)
    c, b = rng.normal(0, 0.2, 8), rng.normal(0.1, 0.1, 10)
    d, low, high = sq.speed_interval(c, b, (8,), alpha=0.05)
    welch = sps.ttest_ind(c, b, equal_var=False)
    assert low == pytest.approx(welch.confidence_interval(0.90).low)
    assert high == pytest.approx(welch.confidence_interval(0.90).high)
    with pytest.raises(ValueError, match="2\\+ repetitions"):
        sq.speed_interval([0.0], b, (2, 4))


@pytest.mark.slow
def test_speed_gate_error_rates_and_the_planted_1_5x_slowdown():
    """Threshold 0.8, looks at 4, 6, ..., 16 repetitions against a baseline of 10:
    unchanged code almost never reads "slower", a ratio at the threshold errs on
    either side at most alpha of the time, and a planted 1.5x slowdown reads "slower"
    (or, rarely, stays undecided at the cap: never "not slower")."""
    rng = np.random.default_rng(21)
    spread = np.exp(np.quantile(_loaded_log_ratios(rng, 1.0, 2000, 16), [0.05, 0.95]))
    lines = [f"\nspeed noise: 90% of single calibrated ratios in {spread[0]:.2f}-{spread[1]:.2f}"]
    rates = {}
    for ratio in (1.0, 0.8, 1 / 1.5):
        verdict, used, _, _ = _speed_runs(rng, ratio)
        rates[ratio] = {v: float(np.mean(verdict == v)) for v in ("slower", "not slower", "undecided")}
        lines.append(f"true ratio {ratio:.3f}: " + ", ".join(f"{v} {r:.4f}" for v, r in rates[ratio].items())
                     + f"; mean repetitions {used.mean():.1f} (cap {SPEED_LOOKS[-1]})")
    print("\n".join(lines))
    assert _at_most(rates[1.0]["slower"], ALPHA)
    assert _at_most(rates[0.8]["slower"], ALPHA) and _at_most(rates[0.8]["not slower"], ALPHA)
    assert rates[1.0]["not slower"] >= 0.95
    assert rates[1 / 1.5]["slower"] >= 0.9 and _at_most(rates[1 / 1.5]["not slower"], ALPHA)
