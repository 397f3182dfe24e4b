"""The domain shift table: accuracy on shifted test sets, the gap, effective robustness."""

from __future__ import annotations

from ftbench import stats
from ftbench.report.core import _CELL_HEADERS, Cell, Table, _cell_rows, _Ctx, _mark, _seed_note, shifted_mean


def _shift_table(ctx: _Ctx) -> tuple[Table, dict[Cell, dict[int, float]]]:
    study = ctx.study
    shifted = study.values(lambda r: shifted_mean(r, ctx.metric))
    title = "Domain shift"
    if not shifted:
        return Table("shift", title, [], empty="no shifted test sets in these runs; add shifted sets to "
                                               "the dataset to measure robustness"), {}
    test = ctx.acc
    er: dict[Cell, dict[int, float]] = {}
    fit_notes = []
    for dataset in sorted({c.dataset for c in shifted}):
        pairs = [(c, s) for c in shifted if c.dataset == dataset for s in shifted[c] if s in test.get(c, {})]
        fit = stats.robustness_fit([test[c][s] for c, s in pairs], [shifted[c][s] for c, s in pairs])
        sets = sorted({name for c in shifted if c.dataset == dataset for rec in study.ok[c].values()
                       for name in rec["metrics"]["shifted"]})
        if fit is None:
            fit_notes.append(f"{dataset}: fewer than two distinct test accuracies, no fit; sets: {', '.join(sets)}")
            continue
        sign = "+" if fit.intercept >= 0 else "−"
        fit_notes.append(f"{dataset}: shifted = {fit.slope:.3f} × test {sign} {abs(fit.intercept):.2f} "
                         f"over {len(pairs)} runs (r = {fit.r:.2f}); sets: {', '.join(sets)}")
        for c, s in pairs:
            er.setdefault(c, {})[s] = float(stats.effective_robustness([test[c][s]], [shifted[c][s]], fit)[0])
    gap = {c: {s: test[c][s] - v for s, v in by.items() if s in test.get(c, {})} for c, by in shifted.items()}
    cells, rows = _cell_rows(ctx, [{c: test[c] for c in shifted if c in test}, shifted, gap, er], [1, 1, 1, 1])
    for col, higher in ((5, True), (6, True), (7, False), (8, True)):
        _mark(rows, [c.task for c in cells], col, higher, ctx)
    notes = [_seed_note([r[6] for r in rows], study), stats.interval_label(ctx.interval, ctx.confidence),
             f"shifted: mean test {ctx.metric} over the shifted sets; gap = test − shifted; effective robustness = "
             "shifted − the line fitted per dataset over all ok runs (shifted vs test):", *fit_notes,
             ctx.marker_note("within each backbone/dataset/data (lower gap)")]
    headers = [*_CELL_HEADERS, "Test", "Shifted", "Gap", "Eff. robustness"]
    return Table("shift", title, headers, rows, notes), er
