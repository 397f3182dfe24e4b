"""CLI commands of the regression gate (`ftbench baseline save`, `ftbench compare`);
the `ftbench` group adds them (`LAZY_COMMANDS`).

Exit codes: 0 pass, 1 regression, 2 bad input.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from ftbench.cli.common import BadInput, registry as command_registry
from ftbench import gate
from ftbench.errors import UserInputError
from ftbench.results.records import load_records


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except UserInputError as exc:
        raise BadInput(str(exc)) from exc


@click.group()
def baseline() -> None:
    """Save results as a baseline for `ftbench compare`."""


@baseline.command("save")
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Baseline file to write (JSON); commit it next to the suite.")
def save(results: str, output: str) -> None:
    """Save the ok runs of a results folder as a compact baseline file.

    It keeps, per cell, the seeds, the test metrics and samples/s per seed, the
    environment the runs shared, and the calibration loop's speed when the runs
    were made with `ftbench run --calibrate`.

    \b
    Example:
        ftbench baseline save results/quickstart -o results/baselines/quickstart.json
    """
    with _user_errors():
        from ftbench.driver.calibrate import read_calibration

        data = gate.save_baseline(load_records(results), output, read_calibration(results))
    n_runs = sum(len(c["seeds"]) for c in data["cells"])
    click.echo(f"wrote {output}: {len(data['cells'])} cell(s), {n_runs} ok run(s)")


@click.command("compare")
@click.argument("baseline_path", metavar="BASELINE", type=click.Path(exists=True))
@click.argument("current_path", metavar="CURRENT", type=click.Path(exists=True))
@click.option("--acc-drop", type=float, help="Points the mean may drop before it counts.  [default: 1.0]")
@click.option("--alpha", type=float, help="Level of the one-sided Welch t-test.  [default: 0.05]")
@click.option("--speed-ratio", type=float,
              help="Current/baseline samples/s below this is a regression.  [default: 0.9]")
@click.option("--metric", type=click.Choice(gate.BASELINE_METRICS), help="Test metric to compare.  [default: acc]")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="YAML or TOML file with acc_drop, alpha, speed_ratio, metric, fail_on_missing; "
                   "flags override it.")
@click.option("--fail-on-missing/--no-fail-on-missing", default=None,
              help="Fail when a baseline cell has no ok runs in CURRENT.  [default: report only]")
@click.option("--format", "fmt", type=click.Choice(["terminal", "markdown", "github"]), default="terminal",
              show_default=True,
              help="github: markdown to $GITHUB_STEP_SUMMARY plus ::error/::warning annotations.")
@click.option("--max-seeds", type=click.IntRange(min=2),
              help="Judge accuracy sequentially on the seeds both sides ran, and run up to N seeds of each "
                   "ambiguous cell of a CURRENT results folder before deciding (the baseline must hold those "
                   "seeds). Config: more_seeds: {min, max, step}.")
@click.option("--allow-stale", is_flag=True,
              help="Compare a CURRENT results folder even when some of its records are stale (older code or "
                   "thread count than installed) or orphaned (no longer runs of its suite).")
@click.pass_context
def compare_cmd(ctx: click.Context, baseline_path: str, current_path: str, acc_drop: float | None,
                alpha: float | None, speed_ratio: float | None, metric: str | None, config_path: str | None,
                fail_on_missing: bool | None, fmt: str, max_seeds: int | None, allow_stale: bool) -> None:
    """Compare CURRENT results against a BASELINE; exit 1 on a regression.

    BASELINE and CURRENT are each a baseline file or a results folder. A cell
    regresses when its mean test accuracy drops by more than --acc-drop points
    and a one-sided Welch t-test over seeds gives p < --alpha, or when its
    throughput falls below --speed-ratio of the baseline on the same device.
    A CURRENT results folder must hold today's runs of its suite: a record made
    by other code than installed (or another thread count), or one its suite no
    longer plans, is refused (exit 2, naming why) unless --allow-stale.
    With --max-seeds (or `more_seeds:` in the config) accuracy is judged
    sequentially on matched seeds, and an ambiguous cell of a CURRENT results
    folder gets more seeds, run there, before the gate decides (docs/ci.md).
    Exit codes: 0 pass, 1 regression, 2 bad input.

    \b
    Example:
        ftbench compare results/baselines/quickstart.json results/quickstart --format github
        ftbench compare results/baselines/ci.json results/ci --max-seeds 10
    """
    with _user_errors():
        tolerances = gate.load_tolerances(config_path, acc_drop=acc_drop, alpha=alpha, speed_ratio=speed_ratio,
                                          metric=metric, fail_on_missing=fail_on_missing)
        if Path(current_path).is_dir():
            _refuse_stale(ctx, Path(current_path), allow_stale)
        if max_seeds is not None:
            tolerances = _with_max_seeds(tolerances, max_seeds)
        base = gate.load_side(baseline_path)
        comparison = gate.compare(base, gate.load_side(current_path), tolerances)
        if tolerances.more_seeds is not None and Path(current_path).is_dir():
            comparison = _add_seeds(ctx, base, Path(current_path), tolerances, comparison)
    if fmt == "github":
        gate.write_github(comparison, click.echo)
    elif fmt == "markdown":
        click.echo(gate.render_markdown(comparison), nl=False)
    else:
        click.echo(gate.render_terminal(comparison))
    if comparison.failed:
        click.get_current_context().exit(1)


def _with_max_seeds(tolerances, max_seeds: int):
    """The tolerances with `more_seeds.max` = max_seeds (defaults for the rest)."""
    from dataclasses import replace

    from ftbench.gate.more_seeds import MoreSeeds

    m = tolerances.more_seeds or MoreSeeds()
    return replace(tolerances, more_seeds=MoreSeeds.parse({"min": min(m.min, max_seeds), "max": max_seeds,
                                                           "step": m.step}))


def _add_seeds(ctx: click.Context, base: dict, folder: Path, tolerances, comparison):
    """Run the next look's seeds of every ambiguous cell in `folder` (seeds the
    baseline holds, in its order) and judge again, until none is ambiguous, the cells
    are at max, or a round adds no matched seed (its runs failed); returns the last
    comparison."""
    from ftbench.gate.baseline import cell_labels

    base_cells = {cell_labels(c["cell"]): c for c in base["cells"]}
    looks = tolerances.more_seeds.looks
    current = gate.load_side(folder)
    while True:
        have = {cell_labels(c["cell"]): set(c["seeds"]) for c in current["cells"]}
        want: dict[tuple[str, ...], list[int]] = {}
        for row in comparison.rows:
            j, key = row.seeded, cell_labels(row.cell)
            if j is None or j.verdict != "ambiguous" or j.last:
                continue
            goal = next((n for n in looks if n > j.n), looks[-1])
            extra = [s for s in base_cells[key]["seeds"] if s not in have.get(key, set())][:goal - j.n]
            if extra:
                want[key] = extra
            else:
                row.notes.append("the baseline holds no more seeds to add: save it from a run with more seeds")
        if not want:
            return comparison
        click.echo(f"more seeds: {len(want)} ambiguous cell(s), {sum(map(len, want.values()))} run(s) in {folder}",
                   err=True)
        matched_before = {cell_labels(r.cell): r.seeded.n for r in comparison.rows if r.seeded is not None}
        _run_seeds(ctx, folder, want)
        current = gate.load_side(folder)
        comparison = gate.compare(base, current, tolerances)
        if not any(r.seeded is not None and r.seeded.n > matched_before.get(cell_labels(r.cell), 0)
                   for r in comparison.rows if cell_labels(r.cell) in want):
            return comparison


def _run_seeds(ctx: click.Context, folder: Path, want: dict[tuple[str, ...], list[int]]) -> None:
    """Run these seeds of these cells (backbone, dataset, strategy, data labels) with
    the folder's own suite, which then plans them (its seeds gain them, excluded but
    for these cells), so `ftbench status` and later gates see them as its runs."""
    import yaml

    from ftbench.driver.suite_run import run_suite
    from ftbench.errors import FtbenchError
    from ftbench.results.store import RESOLVED_SUITE
    from ftbench.suite.schema import MatrixRule, Suite

    path = folder / RESOLVED_SUITE
    if not path.exists():
        raise UserInputError(f"{folder} has no {RESOLVED_SUITE}, so its runs cannot be extended; run the suite "
                             "with `ftbench run` into it, or compare without --max-seeds")
    suite = Suite.model_validate(yaml.safe_load(path.read_text()))
    if suite.adaptive is not None:
        raise UserInputError(f"{folder}'s suite has adaptive seeds; the gate adds seeds only to a suite with a "
                             "list of seeds")
    new = sorted({s for seeds in want.values() for s in seeds} - set(suite.seeds))
    include = [MatrixRule(backbone=b, dataset=d, strategy=st, data=da, seed=s)
               for (b, d, st, da), seeds in sorted(want.items()) for s in seeds]
    wider = suite.model_copy(update={"seeds": [*suite.seeds, *new],
                                     "exclude": [*suite.exclude, *(MatrixRule(seed=s) for s in new)],
                                     "include": [*suite.include, *include]})
    try:
        run_suite(wider, command_registry(ctx), folder, quiet=True)
    except FtbenchError as exc:
        raise click.ClickException(str(exc)) from exc


def _refuse_stale(ctx: click.Context, current: Path, allow: bool) -> None:
    """Refuse (UserInputError) a CURRENT folder whose records are not today's runs
    of its suite; with `allow`, say so on stderr and go on."""
    from ftbench.driver.plan import check_folder
    from ftbench.results.store import RESOLVED_SUITE

    fresh = check_folder(current, lambda: command_registry(ctx))
    if fresh.planned is None and (current / RESOLVED_SUITE).exists():  # a suite, but not expandable here
        click.echo(f"warning: {current}: orphaned records cannot be told apart: {fresh.unknown}", err=True)
    lines = fresh.lines()
    if not lines:
        return
    if allow:
        for line in lines:
            click.echo(f"warning: {line} (compared anyway: --allow-stale)", err=True)
        return
    raise UserInputError(f"CURRENT {current} holds records that are not today's runs of its suite, so a PASS "
                         "would not be about the code installed: " + "; ".join(lines)
                         + ". Rerun them, or pass --allow-stale to compare them anyway")
