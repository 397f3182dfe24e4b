"""The executor contract: what an executor is handed (`Payload`), the one function a
worker runs for each run wherever it is (`run_payload`), and what an executor
does when a run could not execute. An executor plugin imports this module and
ftbench's contracts, nothing else (docs/architecture.md; `ftbench new executor`
scaffolds one, `ftbench.testing.check_executor` tests it).

`run_payload` claims the run in its results folder (so two drivers never run one
run twice), returns the finished record when there is one, executes the run and
writes its record, then releases the claim. Every path in a payload is absolute:
a worker started in another folder, or on another machine with the same paths,
writes where the driver reads. The driver checks that every record it counts as
ok is in its results folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from ftbench.driver.failfast import skip_reason
from ftbench.plugins import default_registry
from ftbench.results.store import ResultsStore, write_json_atomic
from ftbench.suite.runs import RunSpec

#: The status of a stub record: another driver holds the run's claim.
CLAIMED_ELSEWHERE = "claimed-elsewhere"


@dataclasses.dataclass(frozen=True)
class Payload:
    """One run for an executor to run: picklable (pool, Ray and submitit send it to
    other processes), every path absolute."""

    spec: RunSpec  # the run
    results: Path  # the folder its record goes to (made absolute)
    plugins: tuple[str, ...] = ()  # `--plugin` modules the worker's registry loads
    workdir: str = ""  # the driver's working directory: `--plugin` modules are imported from it
    rerun: bool = False  # run it even when a finished record exists
    progress: bool = False  # a progress bar over the run's budget (shown in the driver's process only)
    driver_pid: int = 0  # the driver's process id
    fail_fast: bool = False  # skip it when the driver's fail-fast rules say so (ftbench.driver.failfast)

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", Path(os.path.abspath(self.results)))
        object.__setattr__(self, "plugins", tuple(self.plugins))
        if self.workdir:
            object.__setattr__(self, "workdir", os.path.abspath(self.workdir))

    @property
    def run_id(self) -> str:
        return self.spec.id

    def store(self) -> ResultsStore:
        return ResultsStore(self.results)

    def placed(self, gpus: float) -> "Payload":
        """This payload for a worker given `gpus` GPUs: with none, `device: auto`
        means the CPU (a scheduler may leave a node's GPUs visible to a job that asked
        for none; the device is not part of a run's id)."""
        if gpus == 0 and self.spec.device == "auto":
            return dataclasses.replace(self, spec=dataclasses.replace(self.spec, device="cpu"))
        return self

    # Kept for one release: executors written against the old payload dict.
    def __getitem__(self, key: str) -> Any:
        return getattr(self, key) if key != "results" else str(self.results)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if hasattr(self, key) else default


def claimed_elsewhere(spec: RunSpec) -> dict:
    """The stub an executor yields for a run another driver holds."""
    return {"id": spec.id, "status": CLAIMED_ELSEWHERE, "cell": spec.cell, "seed": spec.seed}


def landed(store: ResultsStore, record: dict) -> bool:
    """The driver's check of a record an executor handed back: an ok one must be in
    the driver's results folder (`store`); a worker that does not share the folder
    wrote it somewhere else."""
    return record.get("status") != "ok" or store.done_record(record["id"]) is not None


def use_threads(threads: int) -> None:
    """Set a worker process's torch CPU threads (each run then sets its suite's own)."""
    import torch

    torch.set_num_threads(threads)


def run_payload(payload: Payload) -> dict:
    """Run one payload in this process: any executor's worker function. Returns the
    record, or a `claimed_elsewhere` stub when another driver holds the run."""
    from ftbench.engine.runner import execute  # torch: only where a run executes

    spec, store = payload.spec, payload.store()
    if payload.workdir and payload.workdir not in sys.path:
        sys.path.insert(0, payload.workdir)
    registry = default_registry(payload.plugins)
    if not store.claim(spec.id):
        return claimed_elsewhere(spec)
    try:
        if not payload.rerun and (record := store.done_record(spec.id)) is not None:
            return record
        reason = skip_reason(payload.results, spec.cell) if payload.fail_fast else None
        if reason:
            return skipped_record(payload, reason)
        # A bar per run only where the suite's bar is: in the driver's own process.
        progress = payload.progress and os.getpid() == payload.driver_pid
        with store.leased(spec.id):
            return execute(spec, registry, store, progress=progress)
    finally:
        store.release(spec.id)


# ---------------------------------------------------------------- runs that did not execute


def failed_record(payload: Payload, message: str, error_type: str = "WorkerLost") -> dict:
    """Write and return a `failed` record for a run that could not execute at all
    (its worker process died; `SearchFailed`: its search selected nothing). Like any
    record it is written under the run's claim and never over a finished one:
    another driver may have run it meanwhile. Returns that driver's record, or a
    claimed-elsewhere stub while it holds the run."""
    return _record_unrun(payload, "failed", {"type": error_type, "message": message, "traceback": ""})


def skipped_record(payload: Payload, reason: str) -> dict:
    """Write and return a `skipped` record for a run not started because runs that
    share its component failed the same way (`ftbench.driver.failfast`); under the
    claim, like `failed_record`."""
    return _record_unrun(payload, "skipped", {"type": "Skipped", "message": reason, "traceback": ""})


def _record_unrun(payload: Payload, status: str, error: dict) -> dict:
    spec, store = payload.spec, payload.store()
    held = store.held_by_me(spec.id)  # a driver that claimed the run itself (no shared folder)
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


def release_claim_of(payload: Payload, pid: int | None) -> None:
    """Release the claim that this host's process `pid` held on the payload's run (a
    worker the executor killed), if it did."""
    store = payload.store()
    owner = store.claim_owner(payload.run_id)
    if owner and owner.get("pid") == pid and owner.get("host") == socket.gethostname():
        store.release(payload.run_id)


# ---------------------------------------------------------------- retries on another node

# A run's claim names the host and pid of the process that took it. On that host a
# dead owner is noticed and its claim taken over; from another host it cannot be, so
# a retry scheduled on another node would find the claim of its own dead predecessor
# and give up. Each attempt therefore leaves a note beside the claim,
# `.<run id>.<token>.attempt`, naming its host and pid; `token` is one per submission
# and shared by its retries. A later attempt of the same submission, or the driver
# giving up on it, releases a claim whose owner is the one in the note: that process
# is known to be gone, because the scheduler retried it.


def _release_earlier_attempt(payload: Payload, token: str) -> Path:
    """Release the claim of this submission's dead earlier attempt, if its note shows
    it still owns it; returns the note's path."""
    store = payload.store()
    note = store.folder / f".{payload.run_id}.{token}.attempt"
    try:
        noted = json.loads(note.read_text())
    except (OSError, ValueError):
        return note  # no earlier attempt of this submission got as far as claiming
    owner = store.claim_owner(payload.run_id)  # stale or not
    if owner and (owner.get("host"), owner.get("pid")) == (noted.get("host"), noted.get("pid")):
        store.release(payload.run_id)
    return note


def run_attempt(run_one: Callable[[Payload], dict], payload: Payload, token: str) -> dict:
    """Worker side of a run a scheduler may retry elsewhere (Ray, Slurm): clear what
    an earlier, dead attempt of this submission (`token`) left, note this attempt,
    then `run_one(payload)`."""
    note = _release_earlier_attempt(payload, token)
    write_json_atomic(note, {"host": socket.gethostname(), "pid": os.getpid()})
    try:
        return run_one(payload)
    finally:
        note.unlink(missing_ok=True)


def abandon_attempt(payload: Payload, token: str) -> None:
    """Driver side, after the last attempt of a submission died: release the claim
    it left and remove its note."""
    _release_earlier_attempt(payload, token).unlink(missing_ok=True)


# ---------------------------------------------------------------- workers without the results folder


def claim_on_driver(payload: Payload) -> dict | None:
    """For workers that cannot see the results folder: the driver claims the run
    itself. Returns a `claimed_elsewhere` stub when another driver holds it, the
    finished record when there is one (claim released); None when the run is the
    caller's to submit (`run_detached` on the worker, then `write_detached`)."""
    spec, store = payload.spec, payload.store()
    if not store.claim(spec.id):
        return claimed_elsewhere(spec)
    if not payload.rerun and (record := store.done_record(spec.id)) is not None:
        store.release(spec.id)
        return record
    return None


def run_detached(payload: Payload) -> dict:
    """Worker side, without the results folder: execute the run into a temporary
    folder and return its record for the driver to write (`write_detached`)."""
    from ftbench.engine.runner import execute

    if payload.workdir and payload.workdir not in sys.path:
        sys.path.insert(0, payload.workdir)
    registry = default_registry(payload.plugins)
    with tempfile.TemporaryDirectory(prefix="ftbench-run-") as tmp:
        return execute(payload.spec, registry, ResultsStore(tmp))


def write_detached(payload: Payload, record: dict | None) -> None:
    """Driver side: write the record a detached worker returned (None: it returned
    none) and release the claim `claim_on_driver` took."""
    try:
        if record is not None:
            payload.store().write(record)
    finally:
        release_claim(payload)


def release_claim(payload: Payload) -> None:
    """Driver side: release the claim `claim_on_driver` took (a run not submitted after all)."""
    payload.store().release(payload.run_id)
