"""The across-tasks table: average ranks, Friedman and Nemenyi, IQM and P(improvement)."""

from __future__ import annotations

import math

import numpy as np

from ftbench import stats
from ftbench.report.core import BEST, TIED, Est, Num, Ranking, Table, _cell_at, _Ctx


def _ranking_table(ctx: _Ctx) -> tuple[Table | None, Ranking | None]:
    """Average ranks, Friedman and Nemenyi, IQM and P(improvement) over tasks that
    ran every strategy; None with fewer than two tasks."""
    acc = ctx.acc
    tasks = sorted({c.task for c in acc})
    if len(tasks) < 2:
        return None, None
    strategies = sorted({c.strategy for c in acc}, key=ctx.strategy_key)
    complete = [t for t in tasks if all(_cell_at(t, s) in acc for s in strategies)]
    title = "Across tasks"
    if len(complete) < 2:
        return Table("ranks", title, [], empty=f"fewer than 2 tasks ran all {len(strategies)} strategies; "
                                               "see Incomplete cells"), None
    per_task = {s: [list(acc[_cell_at(t, s)].values()) for t in complete] for s in strategies}
    scores = np.array([[np.mean(per_task[s][i]) for s in strategies] for i in range(len(complete))])
    ranks = stats.average_ranks(scores)
    fr = stats.friedman(scores, ctx.alpha)
    rows = []
    for s, rank in zip(strategies, ranks):
        point, low, high = stats.iqm_interval(per_task[s], confidence=ctx.confidence)
        poi = Est(math.nan)
        if s != ctx.baseline and ctx.baseline in per_task:
            poi = Est(*stats.probability_of_improvement(per_task[s], per_task[ctx.baseline],
                                                        confidence=ctx.confidence), digits=2)
        rows.append([s, Num(float(rank)), Est(point, low, high), poi])
    best = min(range(len(rows)), key=lambda i: ranks[i])
    for i, row in enumerate(rows):
        row[1].mark = BEST if i == best else (TIED if ranks[i] - ranks[best] < fr.cd else "")
    max(rows, key=lambda r: r[2].mean)[2].mark = BEST
    left_out = [t for t in tasks if t not in complete]
    ns = [len(x) for runs in per_task.values() for x in runs]
    notes = [f"{len(complete)} tasks (backbone/dataset/data) that ran all {len(strategies)} strategies; "
             f"n = {min(ns)}–{max(ns)} seeds per task" if min(ns) != max(ns) else
             f"{len(complete)} tasks (backbone/dataset/data) that ran all {len(strategies)} strategies; "
             f"n = {min(ns)} seeds per task",
             f"avg rank: rank of mean test {ctx.metric} within each task (1 = best, ties share), averaged",
             (fr.note or f"Friedman χ² = {fr.statistic:.2f}, p = {Num(fr.p, 'p').text()}; Nemenyi critical "
                         f"difference (α = {ctx.alpha:g}) = {fr.cd:.2f}"),
             f"IQM: interquartile mean of all runs pooled over tasks, {ctx.confidence:.0%} stratified bootstrap "
             "percentile interval (seeds resampled within tasks, seeded)",
             f"P(> {ctx.baseline}): chance a run of the strategy beats a run of {ctx.baseline} on the same task "
             "(Mann-Whitney U / nm, ties 1/2), averaged over tasks, same bootstrap",
             f"{BEST} lowest average rank / highest IQM; {TIED} average rank within the critical difference "
             "of the best"]
    if left_out:
        notes.append("left out (a strategy missing): " + ", ".join("/".join(t) for t in left_out))
    headers = ["Strategy", "Avg rank", "IQM acc (%)", f"P(> {ctx.baseline})"]
    return (Table("ranks", title, headers, rows, notes, label_cols=1),
            Ranking(strategies, [float(r) for r in ranks], len(complete), fr))
