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

    obj = ctx.find_root().obj
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
    rows = []
    for s in specs:
        if s.id in waiting:
            rows.append((AFTER_SEARCH, *s.labels, s.data.label, s.seed, "tuned later"))
            continue
        rec = store.read(s.id)
        state = rec["status"] if rec else "pending"
        rows.append((s.id, *s.labels, s.data.label, s.seed, state))
    return tabulate(rows, headers=["id", "backbone", "dataset", "strategy", "data", "seed", "state"])


def _search_table(plans: dict) -> str:
    rows = [(*p.cell.values(), p.trial_runs, p.trials_done,
             _selected_text(p.selection) if p.selected else "after its trials") for p in plans.values()]
    return tabulate(rows, headers=["backbone", "dataset", "strategy", "data", "trial runs", "done", "selected"])


def _selected_text(selection: dict) -> str:
    values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in sorted(selection["selected"].items())) or "(suite's values)"
    return ("ORACLE (test): " if selection.get("select") == "oracle" else "") + values


def _summarise_plan(specs, store, suite, registry) -> None:
    """The runs (searched cells' at their selected values once their trials are
    all recorded), the search's trials, and the totals."""
    from ftbench.search import TRIALS_FOLDER, cell_key, oracle_strategies, plan_search, planned_trials, searches
    from ftbench.store import ResultsStore
    from ftbench.suite import total_budget

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
    click.echo(f"{suite.name}: {outcome.planned} runs; {outcome.skipped} already finished, {ok} ok, "
               f"{len(outcome.failed)} failed or diverged, {len(outcome.claimed_elsewhere)} held by another "
               f"driver. Records: {folder}", err=True)
    for rec in outcome.failed:
        err = rec.get("error") or {}
        click.echo(f"  {rec['status']}: {rec['id']} {rec['cell']} seed {rec['seed']}: "
                   f"{err.get('type')}: {outcome.explain(err.get('message'))}", err=True)
    for run_id in outcome.claimed_elsewhere:
        click.echo(f"  held by another driver: {run_id} (claim file {ResultsStore(folder).claim_path(run_id)}); "
                   "rerun `ftbench run` once that driver is done", err=True)
    if outcome.failed or outcome.claimed_elsewhere:
        ctx.exit(1)


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
def status(results: str) -> None:
    """Show done, running, failed and pending runs of a results folder, how many
    finished ones came from older code (stale: `ftbench run --rerun-stale`), and the
    machine fingerprints the records come from.

    Example:

        ftbench status results/quickstart
    """
    import yaml

    from ftbench.fingerprint import summarise as summarise_fingerprints
    from ftbench.provenance import stale_records, summarise_stale
    from ftbench.search import TRIALS_FOLDER, searches
    from ftbench.store import RESOLVED_SUITE, ResultsStore, load_records
    from ftbench.suite import Suite, expand

    folder = Path(results)
    records = {r["id"]: r for r in load_records(folder)}
    claims = ResultsStore(folder).claims()
    suite_file = folder / RESOLVED_SUITE
    planned = None
    if suite_file.exists():
        suite = Suite.model_validate(yaml.safe_load(suite_file.read_text()))
        registry = _registry(click.get_current_context())
        specs = expand(suite, registry)
        if searches(suite):  # searched cells' runs at their selected values
            from ftbench.search import plan_search

            specs, _ = plan_search(suite, specs, registry, ResultsStore(folder / TRIALS_FOLDER))
        planned = [s.id for s in specs]
    ids = planned if planned is not None else sorted(records)
    counts: dict[str, int] = {}
    for run_id in ids:
        state = "running" if run_id in claims else records[run_id]["status"] if run_id in records else "pending"
        counts[state] = counts.get(state, 0) + 1
    rows = [(k, counts.get(k, 0)) for k in ("ok", "running", "failed", "diverged", "skipped", "pending")]
    stale = stale_records([records[i] for i in ids if i in records])
    rows.append(("stale", len(stale)))
    click.echo(tabulate(rows, headers=["state", "runs"]))
    click.echo(f"{len(ids)} runs planned" if planned is not None else f"{len(ids)} records (no {RESOLVED_SUITE})")
    if machines := summarise_fingerprints([records[i] for i in ids if i in records]):
        click.echo(machines)
    if stale:
        click.echo(f"{summarise_stale(stale, len(ids))}; `ftbench run SUITE --results {folder} --rerun-stale` "
                   "reruns them")
    if (folder / TRIALS_FOLDER).is_dir():
        trials = load_records(folder / TRIALS_FOLDER, quiet=True)
        if stale_trials := stale_records(trials):
            click.echo(f"search trials: {summarise_stale(stale_trials, len(trials))}; --rerun-stale reruns them "
                       "too (which may change a selection)")


def main() -> None:
    cli(obj={}, prog_name="ftbench")


if __name__ == "__main__":
    sys.exit(main())
