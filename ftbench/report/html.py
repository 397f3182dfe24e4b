"""The report as one self-contained HTML file: the figures first (inline SVG; the
forest plot of differences from the baseline leads), then every table (sortable by
a click on its header) with its intervals and notes, the detailed ones folded
(<details>) under the summary and primary comparisons, and the suite's resolved config. No network, no external scripts or stylesheets: the
file can be mailed, attached to CI or opened offline.

Figures need matplotlib (`pip install ftbench[plots]`); without it the page says so
and keeps the tables.
"""

from __future__ import annotations

import html
import io
import math
import re
from typing import Any

from ftbench.report.core import Est, Num, Report, Table

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;
     padding:0 1em;color:#1d1d1f}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-variant-numeric:tabular-nums}
th,td{padding:.25em .7em;border-bottom:1px solid #eee;white-space:nowrap}
th{background:#f4f4f6;cursor:pointer;user-select:none;text-align:left}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right}tbody tr:hover{background:#fafafe}
ul.notes{color:#555;font-size:.9em}p.empty{color:#777;font-style:italic}
details{margin:.3em 0}summary{cursor:pointer}summary h2{display:inline-block;margin:.6em 0 .2em;border:0}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{color:#555}
pre{background:#f6f6f8;padding:1em;overflow:auto;font-size:.85em}dl{display:grid;grid-template-columns:max-content auto}
dt{font-weight:600;padding-right:1em}dd{margin:0}
"""

# Sorts a table by the clicked column: numbers by their data-v value, text otherwise;
# a second click reverses. Empty cells ("—") sort last either way.
_JS = """
document.querySelectorAll("table.sortable th").forEach(function (th, _) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var asc = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var key = function (row) {
      var cell = row.cells[col], v = cell.getAttribute("data-v");
      return v === null ? cell.textContent.trim() : (v === "" ? null : parseFloat(v));
    };
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def render_html(report: Report, *, suite_yaml: str | None = None, title: str | None = None) -> str:
    """The whole page. `suite_yaml` is the suite's resolved config as written beside
    the results (`suite.resolved.yaml`), shown at the end when given."""
    name = title or "ftbench report"
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             f"<title>{_e(name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{_e(name)}</h1>", _options(report)]
    parts.append(_figures(report))
    parts += [_folded(t) for t in report.tables]
    if suite_yaml:
        parts.append(f"<h2 id=\"suite\">Suite config</h2><pre>{_e(suite_yaml)}</pre>")
    parts.append(f"<script>{_JS}</script></body></html>\n")
    return "\n".join(parts)


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def _options(report: Report) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in report.options.items())
    return f"<dl class=\"options\">{items}</dl>"


def _sort_value(value: Any) -> str | None:
    """The number a column sorts by ("" for a missing one), or None to sort as text.
    Preformatted text that starts with a number ("+4.1 ± 0.8*") sorts by it."""
    if isinstance(value, (Est, Num)):
        number = value.mean if isinstance(value, Est) else value.value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (m := _LEADING_NUMBER.match(value)):
        number = float(m.group(0).replace("−", "-"))
    else:
        return None
    return repr(float(number)) if number is not None and math.isfinite(number) else ""


_LEADING_NUMBER = re.compile(r"[+\-−]?\d+(\.\d+)?(e[+-]?\d+)?(?![\d/])")


def _cell(value: Any, label: bool) -> str:
    text = value.text() if isinstance(value, (Est, Num)) else "" if value is None else str(value)
    sort = None if label else _sort_value(value)
    if sort is None:
        return f"<td>{_e(text)}</td>"
    return f"<td class=\"num\" data-v=\"{sort}\">{_e(text)}</td>"


#: Tables shown open under the figures; every other table is folded.
OPEN_TABLES: tuple[str, ...] = ("primary", "summary")


def _folded(table: Table) -> str:
    """`table_html` in a <details>, open for the `OPEN_TABLES`, its title the summary line."""
    state = " open" if table.key in OPEN_TABLES else ""
    head, _, body = table_html(table).partition("</h2>")
    return f"<details class=\"table\"{state}><summary>{head}</h2></summary>{body}</details>"


def table_html(table: Table) -> str:
    """One table as an <h2> and a sortable <table> with its notes (the page's script sorts it)."""
    head = f"<h2 id=\"{_e(table.key)}\">{_e(table.title)}</h2>"
    if table.empty:
        return f"{head}<p class=\"empty\">{_e(table.empty)}</p>"
    headers = "".join(f"<th scope=\"col\">{_e(h)}</th>" for h in table.headers)
    rows = "".join("<tr>" + "".join(_cell(v, i < table.label_cols) for i, v in enumerate(row)) + "</tr>"
                   for row in table.rows)
    notes = "".join(f"<li>{_e(n)}</li>" for n in table.notes)
    return (f"{head}<table class=\"sortable\" data-key=\"{_e(table.key)}\"><thead><tr>{headers}</tr></thead>"
            f"<tbody>{rows}</tbody></table>" + (f"<ul class=\"notes\">{notes}</ul>" if notes else ""))


def _figures(report: Report) -> str:
    try:
        from matplotlib import rc_context

        from ftbench.report.plots import figures
    except ImportError:
        return "<h2>Figures</h2><p class=\"empty\">figures need matplotlib: pip install ftbench[plots]</p>"
    out = []
    # Text as <text> (no glyph paths: smaller, selectable); a salt per figure keeps
    # the ids of several inline SVGs in one page apart.
    drawn = figures(report)
    while True:
        try:
            name, fig = next(drawn)
        except StopIteration:
            break
        except (ArithmeticError, TypeError, ValueError, KeyError) as exc:  # a hand-edited record: keep the page
            out.append(f"<p class=\"empty\">the remaining figures could not be drawn ({_e(type(exc).__name__)}: "
                       f"{_e(exc)}); please report this with the records</p>")
            break
        buf = io.StringIO()
        with rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
            fig.savefig(buf, format="svg")
        svg = buf.getvalue()
        svg = svg[svg.index("<svg"):]  # drop the XML declaration and DOCTYPE
        svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)  # creation date, RDF namespaces
        caption = name.replace("_", " ")
        out.append(f"<figure id=\"fig-{name}\">{svg}<figcaption>{_e(caption)}</figcaption></figure>")
    if not out:
        return "<h2>Figures</h2><p class=\"empty\">no figure has data in these results</p>"
    return "<h2 id=\"figures\">Figures</h2>" + "".join(out)


def is_self_contained(page: str) -> bool:
    """No external script, stylesheet, image or font (what the tests check)."""
    return not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=|@import|url\(\s*['\"]?https?:", page)
