"""The incomplete cells table: cells that miss a seed of the study or failed one."""

from __future__ import annotations

from ftbench.report.core import Cell, Table
from ftbench.report.context import Context


def incomplete_table(ctx: Context, expected_seeds: dict[Cell, list[int]] | None = None) -> Table:
    """Cells that miss a seed of the study or failed one, and strategies absent from a
    task. `expected_seeds`: the seeds an adaptive plan ran a cell on (default: all)."""
    study = ctx.study
    cells = set(study.ok) | set(study.bad)
    strategies = {c.strategy for c in cells}
    expected = {Cell(c.backbone, c.dataset, s, c.data) for c in cells for s in strategies}
    rows = []
    for cell in sorted(expected, key=ctx.cell_key):
        ok, bad = study.ok.get(cell, {}), study.bad.get(cell, {})
        wanted = (expected_seeds or {}).get(cell, study.seeds)
        if set(wanted) <= set(ok):
            continue
        problems = []
        for seed in wanted:
            if seed in bad:
                err = bad[seed].get("error") or {}
                why = f"{err.get('type', '')}: {str(err.get('message', '')).splitlines()[0][:80]}" if err else ""
                problems.append(f"seed {seed} {bad[seed].get('status')}" + (f" ({why})" if why else ""))
            elif seed not in ok:
                problems.append(f"seed {seed} missing")
        text = "no records" if not ok and not bad else "; ".join(problems)
        rows.append([cell.backbone, cell.dataset, cell.data, cell.strategy, f"{len(ok)}/{len(wanted)}", text])
    title = "Incomplete cells"
    seeds = ", ".join(map(str, study.seeds))
    if not rows:
        return Table("incomplete", title, [], empty=f"none; every cell has every seed ok (seeds {seeds})")
    notes = [f"seeds in the study: {seeds}" + ("; adaptive: each cell against the seeds its plan ran it on"
                                              if expected_seeds else "")
             + "; the tables above average only a cell's ok seeds, and show n",
             "rerun with `ftbench run` to retry failed and missing runs"]
    return Table("incomplete", title, ["Backbone", "Dataset", "Data", "Strategy", "Ok seeds", "Missing or failed"],
                 rows, notes, label_cols=6)
