"""The sequential speed gate's rule (`speed_reps:` in the gate config; docs/ci.md);
`gate.timed` times the repetitions and applies it.

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
from typing import ClassVar, Sequence

from ftbench.gate.baseline import CELL_KEYS
from ftbench.gate.more_seeds import LookPlan
from ftbench.stats.sequential import SpeedVerdict, speed_interval


@dataclass(frozen=True)
class SpeedReps(LookPlan):
    """`speed_reps: {min, max, step}` of the gate config: the looks, in repetitions."""

    KEY: ClassVar[str] = "speed_reps"
    min: int = 4
    max: int = 16
    step: int = 2


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
