"""The forgetting table: source-task accuracy before and after fine-tuning."""

from __future__ import annotations

import math

from ftbench import stats
from ftbench.report.core import CELL_HEADERS, Cell, Est, Table, source_metric
from ftbench.report.family import Family, mark_column
from ftbench.report.context import cell_rows, Context, seed_note


def forgetting_table(ctx: Context) -> tuple[Table, dict[Cell, dict[int, float]]]:
    study = ctx.study
    before = study.values(lambda r: source_metric(r, ctx.metric, "before"))
    after = study.values(lambda r: source_metric(r, ctx.metric, "after"))
    title = "Forgetting (source task)"
    cells = sorted(set(before) & set(after), key=ctx.cell_key)
    if not cells:
        return Table("forgetting", title, [], empty="no backbone with a source task in these runs, so "
                                                    "forgetting was not measured"), {}
    drop, keep = {}, {}
    for c in cells:
        if c.strategy == ctx.scratch:
            continue  # random initial weights: nothing pretrained to forget
        seeds = sorted(set(before[c]) & set(after[c]))
        pairs = {s: stats.forgetting(before[c][s], after[c][s]) for s in seeds}
        drop[c] = {s: d for s, (d, _) in pairs.items()}
        keep[c] = {s: k for s, (_, k) in pairs.items() if math.isfinite(k)}
    cells, rows = cell_rows(ctx, [{c: before[c] for c in cells}, {c: after[c] for c in cells}, drop, keep],
                             [1, 1, 1, 1])
    for cell, row in zip(cells, rows):
        if cell.strategy == ctx.scratch:
            row[5:] = ["n/a"] * 4
    family = Family(ctx.alpha)
    for col, higher in ((6, True), (7, False), (8, True)):
        mark_column(rows, [c.task for c in cells], col, higher, ctx, family)
    family.close()
    notes = [seed_note([r[6] for r in rows if isinstance(r[6], Est)], study),
             stats.interval_label(ctx.interval, ctx.confidence),
             f"source-task {ctx.metric} before and after fine-tuning; drop = before − after (points); "
             "retention = after / before × 100",
             f"{ctx.scratch}: n/a, as it starts from random weights, not the pretrained model whose source accuracy "
             "'before' is, so there is nothing it could forget",
             ctx.marker_note("within each backbone/dataset/data (lower drop)"), family.note()]
    headers = [*CELL_HEADERS, "Before", "After", "Drop", "Retention %"]
    return Table("forgetting", title, headers, rows, notes), drop
