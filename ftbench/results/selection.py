"""Selection confidence of a search cell from its trial records: how often each
completed trial would have been selected had the validation examples and tuning
seeds come out otherwise (`ftbench.stats.selection`). The driver stores the result
in the cell's `selection.confidence`; the report reads it from there. No torch.

Pruned trials compete at the validation accuracy they had when the pruner stopped
them (their record's `metrics.val`, measured at the stop): the pruner's decision
rests on the same few examples, so a trial it stopped while close to the winner
makes the selection uncertain, as it should. A stopped trial would usually have
gone on to score higher, so where pruned trials were close P(selected) of the
winner is, if anything, too high. Failed trials are not candidates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ftbench.results.records import decode_correct
from ftbench.stats.selection import DEFAULT_RESAMPLES, selection_probabilities

RUNNER_UP_FOLDER = "runner-up"  # under a results folder: final runs at uncertain cells' runner-up values
UNCERTAIN_BELOW = 0.8  # `search.final_top: 2` runs the runner-up of a cell whose P(selected) is below this
METHOD = ("two-level bootstrap: tuning seeds, then each seed's validation examples (per fold), with replacement, "
          "paired over trials; ties share a resample; pruned trials compete at their validation when stopped")


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
