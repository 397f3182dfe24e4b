"""The accuracy table: test accuracy per cell, each strategy paired against the baseline."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ftbench import stats
from ftbench.report.core import CELL_HEADERS, Cell, Est, Num, Study, Table, correct_bits, split_metric
from ftbench.report.context import acc_interval_label, cell_rows, Context, seed_note
from ftbench.report.family import Family, mark_column, example_diffs, pair_key


def _labels(cell: Cell) -> tuple:
    return cell.backbone, cell.dataset, cell.data, cell.strategy


def accuracy_table(ctx: Context) -> tuple[Table, dict[Cell, tuple[float, float]]]:
    """Accuracy per cell with each strategy's paired test against the baseline;
    also returns cell -> (mean difference, table-family-adjusted p) for the summary."""
    acc = ctx.acc
    title = f"Accuracy (test {ctx.metric}, %)"
    if not acc:
        return Table("accuracy", title, [], empty="no ok runs with a test accuracy yet"), {}
    cells, rows = cell_rows(ctx, [acc], [1], accuracy=True)
    est = {cell: row[5] for cell, row in zip(cells, rows)}
    family = Family(ctx.alpha)
    comparisons: dict[Cell, stats.Paired] = {}
    diffs: dict[Cell, np.ndarray] = {}
    tost: dict[Cell, float] = {}
    for cell in cells:
        base = cell._replace(strategy=ctx.baseline)
        if cell.strategy != ctx.baseline and base in acc:
            seeds, x, y = stats.match_seeds(acc[cell], acc[base])
            step = ctx.steps.get(cell) if ctx.steps.get(cell) == ctx.steps.get(base) else None
            examples = example_diffs(est[cell], est[base], seeds) if len(seeds) >= 2 else None
            comparisons[cell] = stats.paired_test(x, y, test=ctx.test, confidence=ctx.confidence, step=step,
                                                  examples=examples)
            diffs[cell] = stats.on_grid(x - y, step)
            tost[cell] = stats.tost_paired(x, y, ctx.margin, step=step, examples=examples)
            family.add(pair_key(5, _labels(cell), _labels(base)), comparisons[cell].p, "pairs")
            family.add(("≈", cell), tost[cell], f"equivalence tests (±{ctx.margin:g})")
    mark_column(rows, [c.task for c in cells], 5, True, ctx, family)
    family.close()
    adjusted = {c: family.adjusted[pair_key(5, _labels(c), _labels(c._replace(strategy=ctx.baseline)))]
                for c in comparisons}
    mcnemar = _mcnemar_column(ctx, cells) if ctx.bits else None
    for cell, row in zip(cells, rows):
        c = comparisons.get(cell)
        row.append(_failures(ctx.study, cell))
        if cell.strategy == ctx.baseline:
            row += ["baseline", Num(None, "p"), Num(None, "p"), Est(math.nan), Num(None, "p"), Num(None, "p"), ""]
        elif c is None:
            row += ["—", Num(None, "p"), Num(None, "p"), Est(math.nan), Num(None, "p"), Num(None, "p"), 0]
        else:
            row += [Est(c.mean_diff, c.diff_low, c.diff_high, c.n_pairs, signed=True, agree=c.se == 0),
                    Num(c.p, "p"), Num(adjusted[cell], "p"),
                    Est(*stats.hedges_gz(diffs[cell], ctx.confidence), n=c.n_pairs, digits=2, signed=True),
                    Num(tost[cell], "p"), Num(family.adjusted[("≈", cell)], "p"), c.n_pairs]
        if mcnemar is not None:
            row.append(mcnemar.get(cell, ""))
    for row, wilson in zip(rows, _wilson_column(ctx, cells, rows)):
        row.append(wilson)
    level = ("two-level: seeds and the test set's examples both sampled (per-example bits; Satterthwaite t)"
             if ctx.two_level else "over seeds only")
    notes = [seed_note([r[5] for r in rows], ctx.study),
             f"{acc_interval_label(ctx)}; failed: failed or diverged seeds of all the cell's seeds, left out of its "
             "mean (a method that fails is not as good as its ok seeds say)",
             f"Δ = strategy − {ctx.baseline} on matched seeds with its {ctx.confidence:.0%} CI, {level}; "
             f"differences are compared on the test set's grid (one example = 100 / n_test points); g_z = Hedges' "
             f"g of the seeds' paired differences (d_z = mean Δ / sd Δ, small-sample corrected) with the "
             f"{ctx.confidence:.0%} noncentral-t CI of δ_z (from 3 pairs)",
             f"p: {stats.test_label(ctx.test)} vs {ctx.baseline} on matched seeds ({level}), raw and adjusted in "
             "the table's family; equal differences on every seed (no variance, no bits) get the exact "
             "sign-flip p 2/2^n",
             f"p ≈: paired TOST that |Δ| < {ctx.margin:g} points (set with --margin), raw and adjusted in the "
             f"table's family; adjusted p ≈ < {ctx.alpha:g} backs \"equivalent to {ctx.baseline}\"; a large p alone "
             "does not",
             family.note(),
             ctx.marker_note("within each backbone/dataset/data"),
             *_power_notes(ctx, list(diffs.values()), max(family.size(), 1), rows),
             f"Wilson (1 run): one run's {ctx.confidence:.0%} Wilson interval at the row's accuracy on its own test "
             "set (n_test examples): the test set's sampling error alone"
             + (", which the two-level intervals include" if ctx.two_level else
                ", which the seeds-only intervals above leave out")]
    if mcnemar is not None:
        notes.append(f"McNemar: seeds on which the exact McNemar test of the strategy's and the {ctx.baseline}'s "
                     f"per-example correctness on the shared test set gives p < {ctx.alpha:g} (per seed, "
                     "uncorrected: a description, not a claim of the table)")
    pairs = [c.n_pairs for c in comparisons.values() if c.n_pairs >= 2]
    if ctx.test == "wilcoxon" and pairs and stats.wilcoxon_min_p(min(pairs)) >= ctx.alpha:
        n = min(pairs)
        notes.append(f"with {n} pairs the Wilcoxon test cannot give p below {stats.wilcoxon_min_p(n):g} "
                     f"(all {n} differences of one sign), so it can never be significant at α = {ctx.alpha:g}: "
                     "run more seeds or use --test ttest")
    if not any(c.strategy == ctx.baseline for c in cells):
        notes.append(f"no '{ctx.baseline}' runs, so no paired tests; choose another baseline with --baseline")
    headers = [*CELL_HEADERS, "Acc (%)", "Failed", f"Δ vs {ctx.baseline}", "p", "p (adj.)", "g_z",
               f"p ≈ (±{ctx.margin:g})", "p ≈ (adj.)", "pairs", *(["McNemar"] if mcnemar is not None else []), "Wilson (1 run)"]
    return (Table("accuracy", title, headers, rows, notes),
            {cell: (c.mean_diff, adjusted[cell]) for cell, c in comparisons.items()})


def _failures(study: Study, cell: Cell) -> str:
    """"k/n" failed or diverged seeds of the cell's n, with the statuses when any."""
    bad = study.bad.get(cell, {})
    total = len(bad) + len(study.ok.get(cell, {}))
    if not bad:
        return f"0/{total}"
    counts = defaultdict(int)
    for rec in bad.values():
        counts[str(rec.get("status"))] += 1
    return f"{len(bad)}/{total} (" + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + ")"


def _power_notes(ctx: Context, diffs: list[np.ndarray], m: int, rows: list[list]) -> list[str]:
    """What these seeds can detect: the 80%-power effect for the seeds run, the seeds a
    1-point difference needs, and a warning when intervals outsize the differences."""
    usable = [d for d in diffs if len(d) >= 2 and np.std(d) > 0]
    if not usable:
        return []
    n = int(np.median([len(d) for d in usable]))
    sd = float(np.median([np.std(d, ddof=1) for d in usable]))
    alpha = ctx.alpha / m
    mde, need = stats.power_paired(n, sd, alpha)
    if not math.isfinite(mde):
        return []
    out = [f"power (seeds only): with {n} pairs and the median sd of Δ ({sd:.2f} points), a paired t-test at "
           f"α/{m} (Holm's first step in this table's family) finds a Δ of {mde:.1f} points 80% of the time; "
           + (f"a 1-point Δ needs {need:g} seeds" if math.isfinite(need) else "no seed count found for a 1-point Δ")
           + " (noncentral t, statsmodels)"]
    halves = [(e.high - e.low) / 2 for e in (r[5] for r in rows) if math.isfinite(e.high - e.low)]
    gaps = [abs(float(np.mean(d))) for d in usable]
    if halves and np.median(halves) > np.median(gaps):
        out.append(f"the typical interval (± {np.median(halves):.1f}) is wider than the typical difference from "
                   f"{ctx.baseline} ({np.median(gaps):.1f} points): these seeds cannot rank the strategies")
    return out


def _wilson_column(ctx: Context, cells: list[Cell], rows: list[list]) -> list[Est]:
    """Per row, one run's Wilson interval at the row's mean accuracy on its own test
    set: the test set's sampling uncertainty alone, which seeds do not show."""
    out = []
    for cell, row in zip(cells, rows):
        ns = [n for rec in ctx.study.ok[cell].values() if (n := split_metric(rec, "test", "n"))]
        acc = row[5].mean
        if ns and math.isfinite(acc) and ctx.metric == "acc":
            n = int(np.median(ns))
            out.append(Est(acc, *stats.wilson(acc, n, ctx.confidence), n=n))
        else:
            out.append(Est(math.nan))
    return out


def _mcnemar_column(ctx: Context, cells: list[Cell]) -> dict[Cell, str]:
    """"k/m": of m matched seeds with per-example correctness, k where McNemar p < alpha."""
    def correct(rec: dict) -> np.ndarray | None:
        bits = correct_bits(rec)
        return None if bits is None else bits > 0

    out = {}
    for cell in cells:
        base = cell._replace(strategy=ctx.baseline)
        if cell.strategy == ctx.baseline or base not in ctx.study.ok:
            continue
        hits = tested = 0
        for seed in sorted(set(ctx.study.ok[cell]) & set(ctx.study.ok[base])):
            a, b = correct(ctx.study.ok[cell][seed]), correct(ctx.study.ok[base][seed])
            if a is not None and b is not None and len(a) == len(b):
                tested += 1
                hits += stats.mcnemar_p(a, b) < ctx.alpha
        out[cell] = f"{hits}/{tested}" if tested else "—"
    return out
