"""Every statistic against scipy or a hand-computed value, plus the behaviour of the
paired test on planted and null effects."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from ftbench import stats

X = [91.2, 93.5, 92.8, 94.1, 92.0]
Y = [89.9, 92.7, 90.8, 93.5, 91.1]


def test_t_interval_matches_scipy():
    s = stats.summarize(X)
    ci = sps.ttest_1samp(X, 0).confidence_interval(0.95)
    assert (s.n, s.mean, s.std) == (5, pytest.approx(np.mean(X)), pytest.approx(np.std(X, ddof=1)))
    assert (s.low, s.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert s.half_width == pytest.approx((ci.high - ci.low) / 2)
    assert s.note is None


def test_t_interval_hand_value():
    # mean 2, sd 1, t(0.975, 2) = 4.303: 2 ± 4.303 / sqrt(3)
    s = stats.summarize([1.0, 2.0, 3.0])
    assert s.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)


def test_one_seed_has_no_interval_and_says_why():
    s = stats.summarize([90.0])
    assert s.n == 1 and s.mean == 90.0
    assert math.isnan(s.low) and math.isnan(s.high) and math.isnan(s.std)
    assert s.note == "one seed: no interval"
    assert stats.summarize([]).note == "no runs"


def test_identical_seeds_give_a_point_interval():
    s = stats.summarize([80.0, 80.0, 80.0], interval="bca")
    assert (s.low, s.high, s.std) == (80.0, 80.0, 0.0)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_is_seeded_and_matches_scipy(method):
    xs = X + Y + [x + 0.3 for x in X] + [y - 0.2 for y in Y]  # 20 seeds: the bootstrap is used from BOOTSTRAP_MIN_N on
    a = stats.summarize(xs, interval=method, seed=3)
    b = stats.summarize(xs, interval=method, seed=3)
    ref = sps.bootstrap((np.array(xs),), np.mean, n_resamples=stats.BOOTSTRAP_RESAMPLES,
                        method="BCa" if method == "bca" else "percentile", rng=np.random.default_rng(3))
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) == (pytest.approx(ref.confidence_interval.low), pytest.approx(ref.confidence_interval.high))
    assert a.low < a.mean < a.high


def test_paired_ttest_matches_scipy():
    res = stats.paired_test(X, Y)
    diff = np.subtract(X, Y)
    ci = sps.ttest_1samp(diff, 0).confidence_interval(0.95)
    assert res.n_pairs == 5
    assert res.p == pytest.approx(sps.ttest_rel(X, Y).pvalue)
    assert res.mean_diff == pytest.approx(diff.mean())
    assert (res.diff_low, res.diff_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert res.d_z == pytest.approx(diff.mean() / diff.std(ddof=1))


def test_paired_wilcoxon_matches_scipy():
    res = stats.paired_test(X, Y, test="wilcoxon")
    assert res.p == pytest.approx(sps.wilcoxon(X, Y).pvalue)


def test_paired_edge_cases():
    assert stats.paired_test([1.0, 2.0], [1.0, 2.0]).p == 1.0
    one = stats.paired_test([1.0], [0.5])
    assert one.n_pairs == 1 and math.isnan(one.p) and "needs 2" in one.note
    with pytest.raises(ValueError):
        stats.paired_test(X, Y, test="sign")


def test_match_seeds_uses_only_shared_seeds():
    seeds, a, b = stats.match_seeds({0: 1.0, 1: 2.0, 3: 4.0}, {1: 5.0, 3: 6.0, 4: 7.0})
    assert seeds == [1, 3] and a.tolist() == [2.0, 4.0] and b.tolist() == [5.0, 6.0]


def test_holm_hand_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # nan is not a comparison: m = 2
    out = stats.holm([0.01, math.nan, 0.04])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert stats.holm([0.5, 0.6]).tolist() == [1.0, 1.0]
    assert stats.holm([]).tolist() == []


def test_average_ranks_hand_example():
    scores = np.array([[90, 85, 80], [70, 75, 70]])  # task 2: a tie for ranks 2 and 3
    assert stats.average_ranks(scores).tolist() == pytest.approx([(1 + 2.5) / 2, (2 + 1) / 2, (3 + 2.5) / 2])


def test_friedman_matches_scipy_and_iman_davenport():
    rng = np.random.default_rng(0)
    scores = rng.normal(80, 5, size=(12, 4)) + [0, 1, 2, 6]
    res = stats.friedman(scores)
    ref = sps.friedmanchisquare(*scores.T)
    f = 11 * ref.statistic / (12 * 3 - ref.statistic)  # Demsar (2006), eq. 2
    assert res.statistic == pytest.approx(ref.statistic) and res.f == pytest.approx(f)
    assert res.p == pytest.approx(sps.f.sf(f, 3, 33)) and res.method == "Iman-Davenport F"
    assert res.cd == pytest.approx(stats.nemenyi_cd(4, 12))
    assert res.note is None


def test_friedman_with_few_tasks_is_a_permutation_test():
    # 3 tasks, 3 strategies, one order in every task: the exact p is the share of the
    # (3!)^3 = 216 within-task shuffles whose chi-square is as large: 6 of 216 (all alike)
    scores = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    res = stats.friedman(scores)
    assert res.method == "exact permutation" and res.p == pytest.approx(6 / 216)
    assert res.p < sps.friedmanchisquare(*scores.T).pvalue  # the chi-square approximation is conservative here


def test_friedman_says_why_not():
    assert "needs >= 3 strategies" in stats.friedman(np.ones((5, 2))).note
    assert "(have 3 and 1)" in stats.friedman(np.ones((1, 3))).note


@pytest.mark.parametrize("k,q", [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (10, 3.164)])
def test_nemenyi_q_matches_demsar_table(k, q):
    # Demsar (2006), Table 5(a): q_0.05 = CD / sqrt(k(k+1)/(6N)); the table truncates to 3 decimals
    assert stats.nemenyi_cd(k, 1) / math.sqrt(k * (k + 1) / 6) == pytest.approx(q, abs=1e-3)


def test_nemenyi_cd_value():
    assert stats.nemenyi_cd(4, 14) == pytest.approx(2.569 * math.sqrt(20 / 84), abs=1e-3)


def test_iqm_matches_trim_mean():
    x = [1, 2, 3, 4, 5, 6, 7, 100]
    assert stats.iqm(x) == pytest.approx(sps.trim_mean(x, 0.25)) == 4.5


def test_iqm_interval_is_stratified_and_seeded():
    tasks = [[80.0, 81.0, 82.0, 83.0], [60.0, 61.0, 62.0, 63.0]]
    point, low, high = stats.iqm_interval(tasks, seed=1)
    assert point == pytest.approx(sps.trim_mean(np.concatenate(tasks), 0.25))  # equal seeds: rliable's IQM
    assert stats.iqm_interval(tasks, seed=1) == (point, low, high)
    assert low <= point <= high
    # Resampling within tasks keeps each task's share: the pooled IQM stays between the tasks.
    assert 60.0 <= low and high <= 82.0


def test_probability_of_improvement_hand_example():
    # task 1: 1<2 (0+0), 2=2 (1/2+1/2), 3>2 (1+1) -> 3/6; task 2: all 4 pairs x > y -> 1
    x_tasks, y_tasks = [[1, 2, 3], [5, 6]], [[2, 2], [4, 4.5]]
    point, low, high = stats.probability_of_improvement(x_tasks, y_tasks)
    assert point == pytest.approx((0.5 + 1.0) / 2)
    assert low <= point <= high
    assert stats.probability_of_improvement([[1, 2]], [[1, 2]])[0] == pytest.approx(0.5)


def test_data_auc_hand_example():
    # log-spaced amounts: the area is the mean of the trapezoids, (60 + 80) / 2
    assert stats.data_auc([1000, 10, 100], [90, 50, 70]) == pytest.approx(70.0)
    assert stats.data_auc([10, 1000], [50, 90]) == pytest.approx(70.0)
    assert math.isnan(stats.data_auc([10], [50]))


def test_effective_robustness_on_a_constructed_logit_line():
    test = np.array([60.0, 70.0, 80.0, 90.0])
    logit = lambda p: np.log(p / (100 - p))  # noqa: E731
    expit = lambda z: 100 / (1 + np.exp(-z))  # noqa: E731
    shifted = expit(0.8 * logit(test) - 0.5)
    fit = stats.robustness_fit(test, shifted)
    assert (fit.slope, fit.intercept) == (pytest.approx(0.8), pytest.approx(-0.5))
    assert stats.effective_robustness(test, shifted + [0, 2, 0, 0], fit) == pytest.approx([0, 2, 0, 0], abs=1e-9)
    assert stats.robustness_fit([70.0, 70.0], [50.0, 52.0]) is None


def test_forgetting():
    assert stats.forgetting(99.0, 66.0) == (pytest.approx(33.0), pytest.approx(66.0 / 99.0 * 100))


def test_planted_effect_is_significant():
    rng = np.random.default_rng(7)
    base = rng.normal(90, 1, 5)
    better = base + 5 + rng.normal(0, 1, 5)
    res = stats.paired_test(better, base)
    assert res.p < 0.01 and res.mean_diff > 3 and res.diff_low > 0


def test_null_false_positive_rate_is_near_alpha():
    rng = np.random.default_rng(2026)
    hits = 0
    for _ in range(400):
        seed_effect = rng.normal(0, 2, 5)  # shared per seed: what pairing removes
        a = 90 + seed_effect + rng.normal(0, 1, 5)
        b = 90 + seed_effect + rng.normal(0, 1, 5)
        hits += stats.paired_test(a, b).p < 0.05
    assert 0.02 <= hits / 400 <= 0.09


# ------------------------------------------------------------------ issue 13: honest at small n


def test_constant_differences_give_no_t_and_no_infinity():
    res = stats.paired_test([80.0, 81.0], [88.9, 89.9])  # both -8.9: no variance to estimate
    assert res.mean_diff == pytest.approx(-8.9) and math.isnan(res.d_z)
    exact = sps.permutation_test((np.full(2, -8.9),), np.mean, permutation_type="samples").pvalue
    assert res.p == pytest.approx(exact) == 0.5  # two pairs: the sign flips give p = 2/2**2
    assert "no variance" in res.note


def test_small_bootstrap_falls_back_to_t():
    s = stats.summarize(X, interval="percentile")
    assert (s.low, s.high) == (stats.summarize(X).low, stats.summarize(X).high)
    assert "Student-t used" in s.note


def test_timing_interval_is_on_the_log_scale_and_positive():
    s = stats.summarize_log([0.1, 0.2, 3.0])
    logs = np.log([0.1, 0.2, 3.0])
    ci = sps.ttest_1samp(logs, 0).confidence_interval()
    assert s.mean == pytest.approx(sps.gmean([0.1, 0.2, 3.0]))
    assert (s.low, s.high) == (pytest.approx(math.exp(ci.low)), pytest.approx(math.exp(ci.high)))
    assert s.low > 0 and stats.summarize([0.1, 0.2, 3.0]).low < 0


def test_weighted_iqm_gives_each_task_equal_weight():
    # one task with 8 seeds, one with 1: equal weight makes the pair count alike
    many, one = [10.0] * 8, [30.0]
    point, low, high = stats.iqm_interval([many, one])
    assert point == pytest.approx(20.0)
    assert stats.iqm([1, 2, 3, 4], weights=[1, 1, 1, 1]) == pytest.approx(sps.trim_mean([1, 2, 3, 4], 0.25))
    # quartiles fall inside values: the middle half is 1/12 of 1, 1/3 of 2 and 1/12 of 3
    assert stats.iqm([1, 2, 3], weights=[1, 1, 1]) == pytest.approx((1 / 12 * 1 + 1 / 3 * 2 + 1 / 12 * 3) / 0.5)
    assert math.isnan(stats.iqm_interval([[80.0], [70.0]])[1])  # one seed per task: no bootstrap interval


def test_chance_normalize_uses_fixed_reference_scores():
    assert stats.chance_normalize([10.0, 55.0, 100.0], 10.0).tolist() == [0.0, 50.0, 100.0]
    assert stats.chance_normalize([50.0], 0.0).tolist() == [50.0]


def test_hedges_gz_interval_matches_noncentral_t():
    diff = np.subtract(X, Y)
    g, low, high = stats.hedges_gz(diff)
    n, dz = len(diff), diff.mean() / diff.std(ddof=1)
    assert g == pytest.approx(dz * (1 - 3 / (4 * (n - 1) - 1)))  # J on the point only
    t = dz * math.sqrt(n)
    assert sps.nct.cdf(t, n - 1, high * math.sqrt(n)) == pytest.approx(0.025, abs=1e-6)
    assert sps.nct.cdf(t, n - 1, low * math.sqrt(n)) == pytest.approx(0.975, abs=1e-6)
    assert low < g < high
    assert all(math.isnan(v) for v in stats.hedges_gz([1.0, 1.0, 1.0]))


def test_tost_matches_statsmodels_and_backs_equivalence():
    from statsmodels.stats.weightstats import ttost_paired

    assert stats.tost_paired(X, Y, 3.0) == pytest.approx(ttost_paired(np.array(X), np.array(Y), -3.0, 3.0)[0])
    rng = np.random.default_rng(1)
    a = 90 + rng.normal(0, 0.1, 8)
    assert stats.tost_paired(a, a + rng.normal(0, 0.1, 8), 1.0) < 0.01  # equivalent within 1 point
    assert stats.tost_paired(a, a + 3 + rng.normal(0, 0.1, 8), 1.0) > 0.5


def test_power_matches_simulation_of_a_planted_effect():
    """A planted 3-point effect with sd 2 at n = 5 is found about as often as the power says."""
    n, sd, alpha = 5, 2.0, 0.05
    mde, need = stats.power_paired(n, sd, alpha, power=0.8)
    from statsmodels.stats.power import TTestPower
    power = TTestPower().power(effect_size=3.0 / sd, nobs=n, alpha=alpha)
    rng = np.random.default_rng(3)
    d = 3.0 + rng.normal(0, sd, size=(4000, n))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
    hit = np.mean(2 * sps.t.sf(np.abs(t), n - 1) < alpha)
    assert abs(hit - power) < 4 * math.sqrt(power * (1 - power) / 4000)
    assert mde > 3.0  # 3 points is below the 80%-power detectable effect at n = 5
    assert TTestPower().power(effect_size=1 / sd, nobs=need, alpha=alpha) >= 0.8
    assert TTestPower().power(effect_size=1 / sd, nobs=need - 1, alpha=alpha) < 0.8


def test_best_set_controls_family_wise_error_at_k6_n5():
    """Six identical strategies, five seeds: calling any of them worse than another is an
    error; it must happen at most alpha of the time. Picking the observed best and testing
    the others against it (Holm over k - 1) does not keep that rate."""
    rng = np.random.default_rng(13)
    reps, k, n, alpha = 1000, 6, 5, 0.05
    values = 90 + rng.normal(0, 1, (reps, 1, n)) + rng.normal(0, 1, (reps, k, n))  # seed effect + noise
    errors = sum(bool(stats.best_set({i: dict(enumerate(v[i])) for i in range(k)}, alpha=alpha).worse)
                 for v in values)
    mc_se = math.sqrt(alpha * (1 - alpha) / reps)
    assert errors / reps <= alpha + 2 * mc_se
    # the old way, vectorised: paired t of each cell against the observed best, Holm over k - 1
    best = values.mean(2).argmax(1)
    d = values - values[np.arange(reps), best][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * sps.t.sf(np.abs(d.mean(2) / (d.std(2, ddof=1) / math.sqrt(n))), n - 1)
    p[np.arange(reps), best] = 1.0
    naive = np.mean(np.sort(p, 1)[:, 0] * (k - 1) < alpha)  # Holm rejects something iff its first step does
    assert naive > alpha + 2 * mc_se > errors / reps


def test_best_set_finds_a_planted_gap_and_leaves_untestable_cells_out():
    rng = np.random.default_rng(0)
    cells = {"a": dict(enumerate(90 + rng.normal(0, 0.5, 5))), "b": dict(enumerate(85 + rng.normal(0, 0.5, 5))),
             "c": {0: 99.0}}
    res = stats.best_set(cells)
    assert res.best == "a" and res.worse == {"b"} and res.untestable == {"c"}


def test_wilson_and_mcnemar_match_hand_values():
    low, high = stats.wilson(90.0, 100)  # 90/100: Wilson 95% is [82.6, 94.5]
    assert (round(low, 1), round(high, 1)) == (82.6, 94.5)
    a = np.array([1] * 50 + [1] * 10 + [0] * 2 + [0] * 38, dtype=bool)
    b = np.array([1] * 50 + [0] * 10 + [1] * 2 + [0] * 38, dtype=bool)
    assert stats.mcnemar_p(a, b) == pytest.approx(sps.binomtest(2, 12, 0.5).pvalue)


def test_welch_diff_matches_scipy():
    diff, low, high = stats.welch_diff(X, Y)
    ci = sps.ttest_ind(X, Y, equal_var=False).confidence_interval()
    assert (diff, low, high) == (pytest.approx(np.mean(X) - np.mean(Y)), pytest.approx(ci.low), pytest.approx(ci.high))


def test_the_claimed_minimum_detectable_effect_is_found_80_percent_of_the_time():
    n, sd, alpha = 4, 1.5, 0.05 / 3
    mde, _ = stats.power_paired(n, sd, alpha)
    rng = np.random.default_rng(8)
    d = mde + rng.normal(0, sd, size=(4000, n))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
    hit = np.mean(2 * sps.t.sf(np.abs(t), n - 1) < alpha)
    assert abs(hit - 0.8) < 4 * math.sqrt(0.8 * 0.2 / 4000)


def test_holm_against_the_baseline_keeps_family_wise_error_under_identical_strategies():
    rng = np.random.default_rng(21)
    reps, k, n, alpha = 2000, 5, 5, 0.05
    values = rng.normal(0, 1, (reps, 1, n)) + rng.normal(0, 1, (reps, k, n))
    d = values[:, 1:] - values[:, :1]  # k - 1 strategies against the baseline
    p = 2 * sps.t.sf(np.abs(d.mean(2) / (d.std(2, ddof=1) / math.sqrt(n))), n - 1)
    fwe = np.mean([np.any(stats.holm(row) < alpha) for row in p])
    assert fwe <= alpha + 2 * math.sqrt(alpha * (1 - alpha) / reps)


def test_tost_at_the_margin_rejects_at_most_alpha():
    """A true difference of exactly the margin is not equivalent: TOST may claim it at most alpha of the time."""
    rng = np.random.default_rng(4)
    reps, n, margin = 400, 5, 1.0
    hits = sum(stats.tost_paired(margin + rng.normal(0, 1, n), np.zeros(n), margin) < 0.05 for _ in range(reps))
    assert hits / reps <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps)


def test_friedman_permutation_keeps_its_level_under_the_null():
    rng = np.random.default_rng(6)
    reps = 200
    hits = sum(stats.friedman(rng.normal(0, 1, (3, 3))).p < 0.05 for _ in range(reps))
    assert hits / reps <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps)
