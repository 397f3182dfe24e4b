"""CLI commands of the regression gate (`ftbench baseline save`, `ftbench compare`);
the `ftbench` group adds them (`LAZY_COMMANDS`).

Exit codes: 0 pass, 1 regression, 2 bad input.
"""

from __future__ import annotations

import click

from ftbench.cli.common import plugin_modules, registry as command_registry, user_errors
from ftbench import gate


@click.group()
def baseline() -> None:
    """Save results as a baseline for `ftbench compare`."""


@baseline.command("save")
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Baseline file to write (JSON); commit it next to the suite.")
@click.option("--speed-reps", type=click.IntRange(min=2),
              help="Also time N repetitions of the suite's cells with the installed code, each a fresh process "
                   "alternating the calibration loop and one run per cell, for a gate with `speed_reps:` "
                   "(docs/ci.md). Time it where the gate will run.")
@click.pass_context
def save(ctx: click.Context, results: str, output: str, speed_reps: int | None) -> None:
    """Save the ok runs of a results folder as a compact baseline file.

    It keeps, per cell, the seeds, the test metrics and samples/s per seed, the
    environment the runs shared, and the calibration loop's speed when the runs
    were made with `ftbench run --calibrate`. With --speed-reps, also the timing
    repetitions a sequential speed gate compares against.

    \b
    Example:
        ftbench baseline save results/quickstart -o results/baselines/quickstart.json
        ftbench baseline save results/ci -o results/baselines/ci.json --speed-reps 10
    """
    with user_errors():
        from ftbench import api

        data = api.save_baseline(results, output, speed_reps=speed_reps, plugins=plugin_modules(ctx),
                                 log=lambda line: click.echo(line, err=True))
    n_runs = sum(len(c["seeds"]) for c in data["cells"])
    timed = f", {speed_reps} timing repetitions ({data['speed']['machine']})" if speed_reps else ""
    click.echo(f"wrote {output}: {len(data['cells'])} cell(s), {n_runs} ok run(s){timed}")


@click.command("compare")
@click.argument("baseline_path", metavar="BASELINE", type=click.Path(exists=True))
@click.argument("current_path", metavar="CURRENT", type=click.Path(exists=True))
@click.option("--acc-drop", type=float, help="Points the mean may drop before it counts.  [default: 1.0]")
@click.option("--alpha", type=float, help="Level of the one-sided Welch t-test.  [default: 0.05]")
@click.option("--speed-ratio", type=float,
              help="Current/baseline samples/s below this is a regression.  [default: 0.9]")
@click.option("--metric", type=click.Choice(gate.BASELINE_METRICS), help="Test metric to compare.  [default: acc]")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="YAML or TOML file with acc_drop, alpha, speed_ratio, metric, fail_on_missing, "
                   "seed_tolerance, more_seeds, speed_reps; flags override it.")
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
    With `speed_reps:` in the config, speed is judged sequentially instead: the
    installed code is timed on CURRENT's suite (fresh processes alternating the
    calibration loop and one run per cell) against the baseline file's timing
    repetitions (`ftbench baseline save --speed-reps`), until each cell is decided.
    Exit codes: 0 pass, 1 regression, 2 bad input.

    \b
    Example:
        ftbench compare results/baselines/quickstart.json results/quickstart --format github
        ftbench compare results/baselines/ci.json results/ci --max-seeds 10
    """
    from ftbench import api

    with user_errors():
        tolerances = {k: v for k, v in (("acc_drop", acc_drop), ("alpha", alpha), ("speed_ratio", speed_ratio),
                                        ("metric", metric), ("fail_on_missing", fail_on_missing)) if v is not None}
        comparison = api.compare(baseline_path, current_path, config_path, allow_stale=allow_stale,
                                 registry=lambda: command_registry(ctx), max_seeds=max_seeds,
                                 plugins=plugin_modules(ctx),
                                 log=lambda line: click.echo(line, err=True), **tolerances)
    for line in comparison.warnings:
        click.echo(f"warning: {line}", err=True)
    if fmt == "github":
        gate.write_github(comparison, click.echo)
    elif fmt == "markdown":
        click.echo(gate.render_markdown(comparison), nl=False)
    else:
        click.echo(gate.render_terminal(comparison))
    if comparison.failed:
        click.get_current_context().exit(1)
