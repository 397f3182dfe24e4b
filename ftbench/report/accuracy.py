"""The accuracy table: test accuracy per cell, each strategy paired against the baseline."""

from __future__ import annotations

import math

from ftbench import stats
from ftbench.report.core import _CELL_HEADERS, Cell, Est, Num, Table, _cell_rows, _Ctx, _mark, _seed_note


def _accuracy_table(ctx: _Ctx) -> tuple[Table, dict[Cell, tuple[float, float]]]:
    """Accuracy per cell with each strategy's paired test against the baseline;
    also returns cell -> (mean difference, Holm-adjusted p) for the summary."""
    acc = ctx.acc
    title = f"Accuracy (test {ctx.metric}, %)"
    if not acc:
        return Table("accuracy", title, [], empty="no ok runs with a test accuracy yet"), {}
    cells, rows = _cell_rows(ctx, [acc], [1])
    comparisons: dict[Cell, stats.Paired] = {}
    for cell in cells:
        base = cell._replace(strategy=ctx.baseline)
        if cell.strategy != ctx.baseline and base in acc:
            _, x, y = stats.match_seeds(acc[cell], acc[base])
            comparisons[cell] = stats.paired_test(x, y, test=ctx.test, confidence=ctx.confidence)
    adjusted = dict(zip(comparisons, stats.holm([c.p for c in comparisons.values()])))
    for cell, row in zip(cells, rows):
        c = comparisons.get(cell)
        if cell.strategy == ctx.baseline:
            row += ["baseline", "", "", ""]
        elif c is None:
            row += ["—", Num(None), Num(None), 0]
        else:
            row += [Est(c.mean_diff, c.diff_low, c.diff_high, c.n_pairs, signed=True),
                    Num(adjusted[cell], "p"), Num(c.d_z), c.n_pairs]
    _mark(rows, [c.task for c in cells], 5, True, ctx)
    m = sum(math.isfinite(p) for p in adjusted.values())
    notes = [_seed_note([r[5] for r in rows], ctx.study),
             f"{stats.interval_label(ctx.interval, ctx.confidence)}; Δ = strategy − {ctx.baseline} on matched seeds "
             f"with its {ctx.confidence:.0%} Student-t CI; d_z = mean Δ / sd Δ",
             f"p: {stats.test_label(ctx.test)} vs {ctx.baseline} on matched seeds, Holm-Bonferroni over {m} "
             f"comparison{'s' if m != 1 else ''}",
             ctx.marker_note("within each backbone/dataset/data")]
    pairs = [c.n_pairs for c in comparisons.values() if c.n_pairs >= 2]
    if ctx.test == "wilcoxon" and pairs and stats.wilcoxon_min_p(min(pairs)) >= ctx.alpha:
        n = min(pairs)
        notes.append(f"with {n} pairs the Wilcoxon test cannot give p below {stats.wilcoxon_min_p(n):g} "
                     f"(all {n} differences of one sign), so it can never be significant at α = {ctx.alpha:g}: "
                     "run more seeds or use --test ttest")
    if not any(c.strategy == ctx.baseline for c in cells):
        notes.append(f"no '{ctx.baseline}' runs, so no paired tests; choose another baseline with --baseline")
    headers = [*_CELL_HEADERS, "Acc (%)", f"Δ vs {ctx.baseline}", "p (Holm)", "d_z", "pairs"]
    return (Table("accuracy", title, headers, rows, notes),
            {cell: (c.mean_diff, adjusted[cell]) for cell, c in comparisons.items()})
