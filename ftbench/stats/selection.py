"""How sure a model selection is: the bootstrap probability that each candidate
would have been selected had the validation examples (and the tuning seeds) come
out otherwise.

A search scores candidate c by its mean, over the tuning seeds, of its mean, over
the seed's validation folds (one fold without cross-validation), of its accuracy
on the fold's examples. The candidates of one seed and fold are validated on the
same examples, so one resample serves them all (paired). A resample draws the
tuning seeds with replacement (when there are several) and then, independently
for every seed drawn, each fold's examples with replacement: the two-level
(hierarchical) bootstrap of Davison & Hinkley (1997, §3.8), seeds outer. The
candidate with the best resampled score is counted selected; candidates tied at
the best share the count equally (a tie is a coin flip between them, whatever
tie-break the search itself applies). P(selected) is the share of resamples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000
_TIE = 1e-9  # scores are means of 0/1 values: closer than this is equal


def _fold_scores(correct: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """(resamples x candidates) accuracy of each candidate on a resample of one fold's
    examples (`correct`: candidates x examples, 0/1)."""
    n = correct.shape[1]
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)  # resample weights, paired over candidates
    return counts @ correct.T.astype(float) / n


def selection_probabilities(seeds: Sequence[Sequence[np.ndarray]], resamples: int = DEFAULT_RESAMPLES,
                            seed: int = 0) -> np.ndarray:
    """P(selected) of each candidate. `seeds[s][f]` is a (candidates x examples)
    array of 0/1 correctness of every candidate on tuning seed s's validation fold
    f (every array has the same number of candidates). Seeded by `seed`."""
    if not seeds or any(not folds for folds in seeds):
        raise ValueError("selection_probabilities needs at least one tuning seed with one validation fold")
    arrays = [[np.asarray(f, dtype=float) for f in folds] for folds in seeds]
    m = arrays[0][0].shape[0]
    if any(a.ndim != 2 or a.shape[0] != m or a.shape[1] == 0 for folds in arrays for a in folds):
        raise ValueError("every fold must be a non-empty (candidates x examples) array with the same candidates")
    rng = np.random.default_rng(seed)
    n_seeds = len(arrays)
    total = np.zeros((resamples, m))
    for _ in range(n_seeds):  # each slot of the resampled seed list
        pick = rng.integers(n_seeds, size=resamples) if n_seeds > 1 else np.zeros(resamples, dtype=int)
        for s, folds in enumerate(arrays):
            # a fresh example resample per slot: a seed drawn twice counts twice, on two resamples
            score = np.mean([_fold_scores(f, rng, resamples) for f in folds], axis=0)
            total += np.where((pick == s)[:, None], score, 0.0)
    return _shares(total)


def _shares(scores: np.ndarray) -> np.ndarray:
    """Each candidate's share of resamples it is best in (ties share a resample)."""
    best = scores >= scores.max(axis=1, keepdims=True) - _TIE
    return (best / best.sum(axis=1, keepdims=True)).mean(axis=0)
