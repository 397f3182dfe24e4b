"""Running a suite: pretrain, expand, skip what is done, hand the rest to an executor.

Every executor runs `run_payload` for each run, in whatever process it likes; that
function claims the run (so two drivers never run one run twice), skips it when a
finished record exists, executes it and writes its record. The driver only
collects the records the executor yields.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml
from tqdm import tqdm

from ftbench.errors import UserInputError
from ftbench.failfast import FailFast, one_line, skip_reason
from ftbench.plugins import default_registry, use_registry
from ftbench.store import RESOLVED_SUITE, ResultsStore, write_text_atomic
from ftbench.suite import RunSpec, Suite, expand

CLAIMED = "claimed-elsewhere"
HELD_POLL_S = 2.0  # how often a search looks again at trials another driver is running


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
        if not payload.get("rerun") and (record := store.done_record(spec.id)) is not None:
            return record
        reason = skip_reason(payload["results"], spec.cell) if payload.get("fail_fast") else None
        if reason:
            from ftbench.runner import skipped_record

            return skipped_record(payload, reason)
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
    checkpoint_names: dict[str, str] = field(default_factory=dict)  # "ftbench:<key>" -> "pretrain:NAME"
    stale: dict[str, str] = field(default_factory=dict)  # finished runs kept although stale: id -> why
    stale_trials: dict[str, str] = field(default_factory=dict)  # search trials reused although stale
    search_failed: dict[str, str] = field(default_factory=dict)  # "strategy data" of a cell -> why

    def explain(self, message: str | None) -> str:
        """A run's error message with the suite's own names (`pretrain:NAME`, not
        the checkpoint key it resolves to)."""
        text = str(message or "")
        for key, name in self.checkpoint_names.items():
            text = text.replace(key, f"{name} ({key})")
        return text

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r.get("status") != "ok"]


def eta_seconds(timings: list[dict], remaining: int) -> float | None:
    """Seconds the `remaining` runs will take, from the finished runs' timings.

    Each run costs about the median wall time of the runs after the first; while
    only the first has finished, its wall time less its data loading (later runs
    find the data cached in the process). Runs that failed before training (no
    training time) are left out; None when nothing is known yet.
    """
    trained = [t for t in timings if t.get("train_s")]
    if not trained or remaining <= 0:
        return None if remaining > 0 else 0.0
    later = [t["wall_s"] for t in trained[1:] if t.get("wall_s")]
    if later:
        per_run = statistics.median(later)
    else:
        first = trained[0]
        per_run = max(first.get("wall_s", 0.0) - first.get("data_s", 0.0), first["train_s"])
    return per_run * remaining


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def save_resolved_suite(suite: Suite, folder: Path) -> None:
    """The validated suite with every default filled in, beside its results."""
    write_text_atomic(folder / RESOLVED_SUITE, yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False))


def _search(suite: Suite, registry, specs: list[RunSpec], results_dir: Path, executor, rerun: bool,
            rerun_stale: bool, quiet: bool, plugins: tuple[str, ...], log,
            outcome: SuiteOutcome) -> tuple[list[RunSpec], dict[tuple, str]]:
    """Run the searches (trials through the executor, records in results/<suite>/trials)
    and return (the runs at their selected configurations (ftbench/search.py), cell
    key -> why, for each cell whose search finished no trial: its runs fail).
    Stale trials that are reused (without `rerun_stale`) go into `outcome`.

    A trial held by another driver (two drivers on one search) is waited for: the
    search's next trials depend on its score. When its record appears it is used;
    when its claim goes stale (that driver died or its lease ran out) it is run here."""
    from ftbench.provenance import stale_records
    from ftbench.search import TRIALS_FOLDER, cell_key, run_search
    from ftbench.store import claim_is_stale

    trials_dir = results_dir / TRIALS_FOLDER
    trials_store = ResultsStore(trials_dir)
    said_stale = False
    errors: dict[tuple, str] = {}  # cell key -> the first error of its failed trials

    def execute(todo: list[RunSpec], again: set[str]):
        payloads = [{"spec": s, "results": str(trials_dir), "plugins": plugins, "rerun": rerun or s.id in again,
                     "progress": False, "driver_pid": os.getpid()} for s in todo]
        bar = tqdm(total=len(todo), desc=f"{suite.name} trials", unit="run", disable=quiet or not todo,
                   file=sys.stderr, dynamic_ncols=True)
        try:
            for record in executor.map(run_payload, payloads):
                bar.update(1)
                yield record
        finally:
            bar.close()

    def run_trials(batch: list[RunSpec]):
        nonlocal said_stale
        finished = {} if rerun else {s.id: r for s in batch if (r := trials_store.done_record(s.id)) is not None}
        found = stale_records(list(finished.values()), {s.id: s.threads for s in batch})
        stale = set(found) if rerun_stale else set()
        outcome.stale_trials.update({} if rerun_stale else found)
        if stale and not said_stale:
            log("search: stale trials (older code or another thread count) are run again (--rerun-stale)")
            said_stale = True
        yield from (r for i, r in finished.items() if i not in stale)
        todo = [s for s in batch if s.id not in finished or s.id in stale]
        held: list[RunSpec] = []
        by_id = {s.id: s for s in todo}
        while todo:
            for record in execute(todo, stale):
                if record.get("status") == CLAIMED:
                    held.append(by_id[record["id"]])
                    continue
                if record.get("status") != "ok" and record.get("cell"):
                    error = record.get("error") or {}
                    errors.setdefault(cell_key(record["cell"]),
                                      f"{error.get('type')}: {one_line(error.get('message'))}")
                yield record
            todo = []
            if held:
                log(f"search: waiting for {len(held)} trial(s) that another driver is running (claim file "
                    f"{trials_store.claim_path(held[0].id)}); the next trials depend on them")
            while held and not todo:
                time.sleep(HELD_POLL_S)
                for spec in list(held):
                    if (record := trials_store.done_record(spec.id)) is not None:
                        held.remove(spec)
                        yield record
                    elif claim_is_stale(trials_store.claim_path(spec.id)):
                        held.remove(spec)  # that driver is gone: run it here
                        todo.append(spec)

    final, selections = run_search(suite, specs, registry, run_trials, log)
    failed: dict[tuple, str] = {}
    for sel in selections:
        cell = sel["cell"]
        if sel.get("trial") is None:  # no trial finished: nothing was selected
            key = cell_key(cell)
            first = f"; first error: {errors[key]}" if key in errors else ""
            failed[key] = (f"the search of {cell['strategy']} on {cell['backbone']}/{cell['dataset']}/{cell['data']} "
                           f"finished none of its {sel['trials']} trials ({sel['failed']} failed, {sel['pruned']} "
                           f"pruned{first}); its runs are not run at an unsearched configuration: fix the trials "
                           f"(their records are in {trials_dir}) and run again")
            print(f"search FAILED: {failed[key]}", file=sys.stderr)  # even with --quiet
            continue
        score = ("ORACLE, test", sel.get("test_acc")) if sel.get("select") == "oracle" else ("val", sel["val_acc"])
        log(f"selected for {cell['strategy']} {cell['data']}: {sel['selected']} "
            f"({score[0]} {score[1] if score[1] is None else round(score[1], 2)}, {sel['trials']} trials)")
    return final, failed


ONLY_KEYS = ("backbone", "dataset", "strategy", "data", "seed")


def parse_only(filters: tuple[str, ...]) -> dict[str, set[str]]:
    """`--only key=value` filters -> {key: values}: values of one key are
    alternatives, different keys must all match."""
    out: dict[str, set[str]] = {}
    for text in filters:
        key, sep, value = text.partition("=")
        if not sep or key not in ONLY_KEYS or not value:
            raise UserInputError(f"--only '{text}': write KEY=VALUE with KEY one of {', '.join(ONLY_KEYS)} "
                                 "(e.g. --only strategy=full --only seed=0)")
        out.setdefault(key, set()).add(value)
    return out


def _run_labels(spec: RunSpec) -> dict[str, str]:
    return {**spec.cell, "seed": str(spec.seed)}


def select_runs(specs: list[RunSpec], only: dict[str, set[str]]) -> list[RunSpec]:
    """The runs whose labels match every `only` key; a value that matches no run of
    the suite is an error naming the labels there are."""
    for key, values in only.items():
        known = sorted({_run_labels(s)[key] for s in specs})
        unknown = sorted(values - set(known))
        if unknown:
            raise UserInputError(f"--only {key}={','.join(unknown)} matches no run of the suite "
                                 f"({key} labels: {', '.join(known)})")
    return [s for s in specs if all(_run_labels(s)[k] in v for k, v in only.items())]


def run_suite(suite: Suite, registry, results_dir: Path, *, executor_name: str | None = None,
              executor_params: dict | None = None, rerun: bool = False, quiet: bool = False,
              plugins: tuple[str, ...] = (), device: str | None = None, rerun_stale: bool = False,
              only: dict[str, set[str]] | None = None, fail_fast: bool = True,
              calibrate: bool = False, final_runs: Callable[[list[RunSpec]], list[RunSpec]] | None = None
              ) -> SuiteOutcome:
    """Run every run of `suite` (or of the `only` subset, see `select_runs`) not yet
    finished in `results_dir`; `rerun` runs finished ones again too, `rerun_stale`
    those whose records came from older code. With `fail_fast`, runs that share a
    component with two runs that failed the same way are skipped (`ftbench.failfast`);
    each new kind of failure is printed as soon as it happens. With `calibrate`, the
    speed gate's calibration loop runs right before and after the runs (`ftbench.calibrate`).
    `final_runs` maps the runs after the search (at its selections) to the runs to run
    (`ftbench reproduce` runs a reference's selections instead)."""
    from ftbench import numerics
    from ftbench.search import searches

    numerics.apply(suite.numerics)  # before torch computes anything here, and before workers start
    from ftbench.pretrain import pretrain_suite  # imports torch

    log = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    if device:
        suite = suite.model_copy(update={"device": device})
    use_registry(registry)
    specs = expand(suite, registry)
    if only:
        specs = select_runs(specs, only)
    pretrain_suite(suite, registry, log=log)
    store = ResultsStore(results_dir)
    save_resolved_suite(suite, results_dir)
    ref = suite.executor
    name = executor_name or ref.name
    comp = registry.get("executor", name)
    executor = comp.factory(comp.params.model_validate(
        {**(ref.params if name == ref.name else {}), **(executor_params or {})}))
    outcome = SuiteOutcome()
    try:  # one executor for the search's rounds and the final runs: a pool keeps its workers
        if searches(suite):
            specs, failed = _search(suite, registry, specs, results_dir, executor, rerun, rerun_stale, quiet,
                                    plugins, log, outcome)
            specs = _fail_unsearched(specs, failed, results_dir, outcome)
        if final_runs is not None:
            specs = final_runs(specs)
        return _run_specs(suite, registry, executor, specs, store, results_dir, rerun=rerun,
                          rerun_stale=rerun_stale, quiet=quiet, plugins=plugins, fail_fast=fail_fast,
                          calibrate=calibrate, log=log, outcome=outcome)
    finally:
        close = getattr(executor, "close", None)  # optional for executor plugins
        if close is not None:
            close()


def _fail_unsearched(specs: list[RunSpec], failed: dict[tuple, str], results_dir: Path,
                     outcome: SuiteOutcome) -> list[RunSpec]:
    """Record the runs of each cell whose search finished no trial as failed
    (`SearchFailed`, with why) and return the other runs."""
    from ftbench.runner import failed_record
    from ftbench.search import cell_key

    keep = []
    for spec in specs:
        why = failed.get(cell_key(spec.cell))
        if why is None:
            keep.append(spec)
            continue
        outcome.planned += 1
        outcome.search_failed[f"{spec.cell['strategy']} {spec.cell['data']}"] = why
        outcome.records.append(failed_record({"spec": spec, "results": str(results_dir)}, why, "SearchFailed"))
    return keep


def _run_specs(suite: Suite, registry, executor, specs: list[RunSpec], store: ResultsStore, results_dir: Path, *,
               rerun: bool, rerun_stale: bool, quiet: bool, plugins: tuple[str, ...], fail_fast: bool,
               calibrate: bool, log, outcome: SuiteOutcome) -> SuiteOutcome:
    from ftbench.provenance import stale_records, summarise_stale
    from ftbench.suite import CHECKPOINT_PREFIX, PRETRAIN_PREFIX, pretrain_key

    outcome.planned += len(specs)
    outcome.checkpoint_names = {CHECKPOINT_PREFIX + pretrain_key(job, registry, suite.numerics): PRETRAIN_PREFIX + name
                                for name, job in suite.pretrain.items()}
    done = {s.id: r for s in specs if (r := store.done_record(s.id)) is not None}
    found = {} if rerun else stale_records([done[i] for i in sorted(done)], {s.id: s.threads for s in specs})
    stale = found if rerun_stale else {}
    outcome.stale = {} if rerun_stale else found  # kept as finished: said at the end, with what to do
    todo = specs if rerun else [s for s in specs if s.id not in done or s.id in stale]
    outcome.skipped = len(specs) - len(todo)
    if stale:
        log(f"{summarise_stale(stale, len(done))}; running them again (--rerun-stale)")
    if outcome.skipped:
        log(f"{outcome.skipped} of {len(specs)} runs already finished in {results_dir}; skipping them "
            "(--rerun runs them again, --rerun-stale the stale ones)")
    if not todo:
        return outcome
    loggers = _start_loggers(suite, registry, results_dir)
    try:
        _run_todo(suite, registry, executor, todo, outcome, results_dir, rerun=rerun, stale=set(stale), quiet=quiet,
                  plugins=plugins, fail_fast=fail_fast, calibrate=calibrate)
    finally:
        for logger in loggers:
            registry.pm.unregister(logger)
    return outcome


def _start_loggers(suite: Suite, registry, results_dir: Path) -> list:
    """Build the suite's loggers and register them for this suite only. They listen
    in the driver (suite start/end and each record as it comes back), so they work
    the same under every executor and no worker process needs the tracker."""
    loggers = []
    for ref in suite.loggers:
        comp = registry.get("logger", ref.name)
        try:
            logger = comp.factory(comp.params.model_validate(ref.params), results=results_dir)
        except Exception as exc:  # a tracker that cannot start costs its logs, not the benchmark
            print(f"ftbench: the {ref.name} logger could not start ({type(exc).__name__}: {exc}); "
                  "the runs go on without it", file=sys.stderr)
            continue
        registry.pm.register(logger)
        loggers.append(logger)
    return loggers


def _run_todo(suite: Suite, registry, executor, todo: list[RunSpec], outcome: SuiteOutcome, results_dir: Path, *,
              rerun: bool, stale: set[str], quiet: bool, plugins: tuple[str, ...], fail_fast: bool = True,
              calibrate: bool = False) -> None:
    registry.pm.hook.ftbench_suite_start(suite=suite, runs=todo)
    payloads = [{"spec": s, "results": str(results_dir), "plugins": plugins, "rerun": rerun or s.id in stale,
                 "progress": not quiet, "driver_pid": os.getpid(), "fail_fast": fail_fast} for s in todo]
    watch = FailFast(results_dir) if fail_fast else None
    seen_errors: set[str] = set()
    if calibrate:
        from ftbench import calibrate as calibration

        before = calibration.measure()
    # tqdm's own estimate extrapolates the first run, which pays the one-time costs
    # (imports, loading data, the source evaluation); `eta_seconds` does not.
    bar = tqdm(total=len(todo), desc=suite.name, unit="run", disable=quiet, file=sys.stderr, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
    timings: list[dict] = []
    try:
        for record in executor.map(run_payload, payloads):
            if record.get("status") == CLAIMED:
                outcome.claimed_elsewhere.append(record["id"])
            else:
                outcome.records.append(record)
                registry.pm.hook.ftbench_run_collected(suite=suite, record=record)
                acc = ((record.get("metrics") or {}).get("test") or {}).get("acc")
                cell = record.get("cell", {})
                timings.append(record.get("timing") or {})
                eta = eta_seconds(timings, len(todo) - bar.n - 1)
                bar.set_postfix_str(f"{cell.get('strategy')} {cell.get('data')} s{record.get('seed')}: "
                                    + (f"{acc:.1f}%" if acc is not None else record.get("status", "?"))
                                    + (f", about {_duration(eta)} left" if eta is not None else ""))
                error = record.get("error") or {}
                if record.get("status") == "failed" and error.get("type") not in seen_errors and not quiet:
                    seen_errors.add(error.get("type"))  # each kind of failure once, when it first happens
                    bar.write(f"failed: {'/'.join(str(v) for v in cell.values())} seed {record.get('seed')}: "
                              f"{error.get('type')}: {one_line(outcome.explain(error.get('message')))}",
                              file=sys.stderr)
                notice = watch.observe(record) if watch else None
                if notice and not quiet:
                    bar.write(notice, file=sys.stderr)
            bar.update(1)
    finally:
        bar.close()
    if calibrate:
        cal = calibration.write_calibration(results_dir, before, calibration.measure())
        if not quiet:
            print(f"calibration loop: {cal['samples_per_s']:.0f} samples/s (for the speed gate)", file=sys.stderr)
    registry.pm.hook.ftbench_suite_end(suite=suite, records=outcome.records)
