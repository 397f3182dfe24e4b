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
from ftbench.report import Est, Num, Report, Table, json_number

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
_LATEX_UNICODE = {"±": r"$\pm$", "†": r"$^\dagger$", "Δ": r"$\Delta$", "α": r"$\alpha$", "χ²": r"$\chi^2$",
                  "×": r"$\times$", "−": "-", "–": "--", "—": "---", "≥": r"$\geq$", "≈": r"$\approx$"}


def _latex_escape(text: str) -> str:
    return text.translate(str.maketrans(_LATEX_SPECIAL))


def _latex_unicode(text: str) -> str:
    for char, tex in _LATEX_UNICODE.items():
        text = text.replace(char, tex)
    return text


def _render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for i, table in enumerate(report.tables):
        if i:
            writer.writerow([])
        if table.empty:
            writer.writerow([f"# {table.title}: {table.empty}"])
            continue
        writer.writerow([f"# {table.title}"])
        writer.writerow(table.headers)
        writer.writerows([[_text(v) for v in row] for row in table.rows])
        writer.writerows([[f"# {n}"] for n in table.notes])
    return out.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, Est):
        return value.to_json()
    if isinstance(value, Num):
        return json_number(value.value)
    return value


def _report_json(report: Report) -> dict:
    return {"format": "ftbench.report/1", "options": report.options,
            "tables": [{"key": t.key, "title": t.title, "headers": t.headers,
                        "rows": [[_json_value(v) for v in row] for row in t.rows],
                        "notes": t.notes, "empty": t.empty} for t in report.tables]}
