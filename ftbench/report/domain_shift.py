"""The domain shift table: accuracy on each shifted test set, the gap, effective robustness."""

from __future__ import annotations

import math

from ftbench import stats
from ftbench.report.core import Cell, Est, Table
from ftbench.report.family import Family, mark_column
from ftbench.report.context import Context, seed_note, acc_interval_label

ShiftKey = tuple[Cell, str]  # a cell and one shifted test set


def _unlabelled(study, cell: Cell) -> str:
    """The unlabelled target data a cell's runs adapted to ("" for none): the records'
    `unlabelled` field (records from before it existed have none)."""
    return ", ".join(sorted({(rec.get("unlabelled") or {}).get("source", "") for rec in study.ok[cell].values()}
                            - {""}))


def shift_table(ctx: Context) -> tuple[Table, dict[ShiftKey, dict[int, float]]]:
    """Per cell and shifted set: test and shifted accuracy, the gap, and effective
    robustness against a line fitted in logit space (Taori et al. 2020) over the
    reference strategies only (baseline and scratch), so adding a strategy to the
    folder changes no other strategy's value. Shift types are never averaged."""
    study, test = ctx.study, ctx.acc
    shifted: dict[ShiftKey, dict[int, float]] = {}
    for cell, runs in study.ok.items():
        for seed, rec in runs.items():
            for name, m in ((rec.get("metrics") or {}).get("shifted") or {}).items():
                v = (m or {}).get(ctx.metric)
                if v is not None and math.isfinite(v) and seed in test.get(cell, {}):
                    shifted.setdefault((cell, name), {})[seed] = float(v)
    title = "Domain shift"
    if not shifted:
        return Table("shift", title, [], empty="no shifted test sets in these runs; add shifted sets to "
                                               "the dataset to measure robustness"), {}
    reference = (ctx.baseline, ctx.scratch)
    er: dict[ShiftKey, dict[int, float]] = {}
    fits: dict[tuple[str, str], stats.LinearFit] = {}
    fit_notes, na = [], {}
    adapted = {c: _unlabelled(study, c) for c in {k[0] for k in shifted}}
    for dataset, name in sorted({(c.dataset, n) for c, n in shifted}):
        keys = [k for k in shifted if k[0].dataset == dataset and k[1] == name]
        # runs that saw unlabelled target data sit off the line by design: never part of the reference
        ref = [(k, s) for k in keys if k[0].strategy in reference and not adapted[k[0]] for s in shifted[k]]
        fit = stats.robustness_fit([test[k[0]][s] for k, s in ref], [shifted[k][s] for k, s in ref])
        problem = ("fewer than two distinct test accuracies among the reference runs" if fit is None
                   else fit.problem())
        if fit is not None:
            sign = "+" if fit.intercept >= 0 else "−"
            fit_notes.append(f"{dataset} / {name}: logit(shifted) = {fit.slope:.3f} × logit(test) {sign} "
                             f"{abs(fit.intercept):.2f} over {len(ref)} reference runs of "
                             f"{', '.join(sorted({k[0].strategy for k, _ in ref}))} ("
                             + (f"r = {fit.r:.2f}" if math.isfinite(fit.r) else "r undefined") + ", test "
                             f"accuracies spanning {fit.spread:.1f} points)")
        if problem:
            fit_notes.append(f"{dataset} / {name}: effective robustness n/a: {problem}")
            for k in keys:
                na[k] = "n/a"
            continue
        fits[(dataset, name)] = fit
        for k in keys:
            er[k] = {s: float(stats.effective_robustness([test[k[0]][s]], [v], fit)[0]) for s, v in shifted[k].items()}
    order = sorted(shifted, key=lambda k: (*ctx.cell_key(k[0])[:3], k[1], ctx.strategy_key(k[0].strategy)))
    rows = []
    for k in order:
        cell, name = k
        ests = [ctx.est({s: test[cell][s] for s in shifted[k]}, cell=cell), ctx.est(shifted[k]),
                ctx.est({s: test[cell][s] - v for s, v in shifted[k].items()}),
                _er_est(ctx, er[k], test[cell], fits[(cell.dataset, name)]) if k in er else Est(math.nan)]
        rows.append([cell.backbone, cell.dataset, cell.data, cell.strategy, name, max(e.n for e in ests), *ests])
    family = Family(ctx.alpha)
    for col, higher in ((6, True), (7, True), (8, False), (9, True)):
        mark_column(rows, [(k[0].task, k[1]) for k in order], col, higher, ctx, family, labels=5)
    family.close()
    for k, row in zip(order, rows):
        if k in na:
            row[9] = na[k]
    notes = [seed_note([r[7] for r in rows], study),
             f"Test: {acc_interval_label(ctx)}; Shifted, Gap: {stats.interval_label(ctx.interval, ctx.confidence)}",
             f"shifted: test {ctx.metric} on each shifted set (shift types are not averaged); gap = test − shifted; "
             f"effective robustness = shifted − the accuracy predicted by a line fitted in logit space over the "
             f"reference strategies' runs ({', '.join(reference)}) per dataset and shifted set, so adding a strategy "
             f"changes no other value; n/a below {stats.MIN_REFERENCE_RUNS} reference runs, when their test "
             f"accuracies span under {stats.MIN_REFERENCE_SPREAD:g} points, or with a slope that is not positive; "
             "its interval adds the line's own uncertainty at the cell's test accuracy to the seeds' (delta method, "
             "t with the seeds' df); its markers compare seeds only (the line is shared within a group):", *fit_notes,
             ctx.marker_note("within each backbone/dataset/data and shifted set (lower gap)"), family.note()]
    headers = ["Backbone", "Dataset", "Data", "Strategy", "Shift", "n", "Test", "Shifted", "Gap", "Eff. robustness"]
    if any(adapted.values()):  # the column appears only in studies with adapted runs
        for k, row in zip(order, rows):
            row.append(adapted[k[0]] or "—")
        headers.append("Adapted")
        notes.append("adapted: the unlabelled target-domain images a strategy trained on (suite `adapt:`); "
                     "— = none: only the adapted rows saw the shifted domain (unlabelled) before its test; "
                     "adapted runs are never part of the reference line")
    return Table("shift", title, headers, rows, notes, label_cols=5), er


def _er_est(ctx: Context, er: dict[int, float], test: dict[int, float], fit: stats.LinearFit) -> Est:
    """Effective robustness over the cell's seeds with an interval that includes the fit's uncertainty."""
    seeds = sorted(er)
    mean, low, high = stats.er_summary([test[s] for s in seeds], [er[s] for s in seeds], fit, ctx.confidence)
    return Est(mean, low, high, len(seeds), dict(er))
