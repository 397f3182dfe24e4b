"""`ftbench report`: statistics and tables over a results folder."""

from __future__ import annotations

from pathlib import Path

import click
from tabulate import tabulate_formats

from ftbench.cli.common import BadInput, registry as command_registry
from ftbench import stats
from ftbench.errors import FtbenchError, UserInputError
from ftbench.report.plots import write_plots
from ftbench.report.render import FORMATS, render
from ftbench.report import METRICS, TEST_SET, build_report
from ftbench.results.records import load_records


# Tabulate formats beyond those FORMATS already names (by their own name or tabulate's).
_OTHER_FORMATS = ", ".join(f for f in tabulate_formats
                           if f not in ("pipe", "github", "simple", "latex", "latex_booktabs"))


@click.command("report")
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="terminal", show_default=True, metavar="FORMAT",
              help=f"Output format: {', '.join(FORMATS)}, html (one self-contained page: sortable tables, "
                   f"SVG figures, the suite's config); or any tabulate format ({_OTHER_FORMATS}).")
@click.option("--baseline", default="full", show_default=True,
              help="Strategy that every other one is tested against, on matched seeds.")
@click.option("--scratch", default="scratch", show_default=True,
              help="Strategy whose accuracy at the largest data amount sets the data-efficiency target.")
@click.option("--interval", type=click.Choice(stats.INTERVALS), default="t", show_default=True,
              help="95% interval over seeds: Student-t, or a seeded percentile or BCa bootstrap.")
@click.option("--test", type=click.Choice(stats.TESTS), default="ttest", show_default=True,
              help="Paired test on matched seeds: t-test or Wilcoxon signed-rank.")
@click.option("--metric", type=click.Choice(METRICS), default="acc", show_default=True,
              help="Accuracy metric the tables use.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Significance level of the tests and markers.")
@click.option("--margin", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="Equivalence margin in points: TOST 'p ≈' and 'matches scratch@full' claim |Δ| < margin.")
@click.option("--test-set", "test_set", type=click.Choice(TEST_SET), default="include", show_default=True,
              help="include: test accuracies get two-level intervals and tests (seeds and the test set's examples "
                   "both sampled) where records hold per-example bits; ignore: seeds only.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write PNG figures into this folder (needs `pip install ftbench[plots]`).")
@click.option("--selection-threshold", "selection_threshold", type=click.FloatRange(0, 1, min_open=True),
              default=0.8, show_default=True,
              help="A searched cell whose selected values have a lower P(selected) is marked 'selection uncertain'.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the tables to this file instead of standard output.")
@click.pass_context
def report(ctx: click.Context, results_dir: Path, fmt: str, baseline: str, scratch: str, interval: str, test: str,
           metric: str, alpha: float, margin: float, test_set: str, plots_dir: Path | None,
           selection_threshold: float, output: Path | None) -> None:
    """Tables and statistics over the runs in RESULTS_DIR: accuracy with paired tests
    against a baseline, training time and cost, data efficiency, domain shift,
    forgetting, a summary per strategy and ranks across tasks. Cells with failed or
    missing seeds are listed, never silently averaged. The suite's primary
    comparisons (`primary:`, read from the folder's suite.resolved.yaml) come first.

    \b
    Example:

    \b
        ftbench report results/quickstart
        ftbench report results/quickstart --format markdown -o report.md --plots plots/
        ftbench report results/quickstart --baseline lp-ft --test wilcoxon --interval bca
        ftbench report results/quickstart --format html -o report.html
    """
    command_registry(ctx)  # a --plugin that cannot be imported is an error here as in every command
    try:
        from ftbench.driver.plan import check_folder
        from ftbench.results.provenance import report_notes

        records = load_records(results_dir)
        result = build_report(records, baseline=baseline, scratch=scratch, interval=interval,
                              test=test, alpha=alpha, metric=metric, margin=margin, test_set=test_set,
                              primary=_primary(results_dir), selection_threshold=selection_threshold,
                              runner_up=_runner_up(results_dir))
        result.table("summary").notes.extend(report_notes(records))  # hardware-dependent, near chance
        text = _html(result, results_dir) if fmt == "html" else render(result, fmt)
        written = write_plots(result, plots_dir) if plots_dir else []
        # After a bad --format or --plots has been reported alone; `ftbench status` says the same.
        for line in check_folder(results_dir, lambda: command_registry(ctx), records).lines():
            click.echo(f"warning: {line}", err=True)
    except UserInputError as exc:
        raise BadInput(str(exc)) from exc
    except FtbenchError as exc:
        raise click.ClickException(str(exc)) from exc
    if output:
        try:
            output.write_text(text)
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc.strerror}; choose another file with -o") from exc
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
    if plots_dir:
        click.echo(f"wrote {len(written)} figure(s) to {plots_dir}", err=True)


def _primary(results_dir: Path) -> list[dict]:
    """The suite's primary comparisons, from the results folder's resolved suite (none without one)."""
    import yaml

    from ftbench.results.store import RESOLVED_SUITE

    suite = results_dir / RESOLVED_SUITE
    try:
        raw = yaml.safe_load(suite.read_text()) if suite.exists() else None
    except (OSError, yaml.YAMLError) as exc:
        raise UserInputError(f"cannot read {suite}: {exc}; rerun `ftbench run` to rewrite it") from exc
    primary = (raw or {}).get("primary") if isinstance(raw, dict) else None
    return primary if isinstance(primary, list) else []


def _runner_up(results_dir: Path) -> list[dict]:
    """The runs at uncertain cells' runner-up values (`search.final_top: 2`), if any."""
    from ftbench.results.selection import RUNNER_UP_FOLDER

    folder = results_dir / RUNNER_UP_FOLDER
    return list(load_records(folder)) if folder.is_dir() else []


def _html(result, results_dir: Path) -> str:
    from ftbench.report.html import render_html
    from ftbench.results.store import RESOLVED_SUITE

    suite = results_dir / RESOLVED_SUITE
    return render_html(result, suite_yaml=suite.read_text() if suite.exists() else None,
                       title=f"ftbench report: {results_dir.name}")
