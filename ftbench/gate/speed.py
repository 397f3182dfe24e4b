"""The sequential speed gate (`speed_reps:` in the gate config; docs/ci.md).

A one-shot speed ratio from short runs on a shared machine swings by a factor of
two with nothing changed. Here speed is measured by timing repetitions
(`ftbench.driver.timing`): each a fresh process that alternates the calibration
loop and one run per cell, giving per cell y = log(run / calibration samples/s).
The baseline file keeps its repetitions' y per cell (`ftbench baseline save
--speed-reps N`); the gate times the current code the same way, one look at a time.

Per cell, d = mean(y current) - mean(y baseline) is the log of the calibrated
speed ratio current / baseline. Its repeated confidence interval at look k (current
repetitions min, min + step, ..., max) is d ± t · se, with the Welch standard
error and degrees of freedom and t the quantile of look k's nominal level of the
one-sided O'Brien-Fleming-type design at alpha / m (`stats.sequential.speed_interval`;
m: the cells timed, Bonferroni):

- "slower": the interval lies below log(speed_ratio): a SPEED REGRESSION;
- "not slower": it lies above: pass;
- "undecided": neither yet; the cell gets the next look's repetitions. Still
  undecided at max, it passes with a note (as the accuracy gate passes a drop it
  cannot show).

Each wrong verdict ("slower" when the true ratio is at or above the threshold, "not
slower" when at or below) has chance at most alpha / m per cell over all looks, if
the repetitions' y are independent and normal with one variance per side. The
baseline's mean is shared by every look, which makes the looks' statistics more
alike than the design assumes: the boundaries are then conservative.

Repetitions timed on another machine (CPU model or GPU, thread count) than the
baseline's are not judged: the calibration loop cancels load, not a processor's
own mix of strengths (the cell says so, and passes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ftbench.errors import UserInputError
from ftbench.gate.baseline import CELL_KEYS, cell_labels
from ftbench.stats.sequential import SpeedVerdict, look_schedule, speed_interval

SPEED_FILE = "speed.json"  # the repetitions the gate timed, written beside CURRENT's records


@dataclass(frozen=True)
class SpeedReps:
    """`speed_reps: {min, max, step}` of the gate config: the looks, in repetitions."""

    min: int = 4
    max: int = 16
    step: int = 2

    @classmethod
    def parse(cls, value: Any) -> "SpeedReps | None":
        if value is None or isinstance(value, SpeedReps):
            return value
        if not isinstance(value, dict) or set(value) - {"min", "max", "step"}:
            raise UserInputError(f"speed_reps must be a mapping with keys min, max, step (e.g. {{min: 4, max: 16, "
                                 f"step: 2}}), got {value!r}")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in value.values()):
            raise UserInputError(f"speed_reps' min, max and step must be whole numbers, got {value!r}")
        out = cls(**value)
        try:
            out.looks
        except ValueError as exc:
            raise UserInputError(f"speed_reps: {exc}") from None
        return out

    @property
    def looks(self) -> tuple[int, ...]:
        return look_schedule(self.min, self.max, self.step)


@dataclass(frozen=True)
class SpeedJudgement:
    verdict: SpeedVerdict
    n: int  # current repetitions
    n_baseline: int
    ratio: float  # calibrated speed current / baseline (geometric means)
    low: float
    high: float
    last: bool  # at max: no more repetitions

    def describe(self) -> str:
        return f"{self.ratio:.2f} [{self.low:.2f}, {self.high:.2f}] n={self.n}"


def judge_speed(current: Sequence[float], baseline: Sequence[float], threshold: float, alpha: float,
                plan: SpeedReps, m: int = 1) -> SpeedJudgement:
    """The verdict on one cell's repetitions (module docstring), at alpha / m."""
    d, low, high = speed_interval(current, baseline, plan.looks, alpha=alpha / m)
    cut = math.log(threshold)
    verdict: SpeedVerdict = "slower" if high < cut else "not slower" if low > cut else "undecided"
    return SpeedJudgement(verdict, len(current), len(baseline), math.exp(d), math.exp(low), math.exp(high),
                          len(current) >= plan.looks[-1])


def baseline_speed(repetitions: list) -> dict:
    """What a baseline file keeps of timing repetitions (`driver.timing.Repetition`s):
    the machine, and per cell its y in the order timed."""
    machines = sorted({r.machine for r in repetitions})
    keys = sorted({k for r in repetitions for k in r.log_ratios})
    return {"machine": machines[0] if len(machines) == 1 else machines,
            "cells": [{"cell": dict(zip(CELL_KEYS, key)),
                       "log_ratios": [r.log_ratios[key] for r in repetitions if key in r.log_ratios]}
                      for key in keys]}


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


def gate_speed(base: dict, folder: Path, tolerances, comparison, *, plugins: Sequence[str] = (), registry=None,
               fresh_process: bool = True, log: Callable[[str], None] = lambda line: None):
    """Time the current code's repetitions of every cell the baseline has repetitions
    for and judge them (module docstring), look by look, timing only undecided cells;
    sets each row's `speed_seq` and verdict and writes CURRENT/speed.json."""
    from ftbench.driver.timing import time_repetitions
    from ftbench.gate.compare import SPEED_REGRESSION

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
        for rep in time_repetitions(suite, need, cells=open_cells, plugins=plugins, registry=registry,
                                    fresh_process=fresh_process, log=log):
            machines.add(rep.machine)
            for key, y in rep.log_ratios.items():
                timed[key].append(y)
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
                      **({"verdict": j.verdict, "ratio": j.ratio, "low": j.low, "high": j.high} if j else {})})
    try:
        write_json_atomic(path, {"machines": machines, "cells": cells})
    except OSError:  # a read-only CURRENT: the verdict stands without its file
        pass

