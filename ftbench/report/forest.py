"""The forest plot: each strategy's accuracy difference from the baseline per cell,
with its interval, read from the accuracy table (the same Δ, interval and adjusted
p the table prints), so the figure and the table cannot disagree. The report's
first figure (`report.plots.figures`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ftbench.report.core import Est, Num, Report

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def forest_rows(report: Report) -> list[tuple[str, str, Est, float | None, str]]:
    """(task label, strategy, Δ with its interval, adjusted p, the accuracy's marker)
    per non-baseline cell of the accuracy table that has a Δ, in the table's order."""
    try:
        table = report.table("accuracy")
    except StopIteration:
        return []
    if table.empty:
        return []
    baseline = report.options.get("baseline", "full")
    col_diff, col_adj = table.headers.index(f"Δ vs {baseline}"), table.headers.index("p (adj.)")
    acc_col = table.headers.index("Acc (%)")
    out = []
    for row in table.rows:
        diff, adj, acc = row[col_diff], row[col_adj], row[acc_col]
        if not (isinstance(diff, Est) and math.isfinite(diff.mean)):
            continue
        backbone, dataset, data, strategy = (str(v) for v in row[:4])
        p = adj.value if isinstance(adj, Num) else None
        out.append((f"{dataset} {data} ({backbone})", strategy, diff, p, acc.mark if isinstance(acc, Est) else ""))
    return out


def forest(report: Report, fig: Figure, colors: dict[str, str]) -> bool:
    """Δ vs the baseline per cell with its interval: one row per cell, grouped by
    task; filled where the table's adjusted p < α, hollow otherwise; the accuracy
    column's marker (best, tied) after the strategy's name. False without any Δ."""
    rows = forest_rows(report)
    if not rows:
        return False
    alpha, baseline = report.options.get("alpha", 0.05), report.options.get("baseline", "full")
    tasks = list(dict.fromkeys(r[0] for r in rows))
    fig.set_size_inches(8.5, 1.3 + 0.26 * (len(rows) + len(tasks)))
    ax = fig.subplots()
    y, ticks, labels, seen = 0.0, [], [], set()
    for task in tasks:
        ticks.append(-y)
        labels.append(task)
        y += 1
        for _, strategy, diff, p, mark in (r for r in rows if r[0] == task):
            significant = p is not None and math.isfinite(p) and p < alpha
            color = colors.get(strategy, "C0")
            err = None
            if math.isfinite(diff.high - diff.low):
                err = [[diff.mean - diff.low], [diff.high - diff.mean]]
            ax.errorbar(diff.mean, -y, xerr=err, fmt="o", color=color, mfc=color if significant else "white",
                        capsize=2, label=None if strategy in seen else strategy)
            seen.add(strategy)
            ticks.append(-y)
            labels.append(f"{strategy}{mark}")
            y += 1
    ax.axvline(0, color="0.4", lw=1, ls="--")
    ax.set_yticks(ticks, labels, fontsize=8)
    for tick in ax.get_yticklabels():
        if tick.get_text() in tasks:
            tick.set_fontweight("bold")  # a task's heading; its strategies below it
    ax.set_ylim(-y + 0.4, 0.6)
    ax.set_xlabel(f"Δ test {report.options.get('metric', 'acc')} vs {baseline} (points), "
                  f"{report.options.get('confidence', 0.95):.0%} interval")
    ax.set_title(f"Difference from {baseline} per cell\nfilled: the accuracy table's adjusted p < {alpha:g}; "
                 "after each name: its accuracy's marker", fontsize=9)
    ax.grid(axis="x", color="0.9")
    return True
