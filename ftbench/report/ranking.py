"""The across-tasks table: average ranks, Friedman and Nemenyi, IQM and P(improvement)."""

from __future__ import annotations

import math

import numpy as np

from ftbench import stats
from ftbench.report.core import BEST, TIED, Est, Num, Ranking, Table, cell_at, stat_text
from ftbench.report.context import Context


def ranking_table(ctx: Context) -> tuple[Table | None, Ranking | None]:
    """Average ranks, Friedman and Nemenyi, IQM and P(improvement) over tasks that
    ran every strategy; None with fewer than two tasks."""
    acc = ctx.acc
    tasks = sorted({c.task for c in acc})
    if len(tasks) < 2:
        return None, None
    strategies = sorted({c.strategy for c in acc}, key=ctx.strategy_key)
    complete = [t for t in tasks if all(cell_at(t, s) in acc for s in strategies)]
    title = "Across tasks"
    if len(complete) < 2:
        return Table("ranks", title, [], empty=f"fewer than 2 tasks ran all {len(strategies)} strategies; "
                                               "see Incomplete cells"), None
    per_task = {s: [list(acc[cell_at(t, s)].values()) for t in complete] for s in strategies}
    ns = [len(x) for runs in per_task.values() for x in runs]
    scores = np.array([[np.mean(per_task[s][i]) for s in strategies] for i in range(len(complete))])
    ranks = stats.average_ranks(scores)
    fr = stats.friedman(scores, ctx.alpha)
    chance = [_chance(ctx, t) for t in complete]
    normalized = {i: {s: stats.chance_normalize(per_task[s][i], chance[i]) for s in strategies}
                  for i in range(len(complete))}
    rows = []
    for s, rank in zip(strategies, ranks):
        n_runs = sum(len(x) for x in per_task[s])
        point, low, high = stats.iqm_interval([normalized[i][s] for i in range(len(complete))],
                                              confidence=ctx.confidence)
        poi = Est(math.nan)
        if s != ctx.baseline and ctx.baseline in per_task:
            poi = Est(*stats.probability_of_improvement(per_task[s], per_task[ctx.baseline],
                                                        confidence=ctx.confidence), n=n_runs, digits=2)
        rows.append([s, Est(float(rank), digits=2, n=len(complete)), Est(point, low, high, n_runs), poi])
    best = min(range(len(rows)), key=lambda i: ranks[i])
    for i, row in enumerate(rows):
        row[1].mark = BEST if i == best else (TIED if ranks[i] - ranks[best] < fr.cd else "")
    max(rows, key=lambda r: r[2].mean)[2].mark = BEST
    left_out = [t for t in tasks if t not in complete]
    notes = [f"{len(complete)} tasks (backbone/dataset/data) that ran all {len(strategies)} strategies; "
             f"n = {min(ns)}–{max(ns)} seeds per task" if min(ns) != max(ns) else
             f"{len(complete)} tasks (backbone/dataset/data) that ran all {len(strategies)} strategies; "
             f"n = {min(ns)} seeds per task",
             f"avg rank: rank of mean test {ctx.metric} within each task (1 = best, ties share), averaged",
             (fr.note or f"Friedman χ² = {fr.statistic:.2f}, Iman-Davenport F = "
                         f"{stat_text(fr.f, '.2f', 'every task ranks the strategies alike: F divides by 0')}, p = "
                         f"{Num(fr.p, 'p').text()} ({fr.method}; below {stats.FRIEDMAN_EXACT_TASKS} tasks the "
                         f"χ² approximation is too conservative); Nemenyi critical difference (α = {ctx.alpha:g}) "
                         f"= {fr.cd:.2f}"),
             *_independence_notes(complete),
             f"IQM norm.: every run's accuracy normalised to fixed reference scores, chance (100 / the task's "
             f"classes) = 0 and 100% = 100, so no estimate and no other strategy moves it"
             + ("" if all(c > 0 for c in chance) else " (tasks whose records give no class count: chance taken as "
                                                       "0, the raw accuracy)")
             + "; the interquartile mean over tasks, each task weighing the same whatever its seeds; "
             f"{ctx.confidence:.0%} stratified bootstrap percentile interval (seeds resampled within tasks, seeded), "
             "[low, high] (Agarwal et al. 2021's method; the point is not rliable's aggregate_iqm, which drops "
             "whole values at the quartiles, where this counts a straddling value in part)",
             *([f"the bootstrap intervals (IQM, P(>)) resample {min(ns)}–{max(ns)} seeds per task: at so few seeds a "
                "percentile bootstrap covers less than it says (simulated for the IQM of 3 tasks x 5 normal seeds: "
                f"{IQM_COVERAGE_5}% for a stated 95%, tests/test_simulations.py): read them as rough"]
               if min(ns) < stats.BOOTSTRAP_MIN_N else []),
             f"P(> {ctx.baseline}): chance a run of the strategy beats a run of {ctx.baseline} on the same task "
             "(Mann-Whitney U / nm, ties 1/2), averaged over tasks, same bootstrap",
             f"{BEST} lowest average rank / highest IQM (a description, not a test); {TIED} average rank within the "
             "critical difference of the best (Nemenyi: all pairs of strategies at once)"]
    if left_out:
        notes.append("left out (a strategy missing): " + ", ".join("/".join(t) for t in left_out))
    headers = ["Strategy", "Avg rank", "IQM norm. score", f"P(> {ctx.baseline})"]
    return (Table("ranks", title, headers, rows, notes, label_cols=1),
            Ranking(strategies, [float(r) for r in ranks], len(complete), fr))


# Measured coverage of the IQM interval (tests/test_simulations.py::test_iqm_interval_coverage_is_as_noted).
IQM_COVERAGE_5 = 85


def _chance(ctx: Context, task: tuple[str, str, str]) -> float:
    """Chance accuracy (%) of a task: 100 / its classes (records' data_amount.n_classes), 0 if unknown."""
    for strategy_runs in (runs for cell, runs in ctx.study.ok.items() if cell.task == task):
        for rec in strategy_runs.values():
            k = (rec.get("data_amount") or {}).get("n_classes")
            if isinstance(k, int) and k > 1:
                return 100 / k
    return 0.0


def _independence_notes(tasks: list[tuple[str, str, str]]) -> list[str]:
    """Friedman and Nemenyi assume independent data sets (Demsar 2006); data amounts of
    one dataset, or one dataset under several backbones, are not."""
    datasets = {(bb, ds) for bb, ds, _ in tasks}
    if len(datasets) == len(tasks):
        return []
    return [f"the {len(tasks)} tasks are {len(datasets)} backbone/dataset pair{'s' if len(datasets) != 1 else ''} at "
            "several data amounts, not independent data sets as Friedman and Nemenyi assume (Demsar 2006): "
            "their p and critical difference are optimistic"]
