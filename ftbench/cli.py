"""The `ftbench` command line: a thin layer over the core.

Domain errors become `Error: ...` messages: bad input exits 2, failed work exits 1.
Log lines go to stderr, tables to stdout.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click
from tabulate import tabulate

from ftbench.cli_errors import BadInput
from ftbench import __version__
from ftbench.components import KINDS
from ftbench.errors import FtbenchError, UserInputError
from ftbench.plugins import PLURALS


#: Commands in their own modules, imported only when used: their modules import
#: scipy and the report code, which `ftbench --help` and `ftbench list` need not pay
#: for. The short help is what `--help` shows without importing them (a test checks
#: that it matches each command's docstring).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "baseline": ("ftbench.cli_gate:baseline", "Save results as a baseline for `ftbench compare`."),
    "compare": ("ftbench.cli_gate:compare_cmd", "Compare CURRENT results against a BASELINE; exit 1 on a regression."),
    "new": ("ftbench.cli_gate:new", "Create an installable plugin package that adds one KIND named NAME."),
    "reproduce": ("ftbench.cli_reproduce:reproduce", "Rerun a REFERENCE results folder and say whether selection "
                  "and training reproduce."),
    "report": ("ftbench.cli_report:report", "Tables and statistics over the runs in RESULTS_DIR: accuracy with "
               "paired tests against a baseline, training time and cost, data efficiency, domain shift, "
               "forgetting, a summary per strategy and ranks across tasks."),
}


class _Group(click.Group):
    """Turns domain errors raised by any command into click errors, and imports the
    `LAZY_COMMANDS` when they are called."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in LAZY_COMMANDS:
            import importlib

            module, _, attr = LAZY_COMMANDS[name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)  # as click's own
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is None:
                rows.append((name, click.Command(name, help=LAZY_COMMANDS[name][1]).get_short_help_str(limit)))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit=limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserInputError as exc:
            raise BadInput(str(exc)) from exc
        except FtbenchError as exc:
            raise click.ClickException(str(exc)) from exc


def _registry(ctx: click.Context):
    from ftbench.plugins import Registry, make_plugin_manager, use_registry

    obj = ctx.find_root().ensure_object(dict)  # a command invoked on its own has no group's obj
    obj.setdefault("plugins", ())
    if obj.get("registry") is None:
        obj["registry"] = Registry(make_plugin_manager(extra=obj["plugins"]))
        use_registry(obj["registry"])
        for broken in obj["registry"].broken:  # skipped, so that everything else still works
            click.echo(f"warning: {broken.message()}", err=True)
    return obj["registry"]


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="ftbench")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="Also load this importable module as a plugin (repeatable).")
@click.pass_context
def cli(ctx: click.Context, plugins: tuple[str, ...]) -> None:
    """Benchmark ways of fine-tuning pretrained models.

    Example:

        ftbench run suites/quickstart.yaml && ftbench report results/quickstart
    """
    ctx.ensure_object(dict)
    ctx.obj.setdefault("plugins", plugins)
    ctx.obj.setdefault("registry", None)


# ---------------------------------------------------------------- list

_PLURAL = {v: k for k, v in PLURALS.items()}


def _default(field) -> str:
    return "required" if field.is_required() else repr(field.get_default(call_default_factory=True))


def _param_summary(comp) -> str:
    parts = [f"{field.alias or name}={_default(field)}"  # a suite writes the alias (lwf's `lambda`)
             for name, field in comp.params.model_fields.items()]
    return ", ".join(parts) or "-"


def _type_name(tp) -> str:
    """A field's type as a suite author reads it: `int | null`, `'ulmfit' | 'layer-decay'`."""
    import types
    import typing

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "null"
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(tp, "__name__", str(tp))


def _show_component(comp, kind: str) -> None:
    click.echo(f"{comp.name} ({kind}, from {comp.provider})")
    click.echo(f"  {comp.description or comp.summary()}")
    fields = comp.params.model_fields
    if fields:
        rows = [(f.alias or n, _type_name(f.annotation), _default(f), f.description or "")
                for n, f in fields.items()]
        click.echo()
        click.echo(tabulate(rows, headers=["parameter", "type", "default", "description"],
                            maxcolwidths=[None, 30, 24, 70]))
    else:
        click.echo("  no parameters")
    if comp.notes:
        click.echo()
        click.echo(comp.notes.rstrip())


@cli.command("list")
@click.argument("kind", required=False, type=click.Choice(sorted(_PLURAL)))
@click.argument("name", required=False)
@click.option("--groups", metavar="MODEL", help="Show the layer groups of this backbone model (timm name).")
@click.option("--backbone", "backbone_name", default="timm", show_default=True,
              help="Backbone component that --groups builds the model with.")
@click.pass_context
def list_cmd(ctx: click.Context, kind: str | None, name: str | None, groups: str | None, backbone_name: str) -> None:
    """List components: name, provider, description and parameters with defaults.

    With a NAME, one component in full: each parameter's type, default and
    description, and notes such as a dataset's folder layout.

    Example:

        ftbench list strategies
        ftbench list datasets imagefolder
        ftbench list backbones --groups resnet18
    """
    registry = _registry(ctx)
    if groups:
        _show_groups(registry, backbone_name, groups)
        return
    if name:
        if not kind:
            raise BadInput("give the kind before the name, e.g. `ftbench list datasets imagefolder`")
        _show_component(registry.get(_PLURAL[kind], name), _PLURAL[kind])
        return
    kinds = [_PLURAL[kind]] if kind else list(KINDS)
    for k in kinds:
        rows = [(c.name, c.provider, c.summary(), _param_summary(c)) for c in registry.all(k)]
        if not rows:
            if kind:  # asked for: say so; in the overview an empty kind is noise
                click.echo(f"no {PLURALS[k]} installed")
            continue
        click.echo(f"{PLURALS[k]} ({len(rows)})")
        click.echo(tabulate(rows, headers=["name", "provider", "description", "parameters"], maxcolwidths=[None, 28, 48, 60]))
        click.echo()
    if not name and kind:
        click.echo(f"`ftbench list {kind} NAME` shows one in full.")


def _show_groups(registry, backbone_name: str, model: str) -> None:
    comp = registry.get("backbone", backbone_name)
    try:
        params = comp.params.model_validate({"model": model, "pretrained": "none"})
    except Exception as exc:
        raise UserInputError(f"backbone '{backbone_name}' cannot build '{model}': {exc}") from exc
    backbone = comp.factory(params, num_classes=10, seed=0)
    named = dict(backbone.model.named_parameters())
    rows = [(i, g.name, len(g.params), sum(named[p].numel() for p in g.params)) for i, g in enumerate(backbone.groups)]
    click.echo(tabulate(rows, headers=["depth", "group", "tensors", "parameters"]))
    click.echo(f"data config: {backbone.data_config}")


# ---------------------------------------------------------------- validate / run

AFTER_SEARCH = "(after search)"  # the id of a run whose values its cell's search has yet to select


def _runs_table(specs, store, waiting: set[str] = frozenset()) -> str:
    """Each run with its id and state; a run in `waiting` (ids of runs whose cell's
    search is unfinished) has no id yet."""
    from ftbench.provenance import stale_reason

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
    from ftbench.search import TRIALS_FOLDER, cell_key, oracle_strategies, plan_search, planned_trials, searches
    from ftbench.store import ResultsStore
    from ftbench.suite import search_budgets, total_budget, unequal_budgets

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
    if suite.pretrain:
        click.echo(f"pretraining jobs: {', '.join(suite.pretrain)} (trained once, then cached)")
    if searched:
        click.echo()
        click.echo(_search_table(plans))
        click.echo(f"\n{planned_trials(suite, specs, plans)}")
        budgets = search_budgets(suite)
        if len({t * n for t, n in budgets.values()}) > 1:  # refused unless allowed
            click.echo(f"warning: unequal tuning budgets (allow_unequal_budget): {unequal_budgets(budgets)}; "
                       "the report notes it", err=True)
        if oracle := oracle_strategies(suite):
            click.echo(f"warning: {', '.join(oracle)} select hyperparameters on TEST accuracy (`select: oracle`): "
                       "optimistic, not a fair comparison; records and the report label them ORACLE", err=True)


def _results_dir(results: str | None, suite) -> Path:
    return Path(results) if results else Path("results") / suite.name


@cli.command()
@click.argument("suite_path", metavar="SUITE", type=click.Path(dir_okay=False))
@click.option("--results", type=click.Path(file_okay=False), help="Results folder [default: results/<suite name>].")
@click.pass_context
def validate(ctx: click.Context, suite_path: str, results: str | None) -> None:
    """Check a suite and print its expanded runs, their count and total budget.

    Every problem is reported at once: the schema, component names and
    parameters, and the environment (data folders, weights files, Hub weights
    when offline, a GPU for `device: cuda`). Exits 2 when there is one.

    Example:

        ftbench validate suites/quickstart.yaml
    """
    from ftbench.store import ResultsStore
    from ftbench.suite import expand, load_suite

    registry = _registry(ctx)
    suite = load_suite(suite_path, registry, environment=True)
    specs = expand(suite, registry)
    _summarise_plan(specs, ResultsStore(_results_dir(results, suite)), suite, registry)
    click.echo(f"{suite_path}: valid")


@cli.command()
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

    Example:

        ftbench run suites/quickstart.yaml -j 2
        ftbench run suites/quickstart.yaml -o train.lr=0.01 -o seeds=[0,1]
        ftbench run suites/quickstart.yaml --only strategy=lp-ft --only seed=0 --rerun
        ftbench run suites/quickstart.yaml --rerun-stale
    """
    from ftbench.driver import parse_only, run_suite, select_runs
    from ftbench.store import ResultsStore
    from ftbench.suite import expand, load_suite

    registry = _registry(ctx)
    suite = load_suite(suite_path, registry, overrides, environment=True, device=device)
    suite = _with_loggers(suite, loggers, registry)
    folder = _results_dir(results, suite)
    subset = parse_only(only)
    if dry_run:
        _summarise_plan(select_runs(expand(suite, registry), subset), ResultsStore(folder), suite, registry)
        return
    params = {}
    if jobs:
        executor = executor or "pool"
        params["workers"] = jobs
    try:
        with _sigterm_interrupts():
            outcome = run_suite(suite, registry, folder, executor_name=executor, executor_params=params or None,
                                rerun=rerun, quiet=quiet, plugins=ctx.find_root().obj["plugins"], device=device,
                                rerun_stale=rerun_stale, only=subset, calibrate=calibrate)
    except KeyboardInterrupt as exc:
        _interrupted(ctx, exc, folder)
    ok = len(outcome.records) - len(outcome.failed)
    stale = f" ({len(outcome.stale)} of them stale)" if outcome.stale else ""
    click.echo(f"{suite.name}: {outcome.planned} runs; {outcome.skipped} already finished{stale}, {ok} ok, "
               f"{len(outcome.failed)} failed or diverged, {len(outcome.claimed_elsewhere)} held by another "
               f"driver. Records: {folder}", err=True)
    for rec in outcome.failed:
        err = rec.get("error") or {}
        click.echo(f"  {rec['status']}: {rec['id']} {rec['cell']} seed {rec['seed']}: "
                   f"{err.get('type')}: {outcome.explain(err.get('message'))}", err=True)
    for run_id in outcome.claimed_elsewhere:
        click.echo(f"  held by another driver: {run_id} (claim file {ResultsStore(folder).claim_path(run_id)}); "
                   "rerun `ftbench run` once that driver is done", err=True)
    _say_stale(outcome, suite_path, folder)
    if outcome.failed or outcome.claimed_elsewhere or outcome.search_failed:
        ctx.exit(1)


def _say_stale(outcome, suite_path: str, folder: Path) -> None:
    """The finished runs (and search trials) kept although stale, and the command
    that reruns them: printed even with --quiet, since they are not today's code's."""
    from ftbench.provenance import stale_why, summarise_stale

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


def _with_loggers(suite, names: tuple[str, ...], registry):
    """The suite plus the `--logger` names it does not enable already."""
    from ftbench.suite import ComponentRef

    for name in names:
        registry.get("logger", name)
    have = {ref.name for ref in suite.loggers}
    extra = [ComponentRef(name=n) for n in dict.fromkeys(names) if n not in have]
    return suite.model_copy(update={"loggers": [*suite.loggers, *extra]}) if extra else suite


@cli.command()
@click.argument("suite_path", metavar="SUITE", type=click.Path(dir_okay=False))
@click.option("--device", help="Device for pretraining [default: the suite's].")
@click.pass_context
def pretrain(ctx: click.Context, suite_path: str, device: str | None) -> None:
    """Train (or reuse from the cache) the suite's `pretrain:` backbones.

    Example:

        FTBENCH_CACHE=~/ftbench-cache ftbench pretrain suites/quickstart.yaml
    """
    from ftbench import checkpoints
    from ftbench.pretrain import pretrain_suite
    from ftbench.suite import load_suite

    registry = _registry(ctx)
    suite = load_suite(suite_path, registry)
    if not suite.pretrain:
        raise UserInputError(f"{suite_path} has no `pretrain:` section; nothing to pretrain")
    keys = pretrain_suite(suite, registry, device=device)
    for name, key in keys.items():
        click.echo(f"{name}\tftbench:{key}\t{checkpoints.checkpoint_dir(key)}")


@cli.command()
@click.argument("results", type=click.Path(file_okay=False))
@click.pass_context
def status(ctx: click.Context, results: str) -> None:
    """Show done, running, failed and pending runs of a results folder, how many
    finished ones are stale (older code or another thread count: `ftbench run
    --rerun-stale`) and how many records are orphaned (no longer runs of the
    suite: `ftbench prune`), and the machine fingerprints the records come from.

    Example:

        ftbench status results/quickstart
    """
    from ftbench.fingerprint import summarise as summarise_fingerprints
    from ftbench.freshness import check_folder
    from ftbench.store import ResultsStore

    folder = Path(results)
    fresh = check_folder(folder, lambda: _registry(ctx), quiet=False)
    claims = ResultsStore(folder).claims()
    counts: dict[str, int] = {}
    for run_id in fresh.ids:
        record = fresh.records.get(run_id)
        state = "running" if run_id in claims else record["status"] if record else "pending"
        counts[state] = counts.get(state, 0) + 1
    rows = [(k, counts.get(k, 0)) for k in ("ok", "running", "failed", "diverged", "skipped", "pending")]
    rows += [("stale", len(fresh.stale)), ("orphaned", len(fresh.orphaned))]
    click.echo(tabulate(rows, headers=["state", "runs"]))
    if fresh.planned is not None:
        click.echo(f"{len(fresh.ids)} runs planned")
    else:
        click.echo(f"{len(fresh.ids)} records ({fresh.unknown})")
    if machines := summarise_fingerprints([fresh.records[i] for i in fresh.ids if i in fresh.records]):
        click.echo(machines)
    for line in fresh.lines():
        click.echo(line)


@cli.command()
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option("--dry-run", is_flag=True, help="Name the records that would move; move nothing.")
@click.pass_context
def prune(ctx: click.Context, results: str, dry_run: bool) -> None:
    """Move the orphaned records of a results folder (and orphaned search trials)
    into RESULTS/archive/<time>/: records whose ids are no longer runs of the
    saved suite (a default, a param or an entry changed), which `ftbench run`
    never reruns and `ftbench status` counts as orphaned. Nothing is deleted.

    Example:

        ftbench prune results/quickstart
    """
    from ftbench.freshness import check_folder, prune as archive

    fresh = check_folder(Path(results), lambda: _registry(ctx))
    if fresh.planned is None:
        raise UserInputError(f"cannot tell which records of {results} are orphaned: {fresh.unknown}")
    moving = len(fresh.orphaned) + len(fresh.trials_orphaned)
    if dry_run or not moving:
        for run_id in fresh.orphaned + [f"trials/{i}" for i in fresh.trials_orphaned]:
            click.echo(f"would move {run_id}")
        click.echo(f"{moving} orphaned records in {results}" + ("; nothing moved (--dry-run)" if moving else ""))
        return
    dest = archive(fresh)
    click.echo(f"moved {len(fresh.orphaned)} orphaned records and {len(fresh.trials_orphaned)} orphaned search "
               f"trials to {dest}")


def main() -> None:
    cli(obj={}, prog_name="ftbench")


if __name__ == "__main__":
    sys.exit(main())
