"""The data efficiency table: accuracy per data amount, AUC over log data, the amount that matches scratch."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ftbench import stats
from ftbench.report.core import Cell, Est, Table, _Ctx, _mark, _seed_note


def _data_table(ctx: _Ctx) -> tuple[Table, dict[tuple[str, str, str], dict[int, float]]]:
    """Accuracy per data amount, AUC over log data and the amount that matches
    scratch at full data; per (backbone, dataset, strategy)."""
    acc = ctx.acc
    n_train = ctx.study.n_train
    curves: dict[tuple[str, str, str], list[Cell]] = defaultdict(list)
    for cell in sorted(acc, key=ctx.cell_key):
        curves[(cell.backbone, cell.dataset, cell.strategy)].append(cell)
    title = "Data efficiency"
    if not any(len(cs) >= 2 for cs in curves.values()):
        return Table("data", title, [], empty="every strategy ran at one data amount only; add amounts "
                                              "(shots or fractions) to the suite to measure it"), {}
    labels = sorted({c.data for cs in curves.values() for c in cs},
                    key=lambda d: min(ctx.data_rank(c) for cs in curves.values() for c in cs if c.data == d))
    targets = {}
    for (bb, ds, strategy), cs in curves.items():
        if strategy == ctx.scratch:
            full = max(cs, key=lambda c: n_train.get(c, 0))
            targets[(bb, ds)] = list(acc[full].values())
    rows, groups, aucs = [], [], {}
    for (bb, ds, strategy), cs in sorted(curves.items(), key=lambda kv: (kv[0][:2], ctx.strategy_key(kv[0][2]))):
        by_label = {c.data: c for c in cs}
        ests = [ctx.est(acc[by_label[d]]) if d in by_label else Est(math.nan) for d in labels]
        # AUC per seed over the seeds that ran every amount, so its interval is over seeds too.
        seeds = sorted(set.intersection(*(set(acc[c]) for c in cs)))
        xs = [n_train.get(c, math.nan) for c in cs]
        auc = {s: stats.data_auc(xs, [acc[c][s] for c in cs]) for s in seeds} if len(cs) >= 2 else {}
        auc = {s: v for s, v in auc.items() if math.isfinite(v)}
        aucs[(bb, ds, strategy)] = auc
        match = "—"
        if (bb, ds) in targets:
            hit = _smallest_non_inferior(ctx, [c for c in cs if c in n_train], acc, targets[(bb, ds)])
            match = "not shown" if hit is None else f"{hit.data} (n={n_train[hit]:g})"
        rows.append([bb, ds, strategy, *ests, ctx.est(auc) if auc else Est(math.nan), match])
        groups.append((bb, ds))
    for col in range(3, 4 + len(labels)):
        _mark(rows, groups, col, True, ctx)
    notes = [_seed_note([e for r in rows for e in r[3:-2] if isinstance(e, Est)], ctx.study),
             f"{stats.interval_label(ctx.interval, ctx.confidence)}; columns are data amounts in test {ctx.metric} %",
             "AUC: area under accuracy vs log(n_train), the data axis scaled to [0, 1] (the mean accuracy over "
             "log-spaced amounts), per seed over the seeds that ran every amount",
             f"matches {ctx.scratch}@full: smallest amount shown non-inferior to {ctx.scratch} at its largest amount "
             f"(" + (", ".join(f"{ds}: {np.mean(t):.1f}" for (_, ds), t in targets.items()) or
                     f"no '{ctx.scratch}' runs; choose one with --scratch") + f"): the one-sided {1 - ctx.alpha:.0%} "
             f"Welch bound of the mean difference lies above −{ctx.margin:g} points (--margin); \"not shown\" is not "
             "\"never\": more seeds may show it",
             ctx.marker_note("within each backbone/dataset")]
    headers = ["Backbone", "Dataset", "Strategy", *labels, "AUC", f"Matches {ctx.scratch}@full"]
    return Table("data", title, headers, rows, notes, label_cols=3), aucs


def _smallest_non_inferior(ctx: _Ctx, cells: list[Cell], acc: dict[Cell, dict[int, float]],
                           target: list[float]) -> Cell | None:
    """The cell with the least training data whose accuracy is shown no worse than
    `target` (seeds of scratch at full data) by more than the margin: the one-sided
    (1 - alpha) Welch lower bound of mean(cell) - mean(target) above -margin."""
    for cell in sorted(cells, key=lambda c: ctx.study.n_train[c]):
        _, low, _ = stats.welch_diff(list(acc[cell].values()), target, confidence=1 - 2 * ctx.alpha)
        if low > -ctx.margin:
            return cell
    return None
