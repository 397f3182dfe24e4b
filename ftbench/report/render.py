"""Rendering a Report: terminal and Markdown tables (tabulate), LaTeX (booktabs),
CSV and JSON (numbers stay numbers)."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from tabulate import tabulate, tabulate_formats

from ftbench.errors import UserInputError
from ftbench.report.core import Est, Num, Report, Table
from ftbench.report.selection import UNCERTAIN

FORMATS: tuple[str, ...] = ("terminal", "markdown", "github", "latex", "csv", "json")
_TABLEFMT = {"terminal": "simple", "markdown": "pipe", "github": "github", "latex": "latex_booktabs"}


def render(report: Report, fmt: str = "terminal") -> str:
    """The report as text: terminal, markdown, github, latex, csv or json (or any
    other tabulate format name)."""
    if fmt == "json":
        return json.dumps(_report_json(report), indent=1, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _render_csv(report)
    tablefmt = _TABLEFMT.get(fmt, fmt if fmt in tabulate_formats else None)
    if tablefmt is None:
        raise UserInputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)} "
                             "(or a tabulate format name)")
    return "\n\n".join(_render_table(t, fmt, tablefmt) for t in report.tables) + "\n"


def _text(value: Any) -> str:
    if isinstance(value, (Est, Num)):
        return value.text()
    return "" if value is None else str(value)


def _render_table(table: Table, fmt: str, tablefmt: str) -> str:
    if fmt in ("markdown", "github"):
        esc = _markdown_escape
        if table.empty:
            return f"### {table.title}\n\n{esc(table.empty)}"
        body = tabulate([[esc(_text(v)) for v in row] for row in table.rows], table.headers, tablefmt,
                        disable_numparse=True, colalign=_align(table))
        return f"### {table.title}\n\n{body}\n\n" + "\n".join(f"- {esc(n)}" for n in table.notes)
    if fmt == "latex":
        if table.empty:
            return _latex_unicode(rf"\noindent\textbf{{{_latex_escape(table.title)}}}: {_latex_escape(table.empty)}")
        body = tabulate([[_text(v) for v in row] for row in table.rows], table.headers, tablefmt,
                        disable_numparse=True, colalign=_align(table))
        notes = " \\\\\n".join(_latex_escape(n) for n in table.notes)
        return _latex_unicode("\\begin{table}[ht]\n\\centering\n\\caption{" + _latex_escape(table.title) + "}\n"
                              + body + "\n\\par\\smallskip\\footnotesize\n" + notes + "\n\\end{table}")
    if table.empty:
        return f"{table.title}: {table.empty}"
    body = tabulate([[_text(v) for v in row] for row in table.rows], table.headers, tablefmt,
                    disable_numparse=True, colalign=_align(table))
    return f"{table.title}\n{body}\n" + "\n".join(f"  {n}" for n in table.notes)


def _markdown_escape(text: str) -> str:
    return text.replace("*", r"\*")  # a marker must not start emphasis


def _align(table: Table) -> list[str]:
    return ["left"] * table.label_cols + ["right"] * (len(table.headers) - table.label_cols)


_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {"~": r"\textasciitilde{}", "^": r"\^{}",
                                                    "\\": r"\textbackslash{}"}
# Characters that pdflatex does not know without extra packages.
_LATEX_UNICODE = {"±": r"$\pm$", "†": r"$^\dagger$", "Δ": r"$\Delta$", "δ": r"$\delta$", "α": r"$\alpha$", "χ²": r"$\chi^2$",
                  "×": r"$\times$", "−": "-", "–": "--", "—": "---", "≥": r"$\geq$", "≈": r"$\approx$"}


def _latex_escape(text: str) -> str:
    return text.translate(str.maketrans(_LATEX_SPECIAL))


def _latex_unicode(text: str) -> str:
    for char, tex in _LATEX_UNICODE.items():
        text = text.replace(char, tex)
    return text


#: Columns of the tidy CSV, after the label columns every table's rows have.
_CSV_VALUE_COLUMNS = ["metric", "value", "low", "high", "n", "interval", "test", "mark", "text"]


def _render_csv(report: Report) -> str:
    """One tidy long table (pandas.read_csv loads it as is): a row per table cell
    and column, with the row's labels in their own columns (blank where a table
    has no such label), numbers as numbers, interval bounds in `low`/`high`, the
    seed count in `n`, and the interval method or test that produced them named.
    Text cells (a W/T/L count, "baseline") keep their text in `text`."""
    label_names: list[str] = []
    for table in report.tables:
        for name in ([] if table.empty else table.headers[:table.label_cols]):
            if name.lower() not in label_names:
                label_names.append(name.lower())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["table", *label_names, *_CSV_VALUE_COLUMNS])
    interval, test = report.options.get("interval", ""), report.options.get("test", "")
    for table in report.tables:
        if table.empty:
            continue
        names = [h.lower() for h in table.headers[:table.label_cols]]
        for row in table.rows:
            # labels without the display marks (" §", selection uncertain): keys to join and filter on;
            # the Selected hyperparameters rows carry P(selected) itself
            labels = dict(zip(names, (_text(v).removesuffix(f" {UNCERTAIN}") for v in row[:table.label_cols])))
            for header, cell in zip(table.headers[table.label_cols:], row[table.label_cols:]):
                writer.writerow([table.key, *(labels.get(n, "") for n in label_names),
                                 *_csv_values(header, cell, interval, test)])
    return out.getvalue()


def _csv_number(value: float | int | None) -> float | int | str:
    """Blank when missing; floats to 8 significant digits (the last bits of a mean
    over seeds differ with summation order; no statistic here is that precise)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return float(f"{value:.8g}") if isinstance(value, float) else value


def _csv_values(header: str, cell: Any, interval: str, test: str) -> list:
    if isinstance(cell, Est):
        bounded = math.isfinite(cell.high - cell.low)
        return [header, _csv_number(cell.mean), _csv_number(cell.low), _csv_number(cell.high), cell.n or "",
                interval if bounded else "", "", cell.mark, ""]
    if isinstance(cell, Num):
        return [header, _csv_number(cell.value), "", "", "", "", test if cell.fmt == "p" else "", cell.mark, ""]
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return [header, _csv_number(cell), "", "", "", "", "", "", ""]
    return [header, "", "", "", "", "", "", "", _text(cell)]


def _json_value(value: Any) -> Any:
    if isinstance(value, Est):
        return value.to_json()
    if isinstance(value, Num):
        return value.to_json()
    return value


def _report_json(report: Report) -> dict:
    return {"format": "ftbench.report/1", "options": report.options,
            "tables": [{"key": t.key, "title": t.title, "headers": t.headers,
                        "rows": [[_json_value(v) for v in row] for row in t.rows],
                        "notes": t.notes, "empty": t.empty} for t in report.tables]}
