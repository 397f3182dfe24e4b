"""The domain shift table: accuracy on shifted test sets, the gap, effective robustness."""

from __future__ import annotations

from ftbench import stats
from ftbench.report.core import _CELL_HEADERS, Cell, Table, _cell_rows, _Ctx, _mark, _seed_note, shifted_mean


def _unlabelled(study, cell: Cell) -> str:
    """The unlabelled target data a cell's runs adapted to ("" for none): the records'
    `unlabelled` field (records from before it existed have none)."""
    return ", ".join(sorted({(rec.get("unlabelled") or {}).get("source", "") for rec in study.ok[cell].values()}
                            - {""}))


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
    adapted = {c: _unlabelled(study, c) for c in shifted}
    for dataset in sorted({c.dataset for c in shifted}):
        pairs = [(c, s) for c in shifted if c.dataset == dataset for s in shifted[c] if s in test.get(c, {})]
        # runs that saw unlabelled target data sit off the line by design: fit it on the others
        plain = [(c, s) for c, s in pairs if not adapted[c]]
        basis = plain if len({test[c][s] for c, s in plain}) >= 2 else pairs
        fit = stats.robustness_fit([test[c][s] for c, s in basis], [shifted[c][s] for c, s in basis])
        sets = sorted({name for c in shifted if c.dataset == dataset for rec in study.ok[c].values()
                       for name in rec["metrics"]["shifted"]})
        if fit is None:
            fit_notes.append(f"{dataset}: fewer than two distinct test accuracies, no fit; sets: {', '.join(sets)}")
            continue
        sign = "+" if fit.intercept >= 0 else "−"
        fit_notes.append(f"{dataset}: shifted = {fit.slope:.3f} × test {sign} {abs(fit.intercept):.2f} "
                         f"over {len(basis)} runs{' not adapted' if basis is plain and len(plain) < len(pairs) else ''} "
                         f"(r = {fit.r:.2f}); sets: {', '.join(sets)}")
        for c, s in pairs:
            er.setdefault(c, {})[s] = float(stats.effective_robustness([test[c][s]], [shifted[c][s]], fit)[0])
    gap = {c: {s: test[c][s] - v for s, v in by.items() if s in test.get(c, {})} for c, by in shifted.items()}
    cells, rows = _cell_rows(ctx, [{c: test[c] for c in shifted if c in test}, shifted, gap, er], [1, 1, 1, 1])
    for col, higher in ((5, True), (6, True), (7, False), (8, True)):
        _mark(rows, [c.task for c in cells], col, higher, ctx)
    if any(adapted.values()):  # the column appears only in studies with adapted runs
        for cell, row in zip(cells, rows):
            row.append(adapted.get(cell) or "—")
    notes = [_seed_note([r[6] for r in rows], study), stats.interval_label(ctx.interval, ctx.confidence),
             f"shifted: mean test {ctx.metric} over the shifted sets; gap = test − shifted; effective robustness = "
             "shifted − the line fitted per dataset over all ok runs (shifted vs test):", *fit_notes,
             ctx.marker_note("within each backbone/dataset/data (lower gap)")]
    headers = [*_CELL_HEADERS, "Test", "Shifted", "Gap", "Eff. robustness"]
    if any(adapted.values()):
        headers.append("Adapted")
        notes.append("adapted: the unlabelled target-domain images a strategy trained on (suite `adapt:`); "
                     "— = none: only the adapted rows saw the shifted domain (unlabelled) before its test")
    return Table("shift", title, headers, rows, notes), er
