"""`ftbench report`: statistics and tables over a results folder."""

from __future__ import annotations

from pathlib import Path

import click
from tabulate import tabulate_formats

from ftbench import api, stats
from ftbench.cli.common import BadInput, registry as command_registry
from ftbench.errors import FtbenchError, UserInputError
from ftbench.report.plots import write_plots
from ftbench.report.render import FORMATS
from ftbench.report import METRICS, TEST_SET

#: The page the default terminal view writes beside the records and points to.
FULL_REPORT = "report.html"
#: The tables the default terminal view prints (the rest are in the full report, or with --all):
#: the confirmatory questions, the summary, and the cells that miss seeds (never silently averaged).
FIRST_TABLES = ("primary", "summary", "adaptive", "incomplete")  # adaptive: only an adaptive study has it


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
@click.option("--all", "show_all", is_flag=True,
              help=f"In the terminal, print every table (by default: the primary comparisons and the summary, "
                   f"then the path of the full report, RESULTS_DIR/{FULL_REPORT}, which it writes).")
@click.pass_context
def report(ctx: click.Context, results_dir: Path, fmt: str, baseline: str, scratch: str, interval: str, test: str,
           metric: str, alpha: float, margin: float, test_set: str, plots_dir: Path | None,
           selection_threshold: float, output: Path | None, show_all: bool) -> None:
    """Tables and statistics over the runs in RESULTS_DIR: accuracy with paired tests
    against a baseline, training time and cost, data efficiency, domain shift,
    forgetting, a summary per strategy and ranks across tasks. Cells with failed or
    missing seeds are listed, never silently averaged. The suite's primary
    comparisons (`primary:`, read from the folder's suite.resolved.yaml) come first.
    In the terminal it prints those, the summary and the incomplete cells, then
    writes the full report (figures and every table) to RESULTS_DIR/report.html
    and prints its path; --all prints every table instead.

    \b
    Example:

    \b
        ftbench report results/quickstart
        ftbench report results/quickstart --all
        ftbench report results/quickstart --format markdown -o report.md --plots plots/
        ftbench report results/quickstart --baseline lp-ft --test wilcoxon --interval bca
        ftbench report results/quickstart --format html -o report.html
    """
    registry = command_registry(ctx)  # a --plugin that cannot be imported is an error here as in every command
    short = fmt == "terminal" and output is None and not show_all
    try:
        study = api.load(results_dir, registry=registry)
        if note := study.records.skipped_note():
            click.echo(f"warning: {results_dir}: {note}", err=True)
        result = study.report(baseline=baseline, scratch=scratch, interval=interval, test=test, alpha=alpha,
                              metric=metric, margin=margin, test_set=test_set,
                              selection_threshold=selection_threshold)
        text = _first_screen(result, results_dir) if short else result.render(fmt)
        written = write_plots(result.report, plots_dir) if plots_dir else []
        # After a bad --format or --plots has been reported alone; `ftbench status` says the same.
        for line in study.freshness.lines():
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


def first_screen_text(result: api.StudyReport, width: int | None = None) -> str:
    """The tables the terminal shows first (`FIRST_TABLES`), as the terminal prints
    them, their notes wrapped to `width` (the terminal's, within 80..160)."""
    import dataclasses
    import shutil
    import textwrap

    from ftbench.report.core import Report
    from ftbench.report.render import render

    width = width or min(160, max(80, shutil.get_terminal_size((120, 40)).columns))
    out = []
    for table in (t for t in result.report.tables if t.key in FIRST_TABLES):
        bare = dataclasses.replace(table, notes=[])
        text = render(Report([bare], result.report.options, result.report.study), "terminal").rstrip("\n")
        notes = [line for note in table.notes
                 for line in textwrap.wrap(note, width, initial_indent="  ", subsequent_indent="    ")]
        out.append("\n".join([text, *notes]))
    return "\n\n".join(out) + "\n"


def _first_screen(result: api.StudyReport, results_dir: Path) -> str:
    """The primary comparisons and the summary, then the path of the full report
    (written beside the records; when it cannot be, how to see every table here)."""
    text = first_screen_text(result)
    page = results_dir / FULL_REPORT
    every = f"`ftbench report {results_dir} --all` prints every table here"
    try:
        page.write_text(result.html)
    except OSError as exc:
        return text + f"\nthe full report could not be written to {page} ({exc.strerror}); {every}\n"
    return text + f"\nfull report (figures and every table): {page}\n{every}\n"
