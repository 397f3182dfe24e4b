"""The data efficiency table: accuracy per data amount, AUC over log data, the amount that matches scratch."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ftbench import stats
from ftbench.report.core import Cell, Est, Table
from ftbench.report.family import Family, mark_column
from ftbench.report.context import Context, seed_note, acc_interval_label


def data_table(ctx: Context) -> tuple[Table, dict[tuple[str, str, str], dict[int, float]]]:
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
    family = Family(ctx.alpha)
    for (bb, ds, strategy), cs in sorted(curves.items(), key=lambda kv: (kv[0][:2], ctx.strategy_key(kv[0][2]))):
        by_label = {c.data: c for c in cs}
        ests = [ctx.est(acc[by_label[d]], cell=by_label[d]) if d in by_label else Est(math.nan) for d in labels]
        # AUC per seed over the seeds that ran every amount, so its interval is over seeds too.
        seeds = sorted(set.intersection(*(set(acc[c]) for c in cs)))
        xs = [n_train.get(c, math.nan) for c in cs]
        auc = {s: stats.data_auc(xs, [acc[c][s] for c in cs]) for s in seeds} if len(cs) >= 2 else {}
        auc = {s: v for s, v in auc.items() if math.isfinite(v)}
        aucs[(bb, ds, strategy)] = auc
        row = [bb, ds, strategy, *ests, ctx.est(auc) if auc else Est(math.nan), "—"]
        if (bb, ds) in targets:
            _fixed_sequence(ctx, family, row, [c for c in cs if c in n_train], acc, targets[(bb, ds)])
        rows.append(row)
        groups.append((bb, ds))
    for col in range(3, 4 + len(labels)):
        mark_column(rows, groups, col, True, ctx, family, labels=3)
    family.close()
    notes = [seed_note([e for r in rows for e in r[3:-2] if isinstance(e, Est)], ctx.study),
             f"{acc_interval_label(ctx)}; columns are data amounts in test {ctx.metric} %; AUC: "
             f"{stats.interval_label(ctx.interval, ctx.confidence)}",
             "AUC: area under accuracy vs log(n_train), the data axis scaled to [0, 1] (the mean accuracy over "
             "log-spaced amounts), per seed over the seeds that ran every amount",
             f"matches {ctx.scratch}@full: the smallest amount from which on every larger amount too is shown "
             f"non-inferior to {ctx.scratch} at its largest amount ("
             + (", ".join(f"{ds}: {np.mean(t):.1f}" for (_, ds), t in targets.items()) or
                f"no '{ctx.scratch}' runs; choose one with --scratch") + f"), by more than −{ctx.margin:g} points "
             "(--margin; one-sided Welch test): a fixed sequence from the largest amount down that stops at the "
             "first amount not shown (each amount's p is the largest p of the sequence so far, then adjusted in "
             "the table's family); \"not shown\" is not \"never\": more seeds may show it",
             ctx.marker_note("within each backbone/dataset"), family.note()]
    headers = ["Backbone", "Dataset", "Strategy", *labels, "AUC", f"Matches {ctx.scratch}@full"]
    return Table("data", title, headers, rows, notes, label_cols=3), aucs


def _fixed_sequence(ctx: Context, family: Family, row: list, cells: list[Cell], acc: dict[Cell, dict[int, float]],
                    target: list[float]) -> None:
    """The "matches" claim of one strategy as a fixed sequence: amounts from the
    largest down, each tested for non-inferiority to `target` (scratch's seeds at
    its largest amount) by the margin; the claim at an amount covers it and every
    larger one, so its p is the largest p so far (intersection-union), which makes
    the claims nested and lets them join the table's Holm family. Sets the row's
    last column when the family closes."""
    keys, running = [], 0.0
    for cell in sorted(cells, key=lambda c: -ctx.study.n_train[c]):
        p = stats.noninferiority_p(list(acc[cell].values()), target, ctx.margin)
        running = max(running, p) if math.isfinite(p) else math.nan
        if not math.isfinite(running):
            break  # an amount that cannot be tested ends the sequence
        keys.append((family.add(("matches", cell), running, "fixed-sequence non-inferiority tests"), cell))

    def apply() -> None:
        hit = None
        for key, cell in keys:  # adjusted p never falls along the sequence: stop at the first not shown
            if not family.adjusted[key] < ctx.alpha:
                break
            hit = cell
        row[-1] = "not shown" if hit is None else f"{hit.data} (n={ctx.study.n_train[hit]:g})"

    family.then(apply)
