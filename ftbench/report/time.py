"""The training time and cost table: wall and training seconds, throughput, time to target, parameters."""

from __future__ import annotations

from ftbench.fingerprint import summarise as summarise_fingerprints
from ftbench.report.core import CELL_HEADERS, Num, Table, time_to_target, timing
from ftbench.report.family import Family, mark_column
from ftbench.report.context import cell_rows, Context, seed_note


def time_table(ctx: Context) -> Table:
    study = ctx.study
    columns = [study.values(timing("wall_s")), study.values(timing("train_s")),
               study.values(timing("samples_per_s")), study.values(time_to_target)]
    title = "Training time & cost"
    if not any(columns):
        return Table("time", title, [], empty="no ok runs with timings yet")
    cells, rows = cell_rows(ctx, columns, [2, 2, 0, 2], log=True)
    for cell, row in zip(cells, rows):
        reached = f"{row[8].n}/{len(study.ok.get(cell, {}))}"
        params = [(r.get("params") or {}) for r in study.ok.get(cell, {}).values()]
        trainable, total = (params[0].get("trainable"), params[0].get("total")) if params else (None, None)
        share = trainable / total * 100 if trainable is not None and total else None
        row[9:] = [reached, Num(trainable, ",d"), Num(share, ".2f")]
    family = Family(ctx.alpha)
    for col, higher in ((5, False), (6, False), (7, True), (8, False)):
        mark_column(rows, [c.task for c in cells], col, higher, ctx, family, log=True)
    family.close()
    envs = [r.get("env") or {} for runs in study.ok.values() for r in runs.values()]
    devices = sorted({f"{e['device']} ({e.get('device_name')})" for e in envs if e.get("device")}) or ["unknown"]
    notes = [seed_note([r[5] for r in rows], study),
             f"geometric mean [{ctx.confidence:.0%} CI], Student-t on the log scale over seeds, so the interval "
             "is asymmetric and never below zero",
             "time to target: seconds of training until val accuracy reached the suite's target, over the "
             "seeds that reached it (reached = seeds reaching it / ok seeds)",
             ctx.marker_note("within each backbone/dataset/data (lower time, higher samples/s), tested on the "
                             "log scale (ratios), as the geometric means are shown"),
             family.note(),
             f"measured on: {', '.join(devices)}" + ("; times from different devices do not compare"
                                                      if len(devices) > 1 else "")]
    if machines := summarise_fingerprints([r for runs in study.ok.values() for r in runs.values()]):
        notes.append(machines)
    headers = [*CELL_HEADERS, "Wall s", "Train s", "Samples/s", "To target s", "Reached", "Trainable",
               "Trainable %"]
    return Table("time", title, headers, rows, notes)
