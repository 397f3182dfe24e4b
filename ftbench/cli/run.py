"""`ftbench validate`, `run` and `pretrain`: a suite's runs, checked, run or pretrained."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import click
from tabulate import tabulate

from ftbench.cli.common import registry as command_registry
from ftbench.errors import UserInputError


AFTER_SEARCH = "(after search)"  # the id of a run whose values its cell's search has yet to select


def _runs_table(specs, store, waiting: set[str] = frozenset()) -> str:
    """Each run with its id and state; a run in `waiting` (ids of runs whose cell's
    search is unfinished) has no id yet."""
    from ftbench.results.provenance import stale_reason

    rows = []
    for s in specs:
        if s.id in waiting:
            rows.append((AFTER_SEARCH, *s.labels, s.data.label, s.seed, "tuned later"))
            continue
        rec = store.read(s.id)
        state = rec["status"] if rec else "pending"
        if rec and state in ("ok", "diverged") and stale_reason(rec, s.threads):
            state += " (stale)"  # finished, but not by the code installed now: --rerun-stale
        rows.append((s.id, *s.labels, s.data.label, s.seed, state))
    return tabulate(rows, headers=["id", "backbone", "dataset", "strategy", "data", "seed", "state"])


def _search_table(plans: dict) -> str:
    rows = [(*p.cell.values(), p.trial_runs, p.trials_done,
             _selected_text(p.selection) if p.selected else "after its trials") for p in plans.values()]
    return tabulate(rows, headers=["backbone", "dataset", "strategy", "data", "trial runs", "done", "selected"])


def _selected_text(selection: dict) -> str:
    values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in sorted(selection["selected"].items()))
    values = values or "nothing: no trial finished (its runs fail)"
    return ("ORACLE (test): " if selection.get("select") == "oracle" else "") + values


def _summarise_plan(specs, store, suite, registry) -> None:
    """The runs (searched cells' at their selected values once their trials are
    all recorded), the search's trials, and the totals."""
    from ftbench.driver.search import TRIALS_FOLDER, cell_key, plan_search, planned_trials, runner_up_plan
    from ftbench.suite.tuning import oracle_strategies, searches
    from ftbench.results.store import ResultsStore
    from ftbench.suite.tuning import search_budgets, trial_runs, unequal_budgets
    from ftbench.suite.expand import total_budget

    searched = searches(suite)
    runs, waiting = specs, set()
    if searched:
        runs, plans = plan_search(suite, specs, registry, ResultsStore(store.folder / TRIALS_FOLDER))
        waiting = {s.id for s in runs if (plan := plans.get(cell_key(s.cell))) is not None and not plan.selected}
    click.echo(_runs_table(runs, store, waiting))
    done = sum(store.is_done(s.id) for s in runs if s.id not in waiting)
    totals = ", ".join(f"{v:g} {k}" for k, v in total_budget(specs).items())
    click.echo(f"\n{len(specs)} runs ({done} finished, {len(specs) - done} to run); "
               f"budget per run: {suite.budget.model_dump(exclude_none=True)}; total at most: {totals}")
    if (seeds := suite.adaptive) is not None:
        click.echo(f"adaptive seeds: these are max {seeds.max} seeds per cell; each cell runs {seeds.min} first, "
                   f"then only cells of undecided comparisons get {seeds.step} more per look (docs/suite.md)")
    if suite.pretrain:
        click.echo(f"pretraining jobs: {', '.join(suite.pretrain)} (trained once, then cached)")
    if searched:
        click.echo()
        click.echo(_search_table(plans))
        click.echo(f"\n{planned_trials(suite, specs, plans)}")
        if (second := runner_up_plan(suite, runs, plans, registry)) is not None:
            from ftbench.results.selection import RUNNER_UP_FOLDER

            kept = ResultsStore(store.folder / RUNNER_UP_FOLDER)
            done_second = None if second.runs is None else sum(kept.is_done(s.id) for s in second.runs)
            click.echo(second.describe(store.folder, done_second))
        budgets = search_budgets(suite)
        if len({trial_runs(b) for b in budgets.values()}) > 1:  # refused unless allowed
            click.echo(f"warning: unequal tuning budgets (allow_unequal_budget): {unequal_budgets(budgets)}; "
                       "the report notes it", err=True)
        if oracle := oracle_strategies(suite):
            click.echo(f"warning: {', '.join(oracle)} select hyperparameters on TEST accuracy (`select: oracle`): "
                       "optimistic, not a fair comparison; records and the report label them ORACLE", err=True)


def _results_dir(results: str | None, suite) -> Path:
    return Path(results) if results else Path("results") / suite.name


@click.command()
@click.argument("suite_path", metavar="SUITE", type=click.Path(dir_okay=False))
@click.option("--results", type=click.Path(file_okay=False), help="Results folder [default: results/<suite name>].")
@click.pass_context
def validate(ctx: click.Context, suite_path: str, results: str | None) -> None:
    """Check a suite and print its expanded runs, their count and total budget.

    Every problem is reported at once: the schema, component names and
    parameters, and the environment (data folders, weights files, Hub weights
    when offline, a GPU for `device: cuda`). Exits 2 when there is one.

    \b
    Example:
        ftbench validate suites/quickstart.yaml
    """
    from ftbench.results.store import ResultsStore
    from ftbench.suite.expand import expand
    from ftbench.suite.load import load_suite

    registry = command_registry(ctx)
    suite = load_suite(suite_path, registry, environment=True)
    specs = expand(suite, registry)
    _summarise_plan(specs, ResultsStore(_results_dir(results, suite)), suite, registry)
    click.echo(f"{suite_path}: valid")


@click.command()
@click.argument("suite_path", metavar="SUITE", type=click.Path(dir_okay=False))
@click.option("--results", type=click.Path(file_okay=False), help="Results folder [default: results/<suite name>].")
@click.option("--dry-run", is_flag=True, help="Print the runs and their budget; run nothing.")
@click.option("--rerun", is_flag=True, help="Run finished runs again (with --only: just that subset).")
@click.option("--rerun-stale", is_flag=True,
              help="Also run again finished runs whose records came from older code (`ftbench status` counts them).")
@click.option("--only", "only", multiple=True, metavar="KEY=VALUE",
              help="Run only runs with this label: backbone, dataset, strategy, data or seed (repeatable; "
                   "one key's values are alternatives, different keys must all match).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Run N runs at once (local process pool).")
@click.option("--executor", help="Executor component (`ftbench list executors`) [default: the suite's].")
@click.option("--device", help="Override the suite's device: auto, cpu, cuda, cuda:N, mps.")
@click.option("--logger", "loggers", multiple=True, metavar="NAME",
              help="Also log every run to this logger, default params (`ftbench list loggers`); repeatable.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or log lines (CI).")
@click.option("--calibrate", is_flag=True,
              help="Time a fixed bare training loop before and after the runs, for the speed gate (`ftbench compare`).")
@click.option("-o", "--override", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Set a suite key for this run (dotted path, YAML value), e.g. -o train.lr=0.01 -o seeds=[0,1].")
@click.pass_context
def run(ctx: click.Context, suite_path: str, results: str | None, dry_run: bool, rerun: bool,
        rerun_stale: bool, only: tuple[str, ...], jobs: int | None, executor: str | None, device: str | None,
        loggers: tuple[str, ...], quiet: bool, calibrate: bool, overrides: tuple[str, ...]) -> None:
    """Run every combination of a suite; finished runs are skipped.

    Exits 0 when every run is ok, 1 when some failed or diverged (the others
    still ran and their records are kept) or are held by another driver, 2 on a
    bad suite, 130 on Ctrl-C and 143 on SIGTERM (finished records are kept).

    \b
    Example:
        ftbench run suites/quickstart.yaml -j 2
        ftbench run suites/quickstart.yaml -o train.lr=0.01 -o seeds=[0,1]
        ftbench run suites/quickstart.yaml --only strategy=lp-ft --only seed=0 --rerun
        ftbench run suites/quickstart.yaml --rerun-stale
    """
    from ftbench import api
    from ftbench.driver.selection import parse_only, select_runs
    from ftbench.driver.suite_run import lost_message
    from ftbench.results.store import ResultsStore
    from ftbench.suite.expand import expand

    registry = command_registry(ctx)
    subset = parse_only(only)
    if dry_run:
        suite = api.with_loggers(api.load_suite(suite_path, overrides=overrides, registry=registry, device=device),
                                 loggers, registry)
        _summarise_plan(select_runs(expand(suite, registry), subset), ResultsStore(_results_dir(results, suite)),
                        suite, registry)
        return
    try:
        with _sigterm_interrupts():
            done = api.run(suite_path, results, overrides, jobs, executor=executor, device=device, rerun=rerun,
                           rerun_stale=rerun_stale, only=subset, quiet=quiet, calibrate=calibrate, loggers=loggers,
                           plugins=ctx.find_root().obj["plugins"], registry=registry)
    except KeyboardInterrupt as exc:
        _interrupted(ctx, exc, getattr(exc, "results", None) or Path(results or "results"))
    outcome, folder = done.raw, done.results
    ok = len(outcome.records) - len(outcome.failed)
    stale = f" ({len(outcome.stale)} of them stale)" if outcome.stale else ""
    lost = f", {len(outcome.lost)} lost (not in the results folder)" if outcome.lost else ""
    click.echo(f"{done.suite}: {outcome.planned} runs; {outcome.skipped} already finished{stale}, {ok} ok, "
               f"{len(outcome.failed)} failed or diverged, {len(outcome.claimed_elsewhere)} held by another "
               f"driver{lost}. Records: {folder}", err=True)
    if outcome.lost:
        click.echo(f"  lost: {lost_message(len(outcome.lost), folder)}", err=True)
    for rec in outcome.failed:
        err = rec.get("error") or {}
        click.echo(f"  {rec['status']}: {rec['id']} {rec['cell']} seed {rec['seed']}: "
                   f"{err.get('type')}: {outcome.explain(err.get('message'))}", err=True)
    for run_id in outcome.claimed_elsewhere:
        click.echo(f"  held by another driver: {run_id} (claim file {ResultsStore(folder).claim_path(run_id)}); "
                   "rerun `ftbench run` once that driver is done", err=True)
    _say_stale(outcome, suite_path, folder)
    if outcome.failed or outcome.claimed_elsewhere or outcome.search_failed or outcome.lost:
        ctx.exit(1)


def _say_stale(outcome, suite_path: str, folder: Path) -> None:
    """The finished runs (and search trials) kept although stale, and the command
    that reruns them: printed even with --quiet, since they are not today's code's."""
    from ftbench.results.provenance import stale_why, summarise_stale

    again = f"`ftbench run {suite_path} --results {folder} --rerun-stale` reruns them"
    if outcome.stale:
        click.echo(f"warning: {summarise_stale(outcome.stale, outcome.skipped)}, kept as finished; {again}",
                   err=True)
    if outcome.stale_trials:
        click.echo(f"warning: {len(outcome.stale_trials)} search trials reused although stale "
                   f"({stale_why(outcome.stale_trials)}); {again} (which may change a selection)", err=True)


@contextmanager
def _sigterm_interrupts():
    """SIGTERM stops a run like Ctrl-C does (as `Terminated`), in the main thread."""
    import signal
    import threading

    from ftbench.errors import Terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(ctx: click.Context, exc: KeyboardInterrupt, folder: Path) -> None:
    """Exit 130 on Ctrl-C, 143 on SIGTERM, saying what is kept."""
    from ftbench.errors import Terminated

    what = "terminated" if isinstance(exc, Terminated) else "interrupted"
    click.echo(f"\n{what}: finished runs are kept in {folder}; runs in flight were abandoned. "
               "`ftbench run` again resumes.", err=True)
    ctx.exit(143 if isinstance(exc, Terminated) else 130)


@click.command()
@click.argument("suite_path", metavar="SUITE", type=click.Path(dir_okay=False))
@click.option("--device", help="Device for pretraining [default: the suite's].")
@click.pass_context
def pretrain(ctx: click.Context, suite_path: str, device: str | None) -> None:
    """Train (or reuse from the cache) the suite's `pretrain:` backbones.

    \b
    Example:
        FTBENCH_CACHE=~/ftbench-cache ftbench pretrain suites/quickstart.yaml
    """
    from ftbench.engine import checkpoints
    from ftbench.engine.pretrain import pretrain_suite
    from ftbench.suite.load import load_suite

    registry = command_registry(ctx)
    suite = load_suite(suite_path, registry)
    if not suite.pretrain:
        raise UserInputError(f"{suite_path} has no `pretrain:` section; nothing to pretrain")
    keys = pretrain_suite(suite, registry, device=device)
    for name, key in keys.items():
        click.echo(f"{name}\tftbench:{key}\t{checkpoints.checkpoint_dir(key)}")
