"""Selection confidence of a search cell from its trial records: how often each
trial would have been selected had the validation examples and tuning seeds come
out otherwise. The driver stores the result in the cell's `selection.confidence`;
the report reads it from there. No torch, no scipy.

The bootstrap (`selection_probabilities`) is pure numpy on 0/1 arrays but lives
here, not in `ftbench.stats`: the search computes it in the driver, so it must be
inside the code digests of the records (`ftbench.results.provenance`), which leave
`ftbench.stats` out (and `ftbench.stats` would pull scipy into `validate`).

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

Pruned trials compete at the validation accuracy they had when the pruner stopped
them (their record's `metrics.val`, measured at the stop): the pruner's decision
rests on the same few examples, so a trial it stopped while close to the winner
makes the selection uncertain, as it should. A stopped trial would usually have
gone on to score higher, so where pruned trials were close P(selected) of the
winner is, if anything, too high. Failed trials are not candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ftbench.results.records import decode_correct

RUNNER_UP_FOLDER = "runner-up"  # under a results folder: final runs at uncertain cells' runner-up values
UNCERTAIN_BELOW = 0.8  # `search.final_top: 2` runs the runner-up of a cell whose P(selected) is below this
METHOD = ("two-level bootstrap: tuning seeds, then each seed's validation examples (per fold), with replacement, "
          "paired over trials; ties share a resample; pruned trials compete at their validation when stopped")


# ------------------------------------------------------------ the bootstrap (pure numpy)

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


# ------------------------------------------------------------ from trial records

def _fold_of(record: dict) -> int:
    return int(((record.get("config") or {}).get("trial") or {}).get("fold", 0))


def _val_bits(record: dict) -> np.ndarray | None:
    val = (record.get("metrics") or {}).get("val") or {}
    if not val.get("correct") or not val.get("n"):
        return None
    try:
        return decode_correct(val["correct"], int(val["n"]))
    except (ValueError, TypeError):
        return None


def _matrices(candidates: list[dict]) -> list[list[np.ndarray]] | str:
    """seeds[s][f] = (candidates x examples) correctness, or why there is none."""
    keys = None
    table: list[dict[tuple[int, int], np.ndarray]] = []
    for trial in candidates:
        found = [(r, _val_bits(r)) for r in trial["records"]]
        if not found or any(b is None for _, b in found):
            return "trial records without per-example validation correctness (recorded before it was kept)"
        bits = {(int(r.get("seed", 0)), _fold_of(r)): b for r, b in found}
        if keys is None:
            keys = sorted(bits)
        if sorted(bits) != keys or any(len(bits[k]) != len(table[0][k]) for k in keys if table):
            return "the trials were validated on different examples"
        table.append(bits)
    seeds = sorted({s for s, _ in keys})
    return [[np.stack([t[(s, f)] for t in table]) for (s2, f) in keys if s2 == s] for s in seeds]


def selection_confidence(trials: list[dict], selected: int | None, *, resamples: int = DEFAULT_RESAMPLES,
                         seed: int = 0) -> dict[str, Any] | None:
    """`selection.confidence` of one cell: P(selected) per completed or pruned trial, the
    selected trial's, the runner-up (the other candidate most often selected).
    `trials`: the search's trials as {number, values, state, records}. None when no
    trial completed; {"unavailable": why} when the records cannot say."""
    # a pruned trial with no validation when stopped (an older record) cannot compete
    candidates = [t for t in trials if t["state"] == "complete" or t["state"] == "pruned" and t["records"]
                  and all(_val_bits(r) is not None for r in t["records"])]
    if not any(t["state"] == "complete" for t in candidates) or selected is None:
        return None
    pruned = sum(t["state"] == "pruned" for t in trials)
    base = {"resamples": resamples, "seed": seed, "candidates": len(candidates), "pruned": pruned, "method": METHOD}
    if len(candidates) == 1:
        return base | {"p_selected": {str(candidates[0]["number"]): 1.0}, "selected_p": 1.0, "runner_up": None}
    found = _matrices(candidates)
    if isinstance(found, str):
        return base | {"unavailable": found}
    p = selection_probabilities(found, resamples=resamples, seed=seed)
    by_number = {t["number"]: float(round(q, 4)) for t, q in zip(candidates, p)}
    others = [t for t in candidates if t["number"] != selected]
    runner = max(others, key=lambda t: (by_number[t["number"]], -t["number"]))
    return base | {"p_selected": {str(k): v for k, v in by_number.items()},
                   "selected_p": by_number.get(selected),
                   "runner_up": {"trial": runner["number"], "values": runner["values"],
                                 "p": by_number[runner["number"]], "state": runner["state"],
                                 "val_acc": runner.get("value") if runner["state"] == "complete"
                                 else runner.get("stopped_at")}}
