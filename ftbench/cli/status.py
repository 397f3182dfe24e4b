"""`ftbench status` and `prune`: where a results folder stands, and archiving its
orphaned records."""

from __future__ import annotations

from pathlib import Path

import click
from tabulate import tabulate

from ftbench.cli.common import registry as command_registry
from ftbench.errors import UserInputError


@click.command()
@click.argument("results", type=click.Path(file_okay=False))
@click.pass_context
def status(ctx: click.Context, results: str) -> None:
    """Show done, running, failed and pending runs of a results folder, how many
    finished ones are stale (older code or another thread count: `ftbench run
    --rerun-stale`) and how many records are orphaned (no longer runs of the
    suite: `ftbench prune`), and the machine fingerprints the records come from.

    \b
    Example:
        ftbench status results/quickstart
    """
    from ftbench.driver.plan import check_folder
    from ftbench.fingerprint import summarise as summarise_fingerprints
    from ftbench.results.store import ResultsStore

    folder = Path(results)
    fresh = check_folder(folder, lambda: command_registry(ctx), quiet=False)
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
    if fresh.runner_up is not None:
        click.echo(_runner_up_status(fresh.runner_up, folder))
    if machines := summarise_fingerprints([fresh.records[i] for i in fresh.ids if i in fresh.records]):
        click.echo(machines)
    for line in fresh.lines():
        click.echo(line)


def _runner_up_status(plan, folder: Path) -> str:
    """The `search.final_top: 2` runs (in their own folder): planned, and by state."""
    from ftbench.results.selection import RUNNER_UP_FOLDER
    from ftbench.results.store import ResultsStore

    if plan.runs is None:
        return plan.describe(folder)
    kept = ResultsStore(folder / RUNNER_UP_FOLDER)
    states: dict[str, int] = {}
    for spec in plan.runs:
        record = kept.read(spec.id)
        state = record["status"] if record else "pending"
        states[state] = states.get(state, 0) + 1
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    return plan.describe(folder) + (f": {counts}" if counts else "")


@click.command()
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option("--dry-run", is_flag=True, help="Name the records that would move; move nothing.")
@click.pass_context
def prune(ctx: click.Context, results: str, dry_run: bool) -> None:
    """Move the orphaned records of a results folder (and orphaned search trials)
    into RESULTS/archive/<time>/: records whose ids are no longer runs of the
    saved suite (a default, a param or an entry changed), which `ftbench run`
    never reruns and `ftbench status` counts as orphaned. Nothing is deleted.

    \b
    Example:
        ftbench prune results/quickstart
    """
    from ftbench.driver.plan import check_folder
    from ftbench.results.freshness import prune as archive

    fresh = check_folder(Path(results), lambda: command_registry(ctx))
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
