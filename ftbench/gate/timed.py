"""Timing repetitions for the sequential speed gate, and its verdict on them
(`speed_reps:` in the gate config; the rule is `gate.speed`, the timing
`driver.timing`): for `ftbench baseline save --speed-reps` and, look by look, for
`ftbench compare` through `ftbench.api.compare`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from ftbench.errors import UserInputError
from ftbench.gate.baseline import cell_labels
from ftbench.gate.compare import SPEED_REGRESSION, Comparison
from ftbench.gate.speed import SpeedReps, judge_speed

SPEED_FILE = "speed.json"  # the repetitions the gate timed, written beside CURRENT's records


def time_baseline(results: Path, reps: int, plugins: Sequence[str] = (), registry=None, fresh_process: bool = True,
                  log: Callable[[str], None] = lambda line: None) -> list:
    """`reps` timing repetitions of a results folder's suite, for `baseline save`."""
    from ftbench.driver.timing import time_repetitions

    return time_repetitions(_suite_file(results), reps, plugins=plugins, registry=registry,
                            fresh_process=fresh_process, log=log)


def _suite_file(folder: Path) -> Path:
    from ftbench.results.store import RESOLVED_SUITE

    path = Path(folder) / RESOLVED_SUITE
    if not path.exists():
        raise UserInputError(f"{folder} has no {RESOLVED_SUITE}, so its cells cannot be timed; run the suite with "
                             "`ftbench run` into it first")
    return path


def gate_speed(base: dict, folder: Path, tolerances, comparison: Comparison, *, plugins: Sequence[str] = (),
               registry=None, fresh_process: bool = True,
               log: Callable[[str], None] = lambda line: None) -> Comparison:
    """Time the current code's repetitions of every cell the baseline has repetitions
    for and judge them, look by look, until each is decided or at max; sets each
    row's `speed_seq` and verdict and writes CURRENT/speed.json. Every repetition
    times all those cells, as the baseline's did, even once some are decided: a
    run's speed depends on what ran before it in its process (the first run pays
    one-time costs), so timing only the undecided ones would change their conditions."""
    from ftbench.driver.timing import time_repetitions

    plan: SpeedReps = tolerances.speed_reps
    speed = base.get("speed")
    if not speed or not any(len(c.get("log_ratios", [])) >= 2 for c in speed.get("cells", [])):
        raise UserInputError("speed_reps needs a baseline file with timing repetitions: save it with "
                             "`ftbench baseline save RESULTS -o FILE --speed-reps 10`")
    have = {cell_labels(c["cell"]): c["log_ratios"] for c in speed["cells"] if len(c["log_ratios"]) >= 2}
    rows = {cell_labels(r.cell): r for r in comparison.rows if not r.missing_in and cell_labels(r.cell) in have}
    if not rows:
        return comparison
    m, suite = len(rows), _suite_file(folder)
    timed: dict[tuple[str, ...], list[float]] = {key: [] for key in rows}
    machines: set[str] = set()
    open_cells = list(rows)
    log(f"speed: timing {m} cell(s), looks at {', '.join(map(str, plan.looks))} repetitions")
    for look in plan.looks:
        need = look - min(len(timed[k]) for k in open_cells)
        for rep in time_repetitions(suite, need, cells=list(rows), plugins=plugins, registry=registry,
                                    fresh_process=fresh_process, log=log):
            machines.add(rep.machine)
            for key in open_cells:  # a decided cell keeps the repetitions it was decided on
                timed[key].append(rep.log_ratios[key])
        if machines != {speed.get("machine")}:
            break
        judged = {key: judge_speed(timed[key], have[key], tolerances.speed_ratio, tolerances.alpha, plan, m)
                  for key in open_cells}
        for key, j in judged.items():
            rows[key].speed_seq = j
        open_cells = [key for key, j in judged.items() if j.verdict == "undecided"]
        if not open_cells:
            break
    for key, row in rows.items():
        row.speed_ratio, row.speed = None, None  # the one-shot ratio of the records does not decide here
        if machines != {speed.get("machine")}:
            row.notes.append(f"speed not gated: the baseline was timed on {speed.get('machine')}, this is "
                             f"{', '.join(sorted(machines))}; save the baseline on this kind of machine "
                             "(`ftbench baseline save --speed-reps`)")
            continue
        j = row.speed_seq
        row.speed_ratio = j.ratio
        if j.verdict == "slower":
            row.verdicts.append(SPEED_REGRESSION)
        elif j.verdict == "undecided":
            row.notes.append(f"speed undecided at max {j.n} repetitions: ratio {j.describe()}; passes (no "
                             f"slowdown below {tolerances.speed_ratio:g} shown)")
    _write(folder / SPEED_FILE, timed, rows, sorted(machines))
    return comparison


def _write(path: Path, timed: dict, rows: dict, machines: list[str]) -> None:
    from ftbench.results.store import write_json_atomic

    cells = []
    for key, row in rows.items():
        j = row.speed_seq
        cells.append({"cell": row.cell, "log_ratios": timed[key],
                      **({"verdict": j.verdict, "ratio": j.ratio, "low": j.low, "high": j.high,
                         "n_baseline": j.n_baseline} if j else {})})
    try:
        write_json_atomic(path, {"machines": machines, "cells": cells})
    except OSError:  # a read-only CURRENT: the verdict stands without its file
        pass

