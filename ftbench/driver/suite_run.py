"""Running a suite: pretrain, expand, skip what is done, hand the rest to an executor.

Every executor runs `run_payload` for each `Payload` (`ftbench.driver.worker`), in
whatever process it likes; that function claims the run (so two drivers never run
one run twice), skips it when a finished record exists, executes it and writes its
record. The driver collects the records the executor yields, and counts an ok one
only when its record is in the results folder.
"""

from __future__ import annotations

import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml
from tqdm import tqdm

from ftbench.driver.failfast import FailFast, one_line
from ftbench.driver.search import TRIALS_FOLDER, runner_up_runs, run_search
from ftbench.driver.selection import select_runs
from ftbench.driver.trials import TrialRounds
from ftbench.driver.worker import CLAIMED_ELSEWHERE, Payload, landed, run_payload
from ftbench.plugins import create, use_registry
from ftbench.results.selection import RUNNER_UP_FOLDER
from ftbench.results.store import RESOLVED_SUITE, ResultsStore, write_text_atomic
from ftbench.suite.runs import RunSpec
from ftbench.suite.schema import Suite
from ftbench.suite.expand import expand



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
    lost: list[str] = field(default_factory=list)  # ids the executor called ok whose records are not in the folder

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
            outcome: SuiteOutcome) -> tuple[list[RunSpec], dict[tuple, str], list[RunSpec]]:
    """Run the searches (trials through the executor, records in results/<suite>/trials)
    and return (the runs at their selected configurations (`ftbench.driver.search`),
    cell key -> why, for each cell whose search finished no trial: its runs fail,
    the runs at uncertain cells' runner-up values under `final_top: 2`).
    Stale trials that are reused (without `rerun_stale`) go into `outcome`."""
    trials = TrialRounds(suite.name, executor, results_dir / TRIALS_FOLDER, plugins, rerun=rerun,
                         rerun_stale=rerun_stale, quiet=quiet, log=log)
    final, selections = run_search(suite, specs, registry, trials, log)
    outcome.stale_trials.update(trials.stale_kept)
    outcome.lost += trials.lost
    return final, trials.failed_cells(selections), runner_up_runs(suite, final, selections, registry)


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
    from ftbench.suite.tuning import searches

    numerics.apply(suite.numerics)  # before torch computes anything here, and before workers start
    from ftbench.engine.pretrain import pretrain_suite  # imports torch

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
    params = {**(ref.params if name == ref.name else {}), **(executor_params or {})}
    executor = create(registry, "executor", name, params)
    outcome = SuiteOutcome()
    runner_up: list[RunSpec] = []
    try:  # one executor for the search's rounds and the final runs: a pool keeps its workers
        if searches(suite):
            specs, failed, runner_up = _search(suite, registry, specs, results_dir, executor, rerun, rerun_stale,
                                               quiet, plugins, log, outcome)
            specs = _fail_unsearched(specs, failed, results_dir, outcome)
        if final_runs is not None:
            specs, runner_up = final_runs(specs), []
        options = dict(rerun=rerun, rerun_stale=rerun_stale, quiet=quiet, plugins=plugins, fail_fast=fail_fast,
                       calibrate=calibrate, log=log, outcome=outcome)
        if suite.adaptive is not None:
            return _run_adaptive(suite, registry, executor, specs, store, results_dir, **options)
        _run_specs(suite, registry, executor, specs, store, results_dir, **options)
        if runner_up:  # `final_top: 2`: uncertain cells again at their runner-up, in a folder of their own
            log(f"search: {len(runner_up)} runs at the runner-up values of uncertain cells (final_top: 2), "
                f"in {results_dir / RUNNER_UP_FOLDER}")
            skipped = outcome.skipped
            _run_specs(suite, registry, executor, runner_up, ResultsStore(results_dir / RUNNER_UP_FOLDER),
                       results_dir / RUNNER_UP_FOLDER, **options)
            outcome.skipped += skipped
        return outcome
    finally:
        close = getattr(executor, "close", None)  # optional for executor plugins
        if close is not None:
            close()


def _run_adaptive(suite: Suite, registry, executor, specs: list[RunSpec], store: ResultsStore, results_dir: Path,
                  *, rerun: bool, log, outcome: SuiteOutcome, **options) -> SuiteOutcome:
    """Adaptive seeds: run each look's runs, replay the plan from the records, repeat
    until every comparison is decided or at max (`ftbench.driver.adaptive`). With
    `rerun`, only this invocation's records count, so the study is run afresh."""
    from ftbench.driver.adaptive import PLAN_FILE, replay
    from ftbench.results.store import write_json_atomic

    passed: set[str] = set()  # handed to _run_specs in this invocation
    skipped, stale = 0, {}
    while True:
        plan = replay(suite, specs, lambda i: store.read(i) if not rerun or i in passed else None)
        write_json_atomic(results_dir / PLAN_FILE, plan.to_json())
        todo = [s for s in plan.planned() if s.id not in passed]
        if plan.done or not todo:
            break
        seeds = max(plan.needed.values())
        log(f"adaptive seeds: look at {seeds} seeds, {len(todo)} run(s) of {sum(plan.needed.values())} planned "
            f"(max {plan.max_runs()})")
        _run_specs(suite, registry, executor, todo, store, results_dir, rerun=rerun, log=log, outcome=outcome,
                   **options)
        skipped += outcome.skipped
        stale.update(outcome.stale)
        passed |= {s.id for s in todo}
    outcome.skipped, outcome.stale = skipped, stale
    runs = plan.to_json()["runs"]
    log(f"adaptive seeds: {runs['planned']} of {runs['max']} runs planned ({runs['saved']} saved against max "
        f"seeds everywhere)" + ("" if plan.done else f"; {runs['pending']} still to run: run again to resume"))
    return outcome


def _fail_unsearched(specs: list[RunSpec], failed: dict[tuple, str], results_dir: Path,
                     outcome: SuiteOutcome) -> list[RunSpec]:
    """Record the runs of each cell whose search finished no trial as failed
    (`SearchFailed`, with why) and return the other runs."""
    from ftbench.driver.worker import failed_record
    from ftbench.driver.search import cell_key

    keep = []
    for spec in specs:
        why = failed.get(cell_key(spec.cell))
        if why is None:
            keep.append(spec)
            continue
        outcome.planned += 1
        outcome.search_failed[f"{spec.cell['strategy']} {spec.cell['data']}"] = why
        outcome.records.append(failed_record(Payload(spec, results_dir), why, "SearchFailed"))
    return keep


def _run_specs(suite: Suite, registry, executor, specs: list[RunSpec], store: ResultsStore, results_dir: Path, *,
               rerun: bool, rerun_stale: bool, quiet: bool, plugins: tuple[str, ...], fail_fast: bool,
               calibrate: bool, log, outcome: SuiteOutcome) -> SuiteOutcome:
    from ftbench.results.provenance import stale_records, summarise_stale
    from ftbench.suite.schema import CHECKPOINT_PREFIX, PRETRAIN_PREFIX
    from ftbench.suite.expand import pretrain_key

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
        registry.get("logger", ref.name)  # an unknown name is an error, not a logger that could not start
        try:
            logger = create(registry, "logger", ref, results=results_dir)
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
    payloads = [Payload(s, results_dir, plugins, workdir=os.getcwd(), rerun=rerun or s.id in stale,
                        progress=not quiet, driver_pid=os.getpid(), fail_fast=fail_fast) for s in todo]
    watch = FailFast(results_dir) if fail_fast else None
    if calibrate:
        from ftbench.driver import calibrate as calibration

        before = calibration.measure()
    progress = _Progress(suite.name, len(todo), quiet, outcome)
    store = ResultsStore(results_dir)
    try:
        for record in executor.map(run_payload, payloads):
            if record.get("status") == CLAIMED_ELSEWHERE:
                outcome.claimed_elsewhere.append(record["id"])
            elif not landed(store, record):
                outcome.lost.append(record["id"])
                progress.say_lost(record, results_dir)
            else:
                outcome.records.append(record)
                registry.pm.hook.ftbench_run_collected(suite=suite, record=record)
                progress.show(record)
                notice = watch.observe(record) if watch else None
                if notice:
                    progress.say(notice)
            progress.bar.update(1)
    finally:
        progress.bar.close()
    if calibrate:
        cal = calibration.write_calibration(results_dir, before, calibration.measure())
        if not quiet:
            print(f"calibration loop: {cal['samples_per_s']:.0f} samples/s (for the speed gate)", file=sys.stderr)
    registry.pm.hook.ftbench_suite_end(suite=suite, records=outcome.records)


class _Progress:
    """The suite's progress bar: each record's accuracy, the time left, and each new
    kind of failure when it first happens."""

    def __init__(self, name: str, total: int, quiet: bool, outcome: SuiteOutcome):
        # tqdm's own estimate extrapolates the first run, which pays the one-time costs
        # (imports, loading data, the source evaluation); `eta_seconds` does not.
        self.bar = tqdm(total=total, desc=name, unit="run", disable=quiet, file=sys.stderr, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
        self.quiet, self.outcome, self.total = quiet, outcome, total
        self.timings: list[dict] = []
        self.seen_errors: set[str] = set()
        self.said_lost = False

    def say(self, line: str) -> None:
        if not self.quiet:
            self.bar.write(line, file=sys.stderr)

    def show(self, record: dict) -> None:
        acc = ((record.get("metrics") or {}).get("test") or {}).get("acc")
        cell = record.get("cell", {})
        self.timings.append(record.get("timing") or {})
        eta = eta_seconds(self.timings, self.total - self.bar.n - 1)
        self.bar.set_postfix_str(f"{cell.get('strategy')} {cell.get('data')} s{record.get('seed')}: "
                                 + (f"{acc:.1f}%" if acc is not None else record.get("status", "?"))
                                 + (f", about {_duration(eta)} left" if eta is not None else ""))
        error = record.get("error") or {}
        if record.get("status") == "failed" and error.get("type") not in self.seen_errors:
            self.seen_errors.add(error.get("type"))  # each kind of failure once, when it first happens
            self.say(f"failed: {'/'.join(str(v) for v in cell.values())} seed {record.get('seed')}: "
                     f"{error.get('type')}: {one_line(self.outcome.explain(error.get('message')))}")

    def say_lost(self, record: dict, folder: Path) -> None:
        if not self.said_lost:  # even with --quiet: these runs are not where the results are read
            self.bar.write(f"lost: {lost_message(1, folder)}", file=sys.stderr)
            self.said_lost = True


def lost_message(n: int, folder: Path) -> str:
    """Why `n` runs the executor called finished are not counted."""
    return (f"{n} run(s) finished ok on their workers but their records are not in {folder}: the workers "
            "wrote them elsewhere (they do not share this folder; a relative path resolved in another "
            "working directory); use a results folder every worker sees, or an executor that returns the "
            "records to the driver (ray: shared_fs: false)")
