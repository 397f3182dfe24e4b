"""The summary table: one row per strategy, each axis averaged over the tasks every strategy ran."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable

import numpy as np

from ftbench import stats
from ftbench.report.core import Cell, Est, Table, timing
from ftbench.report.family import Family, mark_column
from ftbench.report.context import Context, seed_note


def _seedwise(ctx: Context, data: dict[Any, dict[int, float]], split: Callable[[Any], tuple[str, Any]],
              digits: int, log: bool = False) -> tuple[dict[str, Est], int]:
    """Per strategy: for each seed, the mean over the tasks every strategy ran; then
    mean ± interval over those seeds. `split(key)` gives (strategy, task)."""
    by_strategy: dict[str, dict[Any, dict[int, float]]] = defaultdict(dict)
    for key, by_seed in data.items():
        strategy, task = split(key)
        by_strategy[strategy][task] = by_seed
    if not by_strategy:
        return {}, 0
    shared = set.intersection(*(set(tasks) for tasks in by_strategy.values()))
    out = {}
    for strategy, tasks in by_strategy.items():
        seeds = sorted(set.intersection(*(set(tasks[t]) for t in shared))) if shared else []
        out[strategy] = ctx.est({s: float(np.mean([tasks[t][s] for t in shared])) for s in seeds}, digits, log=log)
    return out, len(shared)


def _strategy_task(cell: Cell) -> tuple[str, tuple[str, str, str]]:
    return cell.strategy, cell.task


def summary_table(ctx: Context, vs_base: dict[Cell, tuple[float, float]],
                   aucs: dict[tuple[str, str, str], dict[int, float]], er: dict[tuple[Cell, str], dict[int, float]],
                   drop: dict[Cell, dict[int, float]]) -> Table:
    shifts = sorted({name for _, name in er})  # one column per shift type: a corruption and a domain differ
    columns = [_seedwise(ctx, ctx.acc, _strategy_task, 1),
               _seedwise(ctx, ctx.study.values(timing("train_s")), _strategy_task, 2, log=True),
               _seedwise(ctx, aucs, lambda k: (k[2], k[:2]), 1),
               *(_seedwise(ctx, {k: v for k, v in er.items() if k[1] == name}, lambda k: _strategy_task(k[0]), 1)
                 for name in shifts),
               _seedwise(ctx, drop, _strategy_task, 1)]
    strategies = sorted({s for col, _ in columns for s in col}, key=ctx.strategy_key)
    title = "Summary per strategy"
    if not strategies:
        return Table("summary", title, [], empty="no ok runs yet")
    rows = []
    for s in strategies:
        wtl = [(d > 0) - (d < 0) if p < ctx.alpha else 0
               for c, (d, p) in vs_base.items() if c.strategy == s and math.isfinite(p)]
        record = "baseline" if s == ctx.baseline else (
            f"{wtl.count(1)}/{wtl.count(0)}/{wtl.count(-1)}" if wtl else "—")
        rows.append([s, columns[0][0].get(s, Est(math.nan)), record,
                     *(col.get(s, Est(math.nan)) for col, _ in columns[1:])])
    family = Family(ctx.alpha)
    for col, higher in ((1, True), (3, False), (4, True), *((5 + i, True) for i in range(len(shifts))),
                        (5 + len(shifts), False)):
        mark_column(rows, [0] * len(rows), col, higher, ctx, family, labels=1, log=col == 3)
    family.close()
    counts = [n for _, n in columns]
    er_counts = "".join(f"{n} for ER {name}, " for name, n in zip(shifts, counts[3:-1]))
    notes = [seed_note([e for r in rows for e in r[1:] if isinstance(e, Est)], ctx.study).replace("per cell",
                                                                                                  "per strategy"),
             f"{stats.interval_label(ctx.interval, ctx.confidence)}: per seed, the mean over the tasks every "
             f"strategy ran ({counts[0]} backbone/dataset/data for Acc, {counts[1]} for Train s, {counts[2]} "
             f"backbone/dataset for AUC, {er_counts}{counts[-1]} for Drop); Train s is a geometric mean with a "
             "log-scale interval (markers on the log scale too); ER: effective robustness per shifted set, never averaged over "
             "shift types (here over seeds only: the fit's own uncertainty is in the Domain shift table's intervals)",
             f"W/T/L vs {ctx.baseline}: tasks where the strategy is significantly better / not shown different / worse "
             f"(the accuracy table's Δ tests, adjusted in that table's family, p < {ctx.alpha:g}): a count of that "
             "table's claims, not new tests",
             ctx.marker_note("(lower Train s and Drop)"), family.note()]
    notes += ctx.study.notes
    headers = ["Strategy", "Acc (%)", f"W/T/L vs {ctx.baseline}", "Train s", "Data AUC",
               *(f"ER {name}" for name in shifts), "Drop"]
    return Table("summary", title, headers, rows, notes, label_cols=1)
