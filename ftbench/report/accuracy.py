"""The accuracy table: test accuracy per cell, each strategy paired against the baseline."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ftbench import stats
from ftbench.evaluate import decode_correct
from ftbench.report.core import (_CELL_HEADERS, Cell, Est, Num, Study, Table, _cell_rows, _Ctx, _mark, _seed_note,
                                 split_metric)


def _accuracy_table(ctx: _Ctx) -> tuple[Table, dict[Cell, tuple[float, float]]]:
    """Accuracy per cell with each strategy's paired test against the baseline;
    also returns cell -> (mean difference, Holm-adjusted p) for the summary."""
    acc = ctx.acc
    title = f"Accuracy (test {ctx.metric}, %)"
    if not acc:
        return Table("accuracy", title, [], empty="no ok runs with a test accuracy yet"), {}
    cells, rows = _cell_rows(ctx, [acc], [1])
    comparisons: dict[Cell, stats.Paired] = {}
    diffs: dict[Cell, np.ndarray] = {}
    for cell in cells:
        base = cell._replace(strategy=ctx.baseline)
        if cell.strategy != ctx.baseline and base in acc:
            _, x, y = stats.match_seeds(acc[cell], acc[base])
            comparisons[cell] = stats.paired_test(x, y, test=ctx.test, confidence=ctx.confidence)
            diffs[cell] = x - y
    adjusted = dict(zip(comparisons, stats.holm([c.p for c in comparisons.values()])))
    mcnemar = _mcnemar_column(ctx, cells) if _has_correctness(ctx.study, cells) else None
    for cell, row in zip(cells, rows):
        c = comparisons.get(cell)
        row.append(_failures(ctx.study, cell))
        if cell.strategy == ctx.baseline:
            row += ["baseline", Num(None, "p"), Num(None, "p"), Est(math.nan), Num(None, "p"), ""]
        elif c is None:
            row += ["—", Num(None, "p"), Num(None, "p"), Est(math.nan), Num(None, "p"), 0]
        else:
            base = cell._replace(strategy=ctx.baseline)
            _, x, y = stats.match_seeds(acc[cell], acc[base])
            row += [Est(c.mean_diff, c.diff_low, c.diff_high, c.n_pairs, signed=True),
                    Num(c.p, "p"), Num(adjusted[cell], "p"),
                    Est(*stats.hedges_gz(diffs[cell], ctx.confidence), n=c.n_pairs, digits=2, signed=True),
                    Num(stats.tost_paired(x, y, ctx.margin), "p"), c.n_pairs]
        if mcnemar is not None:
            row.append(mcnemar.get(cell, ""))
    _mark(rows, [c.task for c in cells], 5, True, ctx)
    m = sum(math.isfinite(p) for p in adjusted.values())
    notes = [_seed_note([r[5] for r in rows], ctx.study),
             f"{stats.interval_label(ctx.interval, ctx.confidence)}; failed: failed or diverged seeds of all the "
             "cell's seeds, left out of its mean (a method that fails is not as good as its ok seeds say)",
             f"Δ = strategy − {ctx.baseline} on matched seeds with its {ctx.confidence:.0%} Student-t CI; g_z = "
             f"Hedges' g of the paired differences (d_z = mean Δ / sd Δ, small-sample corrected) with its "
             f"{ctx.confidence:.0%} noncentral-t CI (from 3 pairs)",
             f"p: {stats.test_label(ctx.test)} vs {ctx.baseline} on matched seeds, raw and Holm-Bonferroni over {m} "
             f"comparison{'s' if m != 1 else ''}; constant differences (no variance) get the exact sign-flip p",
             f"p ≈: paired TOST that |Δ| < {ctx.margin:g} points (set with --margin); p ≈ < {ctx.alpha:g} backs "
             f"\"equivalent to {ctx.baseline}\"; a large p (Holm) alone does not",
             "multiplicity: Holm covers this table's comparisons with the baseline (one family); each marker "
             "column covers the pairs within one group; raw p and p ≈ are per comparison, uncorrected",
             ctx.marker_note("within each backbone/dataset/data"),
             *_power_notes(ctx, list(diffs.values()), max(m, 1), rows),
             *_test_set_notes(ctx, cells)]
    if mcnemar is not None:
        notes.append(f"McNemar: seeds on which the exact McNemar test of the strategy's and the {ctx.baseline}'s "
                     f"per-example correctness on the shared test set gives p < {ctx.alpha:g} (per seed, uncorrected)")
    pairs = [c.n_pairs for c in comparisons.values() if c.n_pairs >= 2]
    if ctx.test == "wilcoxon" and pairs and stats.wilcoxon_min_p(min(pairs)) >= ctx.alpha:
        n = min(pairs)
        notes.append(f"with {n} pairs the Wilcoxon test cannot give p below {stats.wilcoxon_min_p(n):g} "
                     f"(all {n} differences of one sign), so it can never be significant at α = {ctx.alpha:g}: "
                     "run more seeds or use --test ttest")
    if not any(c.strategy == ctx.baseline for c in cells):
        notes.append(f"no '{ctx.baseline}' runs, so no paired tests; choose another baseline with --baseline")
    headers = [*_CELL_HEADERS, "Acc (%)", "Failed", f"Δ vs {ctx.baseline}", "p", "p (Holm)", "g_z",
               f"p ≈ (±{ctx.margin:g})", "pairs", *(["McNemar"] if mcnemar is not None else [])]
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


def _power_notes(ctx: _Ctx, diffs: list[np.ndarray], m: int, rows: list[list]) -> list[str]:
    """What these seeds can detect: the 80%-power effect for the seeds run, the seeds a
    1-point difference needs, and a warning when intervals outsize the differences."""
    usable = [d for d in diffs if len(d) >= 2 and np.std(d) > 0]
    if not usable:
        return []
    n = int(np.median([len(d) for d in usable]))
    sd = float(np.median([np.std(d, ddof=1) for d in usable]))
    alpha = ctx.alpha / m
    mde, need = stats.power_paired(n, sd, alpha)
    out = [f"power: with {n} pairs and the median sd of Δ ({sd:.2f} points), a paired t-test at α/{m} (Holm's first "
           f"step) finds a Δ of {mde:.1f} points 80% of the time; a 1-point Δ needs {need:g} seeds "
           "(noncentral t, statsmodels)"]
    halves = [(e.high - e.low) / 2 for e in (r[5] for r in rows) if math.isfinite(e.high - e.low)]
    gaps = [abs(float(np.mean(d))) for d in usable]
    if halves and np.median(halves) > np.median(gaps):
        out.append(f"the typical interval (± {np.median(halves):.1f}) is wider than the typical difference from "
                   f"{ctx.baseline} ({np.median(gaps):.1f} points): these seeds cannot rank the strategies")
    return out


def _test_set_notes(ctx: _Ctx, cells: list[Cell]) -> list[str]:
    """Per dataset, the Wilson interval of one run at the mean accuracy: the test set's
    own sampling uncertainty, which seeds (all scored on one test set) do not show."""
    by_dataset: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for cell in cells:
        for rec in ctx.study.ok[cell].values():
            a, n = split_metric(rec, "test", "acc"), split_metric(rec, "test", "n")
            if a is not None and n:
                by_dataset[cell.dataset].append((a, int(n)))
    parts = []
    for dataset, runs in sorted(by_dataset.items()):
        a, n = float(np.mean([r[0] for r in runs])), int(np.median([r[1] for r in runs]))
        low, high = stats.wilson(a, n, ctx.confidence)
        parts.append(f"{dataset} [{low:.1f}, {high:.1f}] at {a:.1f}% of {n}")
    if not parts:
        return []
    return [f"test-set sampling: one run's {ctx.confidence:.0%} Wilson interval ({'; '.join(parts)} test "
            "examples); the intervals above vary the seed, not the test set, so they leave this out"]


def _has_correctness(study: Study, cells: list[Cell]) -> bool:
    return any("correct" in ((rec.get("metrics") or {}).get("test") or {})
               for cell in cells for rec in study.ok[cell].values())


def _mcnemar_column(ctx: _Ctx, cells: list[Cell]) -> dict[Cell, str]:
    """"k/m": of m matched seeds with per-example correctness, k where McNemar p < alpha."""
    def correct(rec: dict) -> np.ndarray | None:
        test = (rec.get("metrics") or {}).get("test") or {}
        return decode_correct(test["correct"], int(test["n"])) if test.get("correct") and test.get("n") else None

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
