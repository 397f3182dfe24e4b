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


class _Group(click.Group):
    """Turns domain errors raised by any command into click errors."""

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


def _param_summary(comp) -> str:
    parts = []
    for name, field in comp.params.model_fields.items():
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        parts.append(f"{field.alias or name}={default}")  # a suite writes the alias (lwf's `lambda`)
    return ", ".join(parts) or "-"


@cli.command("list")
@click.argument("kind", required=False, type=click.Choice(sorted(_PLURAL)))
@click.option("--groups", metavar="MODEL", help="Show the layer groups of this backbone model (timm name).")
@click.option("--backbone", "backbone_name", default="timm", show_default=True,
              help="Backbone component that --groups builds the model with.")
@click.pass_context
def list_cmd(ctx: click.Context, kind: str | None, groups: str | None, backbone_name: str) -> None:
    """List components: name, provider, description and parameters with defaults.

    Example:

        ftbench list strategies
        ftbench list backbones --groups resnet18
    """
    registry = _registry(ctx)
    if groups:
        _show_groups(registry, backbone_name, groups)
        return
    kinds = [_PLURAL[kind]] if kind else list(KINDS)
    for k in kinds:
        rows = [(c.name, c.provider, c.summary(), _param_summary(c)) for c in registry.all(k)]
        click.echo(f"{k}s ({len(rows)})")
        click.echo(tabulate(rows, headers=["name", "provider", "description", "parameters"], maxcolwidths=[None, 28, 48, 60]))
        click.echo()


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

def _runs_table(specs, store) -> str:
    rows = []
    for s in specs:
        rec = store.read(s.id)
        state = rec["status"] if rec else "pending"
        rows.append((s.id, *s.labels, s.data.label, s.seed, state))
    return tabulate(rows, headers=["id", "backbone", "dataset", "strategy", "data", "seed", "state"])


def _summarise_plan(specs, store, suite) -> None:
    from ftbench.suite import total_budget

    click.echo(_runs_table(specs, store))
    done = sum(store.is_done(s.id) for s in specs)
    totals = ", ".join(f"{v:g} {k}" for k, v in total_budget(specs).items())
    click.echo(f"\n{len(specs)} runs ({done} finished, {len(specs) - done} to run); "
               f"budget per run: {suite.budget.model_dump(exclude_none=True)}; total at most: {totals}")
    if suite.pretrain:
        click.echo(f"pretraining jobs: {', '.join(suite.pretrain)} (trained once, then cached)")


def _results_dir(results: str | None, suite) -> Path:
    return Path(results) if results else Path("results") / suite.name


@cli.command()
@click.argument("suite_path", metavar="SUITE", type=click.Path(dir_okay=False))
@click.option("--results", type=click.Path(file_okay=False), help="Results folder [default: results/<suite name>].")
@click.pass_context
def validate(ctx: click.Context, suite_path: str, results: str | None) -> None:
    """Check a suite and print its expanded runs, their count and total budget.

    Example:

        ftbench validate suites/quickstart.yaml
    """
    from ftbench.store import ResultsStore
    from ftbench.suite import expand, load_suite

    registry = _registry(ctx)
    suite = load_suite(suite_path, registry)
    specs = expand(suite, registry)
    _summarise_plan(specs, ResultsStore(_results_dir(results, suite)), suite)
    click.echo(f"{suite_path}: valid")


@cli.command()
@click.argument("suite_path", metavar="SUITE", type=click.Path(dir_okay=False))
@click.option("--results", type=click.Path(file_okay=False), help="Results folder [default: results/<suite name>].")
@click.option("--dry-run", is_flag=True, help="Print the runs and their budget; run nothing.")
@click.option("--rerun", is_flag=True, help="Run finished runs again.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Run N runs at once (local process pool).")
@click.option("--executor", help="Executor component (`ftbench list executors`) [default: the suite's].")
@click.option("--device", help="Override the suite's device: auto, cpu, cuda, cuda:N, mps.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or log lines (CI).")
@click.pass_context
def run(ctx: click.Context, suite_path: str, results: str | None, dry_run: bool, rerun: bool,
        jobs: int | None, executor: str | None, device: str | None, quiet: bool) -> None:
    """Run every combination of a suite; finished runs are skipped.

    Exits 0 when every run is ok, 1 when some failed or diverged (the others
    still ran and their records are kept) or are held by another driver, 2 on a
    bad suite, 130 on Ctrl-C and 143 on SIGTERM (finished records are kept).

    Example:

        ftbench run suites/quickstart.yaml -j 2
    """
    from ftbench.driver import run_suite
    from ftbench.store import ResultsStore
    from ftbench.suite import expand, load_suite

    registry = _registry(ctx)
    suite = load_suite(suite_path, registry)
    folder = _results_dir(results, suite)
    if dry_run:
        _summarise_plan(expand(suite, registry), ResultsStore(folder), suite)
        return
    params = {}
    if jobs:
        executor = executor or "pool"
        params["workers"] = jobs
    try:
        with _sigterm_interrupts():
            outcome = run_suite(suite, registry, folder, executor_name=executor, executor_params=params or None,
                                rerun=rerun, quiet=quiet, plugins=ctx.find_root().obj["plugins"], device=device)
    except KeyboardInterrupt as exc:
        _interrupted(ctx, exc, folder)
    ok = len(outcome.records) - len(outcome.failed)
    click.echo(f"{suite.name}: {outcome.planned} runs; {outcome.skipped} already finished, {ok} ok, "
               f"{len(outcome.failed)} failed or diverged, {len(outcome.claimed_elsewhere)} held by another "
               f"driver. Records: {folder}", err=True)
    for rec in outcome.failed:
        err = rec.get("error") or {}
        click.echo(f"  {rec['status']}: {rec['id']} {rec['cell']} seed {rec['seed']}: "
                   f"{err.get('type')}: {err.get('message')}", err=True)
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
    """Show done, running, failed and pending runs of a results folder.

    Example:

        ftbench status results/quickstart
    """
    import yaml

    from ftbench.store import RESOLVED_SUITE, ResultsStore, load_records
    from ftbench.suite import Suite, expand

    folder = Path(results)
    records = {r["id"]: r for r in load_records(folder)}
    claims = ResultsStore(folder).claims()
    suite_file = folder / RESOLVED_SUITE
    planned = None
    if suite_file.exists():
        suite = Suite.model_validate(yaml.safe_load(suite_file.read_text()))
        planned = [s.id for s in expand(suite, _registry(click.get_current_context()))]
    ids = planned if planned is not None else sorted(records)
    counts: dict[str, int] = {}
    for run_id in ids:
        state = "running" if run_id in claims else records[run_id]["status"] if run_id in records else "pending"
        counts[state] = counts.get(state, 0) + 1
    rows = [(k, counts.get(k, 0)) for k in ("ok", "running", "failed", "diverged", "pending")]
    click.echo(tabulate(rows, headers=["state", "runs"]))
    click.echo(f"{len(ids)} runs planned" if planned is not None else f"{len(ids)} records (no {RESOLVED_SUITE})")


def _add_optional_commands() -> None:
    """Commands that live in their own modules."""
    from ftbench.cli_gate import COMMANDS
    from ftbench.cli_report import report

    for command in (report, *COMMANDS):
        cli.add_command(command)


_add_optional_commands()


def main() -> None:
    cli(obj={}, prog_name="ftbench")


if __name__ == "__main__":
    sys.exit(main())
