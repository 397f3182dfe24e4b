"""The executor contract: what an executor hands a worker, and the one function a
worker runs for each run, wherever it is (docs/architecture.md).

`run_payload` claims the run (so two drivers never run one run twice), returns the
finished record when there is one, executes the run and writes its record, then
releases the claim. An executor that cannot run a run at all (its worker died)
records it with `failed_record`.
"""

from __future__ import annotations

import os

from ftbench.driver.failfast import skip_reason
from ftbench.plugins import default_registry
from ftbench.results.store import ResultsStore
from ftbench.suite.runs import RunSpec

#: The status of a stub record: another driver holds the run's claim.
CLAIMED_ELSEWHERE = "claimed-elsewhere"


def claimed_elsewhere(spec: RunSpec) -> dict:
    """The stub an executor yields for a run another driver holds."""
    return {"id": spec.id, "status": CLAIMED_ELSEWHERE, "cell": spec.cell, "seed": spec.seed}


def run_payload(payload: dict) -> dict:
    """Run one spec in this process (any executor's worker function). Returns the
    record, or a stub {"id", "status": "claimed-elsewhere"} when another driver
    holds the run."""
    from ftbench.engine.runner import execute  # torch: only where a run executes

    spec: RunSpec = payload["spec"]
    registry = default_registry(tuple(payload.get("plugins", ())))
    store = ResultsStore(payload["results"])
    if not store.claim(spec.id):
        return claimed_elsewhere(spec)
    try:
        if not payload.get("rerun") and (record := store.done_record(spec.id)) is not None:
            return record
        reason = skip_reason(payload["results"], spec.cell) if payload.get("fail_fast") else None
        if reason:
            return skipped_record(payload, reason)
        # A bar per run only where the suite's bar is: in the driver's own process.
        progress = payload.get("progress", False) and os.getpid() == payload.get("driver_pid")
        with store.leased(spec.id):
            return execute(spec, registry, store, progress=progress)
    finally:
        store.release(spec.id)


def failed_record(payload: dict, message: str, error_type: str = "WorkerLost") -> dict:
    """Write and return a `failed` record for a run that could not execute at all
    (its worker process died; `SearchFailed`: its search selected nothing). Like any
    record it is written under the run's claim and never over a finished one:
    another driver may have run it meanwhile. Returns that driver's record, or a
    claimed-elsewhere stub while it holds the run."""
    return _record_unrun(payload, "failed", {"type": error_type, "message": message, "traceback": ""})


def skipped_record(payload: dict, reason: str) -> dict:
    """Write and return a `skipped` record for a run not started because runs that
    share its component failed the same way (`ftbench.failfast`); under the claim,
    like `failed_record`."""
    return _record_unrun(payload, "skipped", {"type": "Skipped", "message": reason, "traceback": ""})


def _record_unrun(payload: dict, status: str, error: dict) -> dict:
    """Write a record of a run that did not execute, under its claim and never over a
    finished one: another driver may have run it meanwhile. Returns that driver's
    record, or a claimed-elsewhere stub while it holds the run."""
    spec: RunSpec = payload["spec"]
    store = ResultsStore(payload["results"])
    held = store.held_by_me(spec.id)  # Ray without a shared folder: the driver claimed it
    if not held and not store.claim(spec.id):
        return claimed_elsewhere(spec)
    try:
        existing = store.read(spec.id)
        if existing is not None and existing.get("status") == "ok":
            return existing
        from ftbench.engine.record import record_of_unrun

        record = record_of_unrun(spec, status, error)
        store.write(record)
        return record
    finally:
        if not held:
            store.release(spec.id)
