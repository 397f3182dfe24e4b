"""`ftbench reproduce REFERENCE`: rerun a results folder and judge selection and
training apart, under the rule the records' fingerprints call for (ftbench.gate.reproduce).

Exit codes: 0 pass, 1 fail, 2 bad input.
"""

from __future__ import annotations

from pathlib import Path

import click

from ftbench.cli.common import plugin_modules, registry as command_registry


def _seeds(ctx, param, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"'{value}': give seeds as a comma-separated list, e.g. 0,1") from None


@click.command("reproduce")
@click.argument("reference", type=click.Path(exists=True, file_okay=False))
@click.option("--results", type=click.Path(file_okay=False), default="results/reproduce", show_default=True,
              help="Fresh folder the rerun writes to.")
@click.option("--seeds", callback=_seeds, metavar="S1,S2", help="Rerun only these of the reference's final seeds.")
@click.option("--only", "only", multiple=True, metavar="KEY=VALUE",
              help="Rerun only runs with this label: backbone, dataset, strategy, data or seed (as `ftbench run`).")
@click.option("--margin", type=click.FloatRange(min=0, min_open=True),
              help="Equivalence margin in points for every cell, across fingerprints  [default: derived from "
                   "each cell's seed spread].")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Level of the drop test and of the TOST.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Run N runs at once (local process pool).")
@click.option("--resume", is_flag=True, help="Go on with an interrupted reproduction in --results.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or log lines.")
@click.pass_context
def reproduce(ctx: click.Context, reference: str, results: str, seeds: list[int] | None, only: tuple[str, ...],
              margin: float | None, alpha: float, jobs: int | None, resume: bool, quiet: bool) -> None:
    """Rerun a REFERENCE results folder and say whether selection and training reproduce.

    It reruns the reference's suite (its suite.resolved.yaml) into a fresh folder:
    the search, whose selections it tables against the reference's, then the
    final seeds at the REFERENCE's selected values. Where both sides share one
    machine fingerprint every seed must be equal; elsewhere each cell must show
    no significant drop and means equivalent within a margin (TOST). The verdict
    names the rule and why. Exit codes: 0 pass, 1 fail, 2 bad input.

    \b
    Example:
        ftbench reproduce results/reference/quickstart
        ftbench reproduce results/reference/quickstart --seeds 0,1 --only strategy=full
    """
    from ftbench import api
    from ftbench.driver.selection import parse_only
    from ftbench.gate.reproduce import render

    # a UserInputError reaches the command group, which turns it into exit 2
    outcome = api.reproduce(Path(reference), Path(results), seeds=seeds, only=parse_only(only), margin=margin,
                            alpha=alpha, jobs=jobs, resume=resume, quiet=quiet, registry=command_registry(ctx),
                            plugins=plugin_modules(ctx))
    click.echo(render(outcome))
    if outcome.failed:
        ctx.exit(1)
