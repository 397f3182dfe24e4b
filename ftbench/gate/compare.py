"""The regression gate's judgement: current results against a baseline (both as
`ftbench.gate.baseline.load_side` reads them). `compare` decides, per cell:

- accuracy regression: the current mean is below the baseline mean by more than
  `acc_drop` points AND a one-sided Welch t-test (current < baseline) gives
  p < `alpha`. With fewer than 2 seeds on a side no test can run; then the drop
  alone decides, and the row says so ("n<2, drop only").
- speed regression: mean samples/s current / baseline < `speed_ratio`, compared
  only when both sides ran on the same device name or both have a calibration; with
  `speed_reps`, instead the sequential rule on timing repetitions
  (`ftbench.gate.speed`; `ftbench.gate.timed` applies it, through `ftbench.api.compare`).
- missing: a cell on one side only; a failure only with `fail_on_missing`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import stats

from ftbench.errors import FtbenchError, UserInputError
from ftbench.gate.baseline import CELL_KEYS, ENV_KEYS, cell_labels
from ftbench.gate.more_seeds import SeededJudgement, judge, matched
from ftbench.gate.speed import SpeedJudgement
from ftbench.gate.tolerances import Tolerances

ACC_REGRESSION = "ACC REGRESSION"
SPEED_REGRESSION = "SPEED REGRESSION"
SEED_MISMATCH = "SEED MISMATCH"
MISSING = "missing"
NO_TEST = "n<2, drop only"
SEQUENTIAL = "sequential"


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (0 for one value) and count of per-seed values;
    `of_total`, when set, the count of the side's seeds they were taken from (matched
    seeds are a subset)."""

    mean: float
    sd: float
    n: int
    of_total: int | None = None

    @classmethod
    def of(cls, values: list[float], of_total: int | None = None) -> "Summary":
        arr = np.asarray(values, dtype=float)
        return cls(float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, len(arr),
                   of_total if of_total is not None and of_total != len(arr) else None)

    def __str__(self) -> str:
        count = f"{self.n} of {self.of_total}" if self.of_total is not None else f"{self.n}"
        return f"{self.mean:.2f}±{self.sd:.2f} ({count})" if self.n > 1 else f"{self.mean:.2f} ({count})"


@dataclass
class CellResult:
    """The verdict on one cell and the numbers behind it."""

    cell: dict[str, str]
    baseline: Summary | None = None
    current: Summary | None = None
    p_value: float | None = None
    test: str = ""  # "welch", NO_TEST, or "" when accuracy was not compared
    speed_ratio: float | None = None
    speed: tuple[float, float] | None = None  # mean samples/s (baseline, current)
    missing_in: Literal["baseline", "current"] | None = None
    seeded: SeededJudgement | None = None  # with `more_seeds`: the sequential verdict on matched seeds
    speed_seq: SpeedJudgement | None = None  # with `speed_reps`: the sequential speed verdict
    verdicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "/".join(str(self.cell[k]) for k in CELL_KEYS)

    @property
    def delta(self) -> float | None:
        return self.current.mean - self.baseline.mean if self.baseline and self.current else None

    @property
    def verdict(self) -> str:
        return ", ".join(self.verdicts) or "ok"


@dataclass
class Comparison:
    """Every cell's result, in cell order, and the tolerances that judged them."""

    rows: list[CellResult]
    tolerances: Tolerances
    env_changes: list[str] = field(default_factory=list)  # "torch 2.14.1 -> 2.15.0"
    warnings: list[str] = field(default_factory=list)  # stale records compared anyway (ftbench.api.compare)

    @property
    def regressions(self) -> list[CellResult]:
        return [r for r in self.rows if {ACC_REGRESSION, SPEED_REGRESSION, SEED_MISMATCH} & set(r.verdicts)]

    @property
    def missing(self) -> list[CellResult]:
        return [r for r in self.rows if r.missing_in]

    @property
    def failed(self) -> bool:
        lost = any(r.missing_in == "current" for r in self.rows)
        return bool(self.regressions) or (self.tolerances.fail_on_missing and lost)


def compare(baseline: dict, current: dict, tolerances: Tolerances = Tolerances()) -> Comparison:
    """Judge every cell of `current` against `baseline` (both as from `load_side`)."""
    for side, data in (("baseline", baseline), ("current", current)):
        have = sorted({m for c in data["cells"] for m in c["metrics"]})
        # Only when other metrics exist: a side whose runs all failed has none, and
        # its cells are then reported as missing instead.
        if have and tolerances.metric not in have:
            raise UserInputError(f"the {side} has no test metric '{tolerances.metric}'; "
                                 f"choose --metric from: {', '.join(have)}")
    base = {cell_labels(c["cell"]): c for c in baseline["cells"]}
    cur = {cell_labels(c["cell"]): c for c in current["cells"]}
    calibration = (baseline.get("calibration"), current.get("calibration"))
    rows = [_compare_cell(base.get(key), cur.get(key), tolerances, calibration)
            for key in sorted(base.keys() | cur.keys())]
    _check_comparable(rows, baseline, current)
    changes = [f"{key} {baseline['env'].get(key)} -> {current['env'].get(key)}" for key in ENV_KEYS
               if baseline["env"].get(key) != current["env"].get(key)]
    return Comparison(rows, tolerances, changes)


def _check_comparable(rows: list[CellResult], baseline: dict, current: dict) -> None:
    """A gate that compared nothing must not pass: raise when no cell has ok runs on
    both sides, saying why."""
    if any(not r.missing_in for r in rows):
        return
    if not any(c["seeds"] for c in current["cells"]):
        not_ok = sum(c.get("not_ok", 0) for c in current["cells"])
        raise FtbenchError(f"nothing to compare: the current results have no ok runs ({not_ok} failed or "
                           "diverged); fix the failures (`ftbench report` lists them) and rerun")
    shown = lambda side: ", ".join("/".join(cell_labels(c["cell"])) for c in side["cells"][:3]) or "none"
    raise FtbenchError(f"nothing to compare: no cell has ok runs in both the baseline ({shown(baseline)}) "
                       f"and the current results ({shown(current)}); compare results of the same suite")


def _compare_cell(base: dict | None, cur: dict | None, tol: Tolerances,
                  calibration: tuple[float | None, float | None] = (None, None)) -> CellResult:
    result = CellResult(cell=(base or cur)["cell"])
    for side, data in (("baseline", base), ("current", cur)):
        if data and data.get("not_ok"):
            result.notes.append(f"{data['not_ok']} run(s) failed or diverged in the {side}")
    b_acc = (base or {}).get("metrics", {}).get(tol.metric)
    c_acc = (cur or {}).get("metrics", {}).get(tol.metric)
    result.baseline = Summary.of(b_acc) if b_acc else None
    result.current = Summary.of(c_acc) if c_acc else None
    if not b_acc or not c_acc:
        result.missing_in = "baseline" if not b_acc else "current"
        result.verdicts.append(MISSING)
        result.notes.insert(0, f"missing in the {result.missing_in}: no ok runs with test {tol.metric}")
        return result
    if base.get("budget") and cur.get("budget") and base["budget"] != cur["budget"]:
        result.notes.append(f"warning: budgets differ (baseline {base['budget']}, current {cur['budget']}); "
                            "the accuracies may not be comparable")
    drop = result.baseline.mean - result.current.mean
    if min(len(b_acc), len(c_acc)) < 2:
        result.test = NO_TEST
        significant = True
        result.notes.append(f"{NO_TEST}: fewer than 2 seeds on a side, so no significance test")
    else:
        result.test = "welch"
        result.p_value = welch_less(c_acc, b_acc)
        significant = result.p_value < tol.alpha
    if tol.more_seeds is not None:
        _judge_seeded(base, cur, tol, result)
    elif drop > tol.acc_drop and significant:
        result.verdicts.append(ACC_REGRESSION)
    if tol.seed_tolerance is not None:
        _compare_seeds(base, cur, tol, result)
    if tol.speed_reps is None:  # else the timing repetitions decide (`ftbench.gate.speed`)
        _compare_speed(base, cur, tol, result, calibration)
    return result


def _judge_seeded(base: dict, cur: dict, tol: Tolerances, result: CellResult) -> None:
    """The accuracy verdict with `more_seeds`: sequential, on the seeds both sides hold."""
    seeds, diffs = matched(base, cur, tol.metric)
    result.seeded = j = judge(diffs, tol.acc_drop, tol.alpha, tol.more_seeds)
    result.test = SEQUENTIAL
    if seeds:  # what is shown is what is judged: both sides, and so delta, on the matched seeds
        for side, data in (("baseline", base), ("current", cur)):
            by_seed = dict(zip(data["seeds"], data["metrics"][tol.metric]))
            setattr(result, side, Summary.of([by_seed[s] for s in seeds], of_total=len(by_seed)))
    if j.verdict == "regression":
        result.verdicts.append(ACC_REGRESSION)
    elif j.verdict == "ambiguous":
        where = f"[{j.low:+.2f}, {j.high:+.2f}]" if j.n >= 2 else "(fewer than 2 matched seeds)"
        result.notes.append(f"ambiguous at {j.n} matched seed(s): Δ {j.mean:+.2f}, interval {where}; "
                            + ("passes at max seeds: no drop beyond the tolerance shown" if j.last else
                               "`ftbench compare` on a results folder adds seeds"))


def _compare_seeds(base: dict, cur: dict, tol: Tolerances, result: CellResult) -> None:
    """Seed by seed: each seed's value must be within `seed_tolerance` of the
    baseline's same seed, and every baseline seed must be there."""
    b = dict(zip(base["seeds"], base["metrics"][tol.metric]))
    c = dict(zip(cur["seeds"], cur["metrics"][tol.metric]))
    off = [f"seed {s}: {b[s]:.4g} -> {c[s]:.4g}" for s in sorted(b.keys() & c.keys())
           if abs(c[s] - b[s]) > tol.seed_tolerance]
    lost = sorted(b.keys() - c.keys())
    if off or lost:
        result.verdicts.append(SEED_MISMATCH)
    if off:
        result.notes.append(f"{len(off)} seed(s) beyond {tol.seed_tolerance:g} points: {'; '.join(off)}")
    if lost:
        result.notes.append(f"seed(s) {', '.join(map(str, lost))} of the baseline missing in the current")


def welch_less(current: list[float], baseline: list[float]) -> float:
    """One-sided Welch t-test p-value for mean(current) < mean(baseline)."""
    if np.ptp(current) == 0 and np.ptp(baseline) == 0:
        # No spread on either side: the t statistic is undefined, and a difference
        # repeated exactly by every seed is as certain as it gets.
        return 0.0 if np.mean(current) < np.mean(baseline) else 1.0
    return float(stats.ttest_ind(current, baseline, equal_var=False, alternative="less").pvalue)


def _compare_speed(base: dict, cur: dict, tol: Tolerances, result: CellResult,
                   calibration: tuple[float | None, float | None] = (None, None)) -> None:
    """Samples/s current/baseline. With a calibration on both sides each mean is first
    divided by its side's calibration loop speed, which cancels the machine and its
    load (so any two machines compare); without, only the same device compares."""
    b_cal, c_cal = calibration
    calibrated = bool(b_cal and c_cal)
    b_dev, c_dev = base.get("device_name"), cur.get("device_name")
    if not calibrated and (b_dev is None or c_dev is None or b_dev != c_dev):
        result.notes.append(f"speed not compared: device differs ({b_dev or 'mixed/unknown'} vs "
                            f"{c_dev or 'mixed/unknown'})")
        return
    b_sps = [v for v in base["samples_per_s"] if v is not None and math.isfinite(v)]
    c_sps = [v for v in cur["samples_per_s"] if v is not None and math.isfinite(v)]
    if not b_sps or not c_sps or np.mean(b_sps) <= 0:
        result.notes.append("speed not compared: samples/s not recorded")
        return
    result.speed = (float(np.mean(b_sps)), float(np.mean(c_sps)))
    result.speed_ratio = result.speed[1] / result.speed[0]
    if calibrated:
        result.speed_ratio *= b_cal / c_cal
    elif b_cal or c_cal:
        result.notes.append("speed not calibrated: only one side ran `ftbench run --calibrate`")
    if result.speed_ratio < tol.speed_ratio:
        result.verdicts.append(SPEED_REGRESSION)
