"""Selection confidence (ftbench.results.selection): the
bootstrap P(selected) against hand computations, a planted tie is uncertain, a
planted clear winner is not, and pruned trials compete at their stop."""

import numpy as np
import pytest

from ftbench.results.records import encode_correct
from ftbench.results.selection import selection_confidence
from ftbench.results.selection import selection_probabilities


def test_identical_candidates_share_every_resample_exactly():
    x = np.array([[1, 0, 1, 1, 0], [1, 0, 1, 1, 0]])
    assert selection_probabilities([[x]], resamples=500, seed=3).tolist() == [0.5, 0.5]


def test_one_example_apart_matches_the_hand_computation():
    # A is right on all n examples, B on all but one: B ties A exactly when a resample
    # misses that example, with probability (1 - 1/n)^n, and then takes half the count.
    n = 10
    a, b = np.ones(n), np.ones(n)
    b[0] = 0
    p = selection_probabilities([[np.stack([a, b])]], resamples=40000, seed=0)
    hand = 0.5 * (1 - 1 / n) ** n
    assert p[1] == pytest.approx(hand, abs=0.01) and p.sum() == pytest.approx(1.0)


def test_tuning_seeds_are_resampled_too():
    # Seed 0 prefers A without any doubt, seed 1 prefers B: with the seeds resampled,
    # a resample drawing seed 0 twice picks A, seed 1 twice B, and one of each ties
    # (each candidate right on half of all examples): P = 1/4 + 1/2 * 1/2 = 1/2.
    n = 40
    s0 = np.stack([np.ones(n), np.zeros(n)])
    s1 = s0[::-1]
    p = selection_probabilities([[s0], [s1]], resamples=4000, seed=1)
    assert p[0] == pytest.approx(0.5, abs=0.03)
    assert selection_probabilities([[s0]], resamples=100).tolist() == [1.0, 0.0]


def test_folds_are_averaged_like_the_search_scores_them():
    # Candidate A wins fold 0 (3 examples) by one example, B wins fold 1 (30) by one: per-fold means
    # make A's fold-0 edge worth 10x B's, as in the search's mean over folds.
    f0 = np.array([[1, 1, 1], [1, 1, 0]])
    f1 = np.stack([np.r_[np.zeros(1), np.ones(29)], np.ones(30)])
    p = selection_probabilities([[f0, f1]], resamples=4000, seed=2)
    assert p[0] > 0.5


def test_the_seed_repeats_and_inputs_are_checked():
    x = np.random.default_rng(0).integers(0, 2, size=(3, 20))
    assert selection_probabilities([[x]], seed=5).tolist() == selection_probabilities([[x]], seed=5).tolist()
    with pytest.raises(ValueError):
        selection_probabilities([[x], [x[:2]]])


def _trial(number, lr, correct_by_seed, state="complete"):
    records = [{"seed": s, "config": {"trial": {}}, "metrics": {"val": {"n": len(c), "correct": encode_correct(c)}}}
               for s, c in correct_by_seed.items()]
    value = float(np.mean([np.mean(c) * 100 for c in correct_by_seed.values()]))
    return {"number": number, "values": {"train.lr": lr}, "state": state, "value": value, "records": records}


def _planted(gap_examples: int, n: int = 10, seeds=(0,)):
    """Four trials on n validation examples per seed; the best beats the second by `gap_examples`."""
    rng = np.random.default_rng(7)
    trials = []
    for number, right in enumerate((n - 4, n - 1 - gap_examples, n - 1, n - 5)):
        by_seed = {}
        for s in seeds:
            c = np.zeros(n, dtype=bool)
            c[rng.permutation(n)[:right]] = True
            by_seed[s] = c
        trials.append(_trial(number, 10.0 ** -(number + 1), by_seed))
    return trials


def test_a_cell_whose_two_best_values_tie_within_noise_is_uncertain():
    trials = _planted(gap_examples=0)  # 9 of 10 right and 9 of 10 right: a coin flip
    conf = selection_confidence(trials, selected=1)
    assert conf["selected_p"] < 0.8
    assert conf["runner_up"]["trial"] == 2 and conf["runner_up"]["values"] == {"train.lr": 0.001}
    assert sum(conf["p_selected"].values()) == pytest.approx(1.0, abs=1e-3)


def test_a_clear_winner_is_not_uncertain():
    rng = np.random.default_rng(0)
    n = 200
    best = rng.random(n) < 0.95
    trials = [_trial(0, 0.1, {0: rng.random(n) < 0.6}), _trial(1, 0.01, {0: best}),
              _trial(2, 0.001, {0: rng.random(n) < 0.7})]
    conf = selection_confidence(trials, selected=1)
    assert conf["selected_p"] > 0.99 and conf["candidates"] == 3


def test_pruned_trials_compete_at_their_stop_and_old_records_say_so():
    trials = _planted(gap_examples=2)  # trial 2 (9 of 10) beats trial 1 (7 of 10) ...
    trials[2]["state"] = "pruned"  # ... but was stopped: the rule selects trial 1, on shaky ground
    conf = selection_confidence(trials, selected=1)
    assert conf["pruned"] == 1 and conf["candidates"] == 4 and conf["selected_p"] < 0.2
    assert conf["runner_up"]["trial"] == 2 and conf["runner_up"]["state"] == "pruned"
    del trials[2]["records"][0]["metrics"]["val"]["correct"]  # a pruned trial recorded before: left out
    assert selection_confidence(trials, selected=1)["candidates"] == 3
    del trials[0]["records"][0]["metrics"]["val"]["correct"]
    assert "recorded before" in selection_confidence(trials, selected=1)["unavailable"]
    assert selection_confidence([t | {"state": "pruned"} for t in trials], selected=None) is None
