"""Retrying a run whose worker died, on whichever host the retry lands.

A run's claim names the host and pid of the process that took it. On that host a
dead owner is noticed and its claim taken over; from another host it cannot be,
so a retry scheduled on another node would find the claim of its own dead
predecessor and give up. Each attempt therefore leaves a note beside the claim,
`.<run id>.<token>.attempt`, naming its host and pid; `token` is one per
submission and shared by its retries. A later attempt of the same submission, or
the driver giving up on it, releases a claim whose owner is the one in the note:
that process is known to be gone, because the scheduler retried it.

This module needs neither Ray nor submitit; the `slurm` executor uses it too.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Callable

from ftbench.results.store import ResultsStore, write_json_atomic


def _release_earlier_attempt(payload: dict, token: str) -> Path:
    """Release the claim of this submission's dead earlier attempt, if its note shows
    it still owns it; returns the note's path."""
    store = ResultsStore(payload["results"])
    run_id = payload["spec"].id
    note = store.folder / f".{run_id}.{token}.attempt"
    try:
        noted = json.loads(note.read_text())
    except (OSError, ValueError):
        return note  # no earlier attempt of this submission got as far as claiming
    owner = store.claim_owner(run_id)  # stale or not
    if owner and (owner.get("host"), owner.get("pid")) == (noted.get("host"), noted.get("pid")):
        store.release(run_id)
    return note


def run_attempt(run_one: Callable[[dict], dict], payload: dict, token: str) -> dict:
    """Worker side: clear what an earlier, dead attempt of this submission left,
    note this attempt, then run the core's worker function."""
    note = _release_earlier_attempt(payload, token)
    write_json_atomic(note, {"host": socket.gethostname(), "pid": os.getpid()})
    try:
        return run_one(payload)
    finally:
        note.unlink(missing_ok=True)


def abandon_attempt(payload: dict, token: str) -> None:
    """Driver side, after the last attempt of a submission died: release the claim
    it left and remove its note."""
    _release_earlier_attempt(payload, token).unlink(missing_ok=True)
