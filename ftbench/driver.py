"""Running a suite: pretrain, expand, skip what is done, hand the rest to an executor.

Every executor runs `run_payload` for each run, in whatever process it likes; that
function claims the run (so two drivers never run one run twice), skips it when a
finished record exists, executes it and writes its record. The driver only
collects the records the executor yields.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm import tqdm

from ftbench.plugins import default_registry, use_registry
from ftbench.store import RESOLVED_SUITE, ResultsStore, write_text_atomic
from ftbench.suite import RunSpec, Suite, expand

CLAIMED = "claimed-elsewhere"


def run_payload(payload: dict) -> dict:
    """Run one spec in this process (any executor's worker function). Returns the
    record, or a stub {"id", "status": "claimed-elsewhere"} when another driver
    holds the run."""
    from ftbench.runner import execute

    spec: RunSpec = payload["spec"]
    registry = default_registry(tuple(payload.get("plugins", ())))
    store = ResultsStore(payload["results"])
    if not store.claim(spec.id):
        return {"id": spec.id, "status": CLAIMED, "cell": spec.cell, "seed": spec.seed}
    try:
        if not payload.get("rerun") and store.is_done(spec.id):
            return store.read(spec.id)
        # A bar per run only where the suite's bar is: in the driver's own process.
        progress = payload.get("progress", False) and os.getpid() == payload.get("driver_pid")
        with store.leased(spec.id):
            return execute(spec, registry, store, progress=progress)
    finally:
        store.release(spec.id)


@dataclass
class SuiteOutcome:
    planned: int = 0
    skipped: int = 0  # finished earlier
    records: list[dict] = field(default_factory=list)
    claimed_elsewhere: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r.get("status") != "ok"]


def save_resolved_suite(suite: Suite, folder: Path) -> None:
    """The validated suite with every default filled in, beside its results."""
    write_text_atomic(folder / RESOLVED_SUITE, yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False))


def run_suite(suite: Suite, registry, results_dir: Path, *, executor_name: str | None = None,
              executor_params: dict | None = None, rerun: bool = False, quiet: bool = False,
              plugins: tuple[str, ...] = (), device: str | None = None) -> SuiteOutcome:
    """Run every run of `suite` not yet finished in `results_dir`."""
    from ftbench.pretrain import pretrain_suite

    log = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    if device:
        suite = suite.model_copy(update={"device": device})
    use_registry(registry)
    pretrain_suite(suite, registry, log=log)
    specs = expand(suite, registry)
    store = ResultsStore(results_dir)
    save_resolved_suite(suite, results_dir)
    outcome = SuiteOutcome(planned=len(specs))
    todo = specs if rerun else [s for s in specs if not store.is_done(s.id)]
    outcome.skipped = len(specs) - len(todo)
    if outcome.skipped:
        log(f"{outcome.skipped} of {len(specs)} runs already finished in {results_dir}; skipping them "
            "(--rerun runs them again)")
    if not todo:
        return outcome
    ref = suite.executor
    name = executor_name or ref.name
    comp = registry.get("executor", name)
    params = {**(ref.params if name == ref.name else {}), **(executor_params or {})}
    executor = comp.factory(comp.params.model_validate(params))
    registry.pm.hook.ftbench_suite_start(suite=suite, runs=todo)
    payloads = [{"spec": s, "results": str(results_dir), "plugins": plugins, "rerun": rerun,
                 "progress": not quiet, "driver_pid": os.getpid()} for s in todo]
    bar = tqdm(total=len(todo), desc=suite.name, unit="run", disable=quiet, file=sys.stderr, dynamic_ncols=True)
    try:
        for record in executor.map(run_payload, payloads):
            if record.get("status") == CLAIMED:
                outcome.claimed_elsewhere.append(record["id"])
            else:
                outcome.records.append(record)
                acc = ((record.get("metrics") or {}).get("test") or {}).get("acc")
                cell = record.get("cell", {})
                bar.set_postfix_str(f"{cell.get('strategy')} {cell.get('data')} s{record.get('seed')}: "
                                    + (f"{acc:.1f}%" if acc is not None else record.get("status", "?")))
            bar.update(1)
    finally:
        bar.close()
    registry.pm.hook.ftbench_suite_end(suite=suite, records=outcome.records)
    return outcome
