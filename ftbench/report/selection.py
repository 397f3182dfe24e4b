"""How sure each searched cell's selection is, in the report: P(selected) and the
runner-up for the Selected hyperparameters table, and the "selection uncertain"
marker (with a note) on the cell in every table that shows it. Read from the
`selection.confidence` the search stored (ftbench.results.selection); no torch.
"""

from __future__ import annotations

from typing import Any

from ftbench.report.core import Cell, Num, Study, Table

UNCERTAIN = "§"
DEFAULT_THRESHOLD = 0.8
_CELL_COLUMNS = ["Backbone", "Dataset", "Data", "Strategy"]


def selections(study: Study) -> dict[Cell, dict]:
    """One selection per searched cell (its seeds' runs share it)."""
    out = {}
    for cell, runs in study.ok.items():
        sel = next((r["selection"] for r in runs.values() if r.get("selection")), None)
        if sel:
            out[cell] = sel
    return out


def selected_p(sel: dict) -> float | None:
    """P(selected) of the cell's selected values; None when the search recorded none."""
    conf = sel.get("confidence") or {}
    return conf.get("selected_p")


def uncertain_cells(study: Study, threshold: float) -> dict[Cell, float]:
    """Cell -> P(selected), for the searched cells below `threshold`."""
    return {cell: p for cell, sel in selections(study).items()
            if (p := selected_p(sel)) is not None and p < threshold}


def confidence_columns(sel: dict, values_text, threshold: float) -> list[Any]:
    """[P(selected), Runner-up] of one Selected hyperparameters row."""
    conf = sel.get("confidence") or {}
    if not conf or conf.get("unavailable"):
        return ["n/a", "—"]
    p = conf.get("selected_p")
    runner = conf.get("runner_up")
    mark = f" {UNCERTAIN}" if p is not None and p < threshold else ""
    pruned = " pruned" if runner and runner.get("state") == "pruned" else ""
    runner_text = "—" if not runner else f"{values_text(runner['values'])} (P {runner['p']:.2f}{pruned})"
    return [Num(p, ".2f", mark), runner_text]


def confidence_notes(sels: dict[Cell, dict], threshold: float) -> list[str]:
    """The notes under the Selected hyperparameters table on P(selected)."""
    confs = [s.get("confidence") for s in sels.values() if s.get("confidence")]
    notes = []
    if confs:
        resamples = sorted({c.get("resamples") for c in confs if c.get("resamples")})
        notes.append(f"P(selected): how often the selected values would have been selected had the validation "
                     f"examples and tuning seeds come out otherwise ({'/'.join(map(str, resamples))} resamples of "
                     f"each cell: tuning seeds, then each seed's validation examples, with replacement; ties share "
                     f"a resample); Runner-up: the other trial selected most often; {UNCERTAIN} marks P(selected) "
                     f"< {threshold:g}: the selection is uncertain, another split would likely have chosen "
                     "otherwise")
        if any(c.get("pruned") for c in confs):
            notes.append("pruned trials compete in the resamples at the validation accuracy they had when the "
                         "pruner stopped them (its decision rests on the same examples); a stopped trial would "
                         "usually have scored higher, so where one was close P(selected) is, if anything, too "
                         "high; a runner-up marked (pruned) was stopped")
    missing = [c for c, s in sels.items() if not s.get("confidence") or s["confidence"].get("unavailable")]
    if missing:
        oracle = any(sels[c].get("select") == "oracle" for c in missing)
        notes.append(f"P(selected) n/a in {len(missing)} cell(s): "
                     + ("selected on test (oracle) or " if oracle else "")
                     + "their trial records predate per-example validation correctness (rerun with "
                       "`ftbench run --rerun-stale`)")
    return notes


def _mark(label: Any) -> str:
    return f"{label} {UNCERTAIN}"


def _note(uncertain: dict[Cell, float], threshold: float, rows_of: str) -> str:
    names = ", ".join(f"{c.strategy}/{c.data} (P {p:.2f})" for c, p in sorted(uncertain.items())[:6])
    more = ", ..." if len(uncertain) > 6 else ""
    return (f"{UNCERTAIN} selection uncertain: {rows_of} whose search chose its hyperparameters with P(selected) < "
            f"{threshold:g} ({names}{more}; Selected hyperparameters table): another validation split or tuning "
            "seed would likely have chosen other values, so a finding about it may not survive one")


def mark_uncertain(tables: list[Table], study: Study, threshold: float) -> dict[Cell, float]:
    """Mark each uncertain cell in every table that shows it (a cell row's Strategy
    label, a comparison's `vs`; a per-strategy row that averages one), with a note;
    return the uncertain cells."""
    uncertain = uncertain_cells(study, threshold)
    if not uncertain:
        return uncertain
    for table in tables:
        if table.empty or table.key in ("selected", "runner_up"):  # they carry P(selected) themselves
            continue
        marked = _mark_table(table, uncertain)
        if marked:
            table.notes.append(_note({c: uncertain[c] for c in marked}, threshold,
                                     "a row that is or averages a cell" if table.label_cols < 4 else "a cell"))
    return uncertain


def _mark_table(table: Table, uncertain: dict[Cell, float]) -> set[Cell]:
    headers = table.headers
    marked: set[Cell] = set()
    if headers[:4] == _CELL_COLUMNS:
        vs = 4 if len(headers) > 4 and headers[4] == "vs" else None
        for row in table.rows:
            for col in (3, vs):
                if col is None:
                    continue
                cell = Cell(str(row[0]), str(row[1]), str(row[col]), str(row[2]))
                if cell in uncertain:
                    row[col] = _mark(row[col])
                    marked.add(cell)
        return marked
    if "Strategy" in headers[:table.label_cols]:  # rows per strategy (maybe per backbone, dataset) over cells
        at = {h: headers.index(h) for h in ("Backbone", "Dataset", "Strategy") if h in headers[:table.label_cols]}
        for row in table.rows:
            hits = {c for c in uncertain if c.strategy == str(row[at["Strategy"]])
                    and all(getattr(c, h.lower()) == str(row[i]) for h, i in at.items() if h != "Strategy")}
            if hits:
                row[at["Strategy"]] = _mark(row[at["Strategy"]])
                marked |= hits
    return marked


def _verdict(delta_p: tuple[float, float] | None, alpha: float) -> str:
    if delta_p is None or delta_p[1] != delta_p[1]:  # no test (nan p)
        return "untested"
    d, p = delta_p
    return "not shown different" if p >= alpha else ("better" if d > 0 else "worse")


def runner_up_table(records: list[dict], runner_up: list[dict], baseline: str, alpha: float,
                    vs_base: dict[Cell, tuple[float, float]], accuracy) -> Table:
    """`search.final_top: 2`: each uncertain cell's verdict against the baseline at
    its selected values and at its runner-up's (the runner-up's seeds swapped into
    the study, the accuracy table's test and family rerun), and whether they agree.
    `accuracy(records)` returns the accuracy table's cell -> (Δ, adjusted p)."""
    from ftbench.report.core import load_study

    title = "Verdict at the runner-up (final_top: 2)"
    alt = load_study(runner_up)
    rows = []
    for cell in sorted(alt.ok):
        sel = next(iter(alt.ok[cell].values())).get("selection") or {}
        others = [r for r in records if Cell(*(str(r["cell"][k]) for k in Cell._fields)) != cell]
        swapped = accuracy(others + list(alt.ok[cell].values()))
        first, second = _verdict(vs_base.get(cell), alpha), _verdict(swapped.get(cell), alpha)
        p = (sel.get("confidence") or {}).get("selected_p")
        rows.append([cell.backbone, cell.dataset, cell.data, cell.strategy,
                     _values_text((sel.get("first") or {}).get("selected") or {}), Num(p, ".2f"), first,
                     _values_text(sel.get("selected") or {}), second, "yes" if first == second else "NO",
                     len(alt.ok[cell])])
    if not rows:
        return Table("runner_up", title, [], empty="no run at a runner-up's values finished")
    notes = [f"cells whose selection was uncertain ran their final seeds at the runner-up's values too; verdict: "
             f"the accuracy table's test of Δ vs {baseline} (adjusted in its family, p < {alpha:g}): better, not "
             "shown different, or worse; Same: whether the finding survives the other choice",
             "the runner-up's runs are kept apart (results/<suite>/runner-up/) and appear in no other table"]
    headers = ["Backbone", "Dataset", "Data", "Strategy", "Selected", "P(selected)", "Verdict",
               "Runner-up", "Verdict at runner-up", "Same", "Seeds"]
    return Table("runner_up", title, headers, rows, notes, label_cols=4)


def _values_text(values: dict[str, Any]) -> str:
    if not values:
        return "—"
    return ", ".join(f"{k.partition('.')[2]}={v:.3g}" if isinstance(v, float) else f"{k.partition('.')[2]}={v}"
                     for k, v in sorted(values.items()))
