"""The report as data, for Python and notebooks (`ftbench.api`): `StudyReport`
wraps a `Report` with each table as a `ReportTable` (a pandas DataFrame in the
report CSV's long form or as shown, its notes, markdown, text and html), the
whole page as html, and `_repr_html_` so Jupyter shows the HTML report inline.
pandas is imported only when a DataFrame is asked for (`pip install ftbench[pandas]`)."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ftbench.errors import UserInputError
from ftbench.report.core import Report, Table

if TYPE_CHECKING:
    import pandas


def pandas_module():
    """pandas, or a UserInputError that says how to install it."""
    try:
        import pandas
    except ImportError as exc:
        raise UserInputError("DataFrames need pandas, an optional extra: pip install ftbench[pandas]") from exc
    return pandas


@dataclass
class ReportTable:
    """One report table as data: `frame` (long, the CSV's columns), `wide` (its
    headers as columns, numbers as numbers), `notes`, and rendered text."""

    table: Table
    report: Report = field(repr=False)

    @property
    def key(self) -> str:
        return self.table.key

    @property
    def title(self) -> str:
        return self.table.title

    @property
    def notes(self) -> list[str]:
        return list(self.table.notes)

    @property
    def frame(self) -> pandas.DataFrame:
        """The table's rows of `ftbench report --format csv` (label columns it does not use dropped)."""
        from ftbench.report.render import render

        pd = pandas_module()
        if self.table.empty:
            return pd.DataFrame()
        text = render(Report([self.table], self.report.options, self.report.study), "csv")
        return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""]).drop(columns="table")

    @property
    def wide(self) -> pandas.DataFrame:
        """The table as shown: one column per header; estimates and numbers as their
        value (a mean, a p-value), other cells as their text."""
        from ftbench.report.core import Est, Num

        pd = pandas_module()
        value = lambda v: v.mean if isinstance(v, Est) else v.value if isinstance(v, Num) else v  # noqa: E731
        return pd.DataFrame([[value(v) for v in row] for row in self.table.rows], columns=self.table.headers)

    @property
    def markdown(self) -> str:
        return _render_one(self, "markdown")

    @property
    def text(self) -> str:
        return _render_one(self, "terminal")

    @property
    def html(self) -> str:
        from ftbench.report.html import table_html

        return table_html(self.table)

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.text


def _render_one(table: ReportTable, fmt: str) -> str:
    from ftbench.report.render import render

    return render(Report([table.table], table.report.options, table.report.study), fmt)


class StudyReport:
    """The report object: `report["accuracy"]` (a `ReportTable`), `tables`, the
    `options` it was built with, the whole as `markdown`, `text` or `html` (the page
    `ftbench report --format html` writes), and `figures()` (matplotlib)."""

    def __init__(self, report: Report, suite_yaml: str | None = None, title: str = "ftbench report"):
        self.report = report
        self.suite_yaml = suite_yaml
        self.title = title

    @property
    def tables(self) -> dict[str, ReportTable]:
        return {t.key: ReportTable(t, self.report) for t in self.report.tables}

    def __getitem__(self, key: str) -> ReportTable:
        tables = self.tables
        if key not in tables:
            raise KeyError(f"no table {key!r}; the report has {', '.join(tables)}")
        return tables[key]

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.report.options)

    def render(self, fmt: str = "terminal") -> str:
        """As `ftbench report --all --format FMT` prints it (terminal, markdown, latex, csv, json, html)."""
        from ftbench.report.render import render

        return self.html if fmt == "html" else render(self.report, fmt)

    @property
    def markdown(self) -> str:
        return self.render("markdown")

    @property
    def text(self) -> str:
        return self.render("terminal")

    @cached_property
    def html(self) -> str:
        from ftbench.report.html import render_html

        return render_html(self.report, suite_yaml=self.suite_yaml, title=self.title)

    def figures(self) -> list[tuple[str, Any]]:
        """(name, matplotlib Figure) of every figure the report has data for (needs ftbench[plots])."""
        from ftbench.report.plots import figures

        return list(figures(self.report))

    def _repr_html_(self) -> str:
        """The HTML page in an iframe: its styles and script stay inside it, and it
        needs nothing from the network, as the file does."""
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" title="{html.escape(self.title)}" '
                'style="width:100%;height:720px;border:1px solid #ddd"></iframe>')

    def __str__(self) -> str:
        return self.text
