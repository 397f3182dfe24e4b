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
    a = stats.summarize(X, interval=method, seed=3)
    b = stats.summarize(X, interval=method, seed=3)
    ref = sps.bootstrap((np.array(X),), np.mean, n_resamples=stats.BOOTSTRAP_RESAMPLES,
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


def test_friedman_matches_scipy():
    rng = np.random.default_rng(0)
    scores = rng.normal(80, 5, size=(6, 4)) + [0, 1, 2, 6]
    res = stats.friedman(scores)
    ref = sps.friedmanchisquare(*scores.T)
    assert (res.statistic, res.p) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert res.cd == pytest.approx(stats.nemenyi_cd(4, 6))
    assert res.note is None


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
    tasks = [[80.0, 81.0, 82.0], [60.0, 61.0, 62.0, 63.0]]
    point, low, high = stats.iqm_interval(tasks, seed=1)
    assert point == pytest.approx(sps.trim_mean(np.concatenate(tasks), 0.25))
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


def test_smallest_matching():
    assert stats.smallest_matching([50, 200, 1000], [80.0, 95.0, 98.0], 94.0) == 200
    assert stats.smallest_matching([50, 200], [80.0, 90.0], 94.0) is None


def test_effective_robustness_on_a_constructed_line():
    test = np.array([60.0, 70.0, 80.0, 90.0])
    # residuals orthogonal to 1 and to x, so least squares recovers the line exactly
    residual = np.array([1.0, -1.0, -1.0, 1.0])
    shifted = 0.5 * test + 10 + residual
    fit = stats.robustness_fit(test, shifted)
    assert (fit.slope, fit.intercept) == (pytest.approx(0.5), pytest.approx(10.0))
    assert stats.effective_robustness(test, shifted, fit) == pytest.approx(residual)
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
