"""The primary comparisons: the few strategy-vs-strategy questions a suite declares
before its runs (`primary:` in the suite, docs/suite.md). They form the report's one
confirmatory family; every other table is exploratory, a family of its own.
"""

from __future__ import annotations

import math
from typing import Any

from ftbench import stats
from ftbench.report.core import Cell, Est, Num, Table
from ftbench.report.family import Family, example_diffs
from ftbench.report.context import Context

Primary = dict[str, Any]  # {strategy, vs, and optionally backbone, dataset, data}: the suite's entry


def _tasks(ctx: Context, entry: Primary) -> list[tuple[str, str, str]]:
    """The tasks (backbone, dataset, data) where both strategies of `entry` have runs, within its filters."""
    cells = set(ctx.acc)
    tasks = {c.task for c in cells if c.strategy == entry["strategy"]} & {c.task for c in cells
                                                                          if c.strategy == entry["vs"]}
    keep = [t for t in tasks if all(entry.get(k) in (None, v) for k, v in zip(("backbone", "dataset", "data"), t))]
    return sorted(keep, key=lambda t: ctx.cell_key(Cell(t[0], t[1], entry["strategy"], t[2])))


def _verdict(diff: float, p_diff: float, p_equiv: float, ctx: Context, vs: str) -> str:
    parts = []
    if p_diff < ctx.alpha:
        parts.append(f"{'better' if diff > 0 else 'worse'} than {vs}")
    if p_equiv < ctx.alpha:
        parts.append(f"equivalent to {vs} within ±{ctx.margin:g}")
    return ", ".join(parts) or "not shown different, not shown equivalent"


def primary_table(ctx: Context, primary: list[Primary]) -> Table:
    """One row per declared comparison and task: Δ with its interval, the difference
    and equivalence tests Holm-adjusted over the whole primary family, a verdict."""
    title = "Primary comparisons (confirmatory)"
    if not primary:
        return Table("primary", title, [], empty="none declared, so every table below is exploratory; declare the "
                                                  "questions of a study before running it with `primary:` in the "
                                                  "suite (docs/suite.md)")
    family = Family(ctx.alpha)
    rows, missing = [], []
    for entry in primary:
        tasks = _tasks(ctx, entry)
        if not tasks:
            missing.append(f"{entry['strategy']} vs {entry['vs']}")
        for task in tasks:
            a, b = Cell(task[0], task[1], entry["strategy"], task[2]), Cell(task[0], task[1], entry["vs"], task[2])
            ea, eb = ctx.est(ctx.acc[a], cell=a), ctx.est(ctx.acc[b], cell=b)
            seeds, x, y = stats.match_seeds(ctx.acc[a], ctx.acc[b])
            step = ctx.steps.get(a) if ctx.steps.get(a) == ctx.steps.get(b) else None
            examples = example_diffs(ea, eb, seeds) if len(seeds) >= 2 else None
            res = stats.paired_test(x, y, test=ctx.test, confidence=ctx.confidence, step=step, examples=examples)
            equiv = stats.tost_paired(x, y, ctx.margin, step=step, examples=examples)
            keys = (family.add(("diff", a, b), res.p, "difference tests"),
                    family.add(("equiv", a, b), equiv, f"equivalence tests (±{ctx.margin:g})"))
            rows.append([*task, entry["strategy"], entry["vs"], res.n_pairs,
                         Est(res.mean_diff, res.diff_low, res.diff_high, res.n_pairs, signed=True, agree=res.se == 0),
                         Num(res.p, "p"), Num(math.nan, "p"), Num(equiv, "p"), Num(math.nan, "p"), "", keys])
    family.close()
    for row in rows:
        key_diff, key_equiv = row.pop()
        row[8].value, row[10].value = family.adjusted[key_diff], family.adjusted[key_equiv]
        row[11] = _verdict(row[6].mean, row[8].value, row[10].value, ctx, row[4])
    level = ("two-level (seeds and the test set's examples both sampled, Satterthwaite t)" if ctx.two_level
             else "over seeds")
    notes = [f"declared in the suite (`primary:`) before the runs: the report's confirmatory family; every other "
             f"table is exploratory",
             f"Δ = strategy − vs on matched seeds with its {ctx.confidence:.0%} CI, {level}; p: "
             f"{stats.test_label(ctx.test)} that Δ = 0; p ≈: paired TOST that |Δ| < {ctx.margin:g} points (--margin)",
             f"family: the {family.size()} tests of this table (a difference and an equivalence test per row) are "
             f"Holm-adjusted together, so the chance of any false verdict here is at most α = {ctx.alpha:g} "
             "(strong family-wise control)",
             f"verdict: better or worse where the adjusted p < {ctx.alpha:g}, equivalent where the adjusted p ≈ < "
             f"{ctx.alpha:g}; otherwise neither is shown (more seeds may show one)"]
    if missing:
        notes.append("no task in these records ran both strategies of: " + "; ".join(missing))
    if not rows:
        return Table("primary", title, [], notes=notes, empty="no task in these records ran both strategies of "
                                                              "any primary comparison: " + "; ".join(missing))
    headers = ["Backbone", "Dataset", "Data", "Strategy", "vs", "pairs", "Δ", "p", "p (Holm)", "p ≈", "p ≈ (Holm)",
               "Verdict"]
    return Table("primary", title, headers, rows, notes, label_cols=5)
