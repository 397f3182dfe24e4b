"""The accuracy gate with more seeds where a drop is ambiguous (`more_seeds:` in the
gate config, `ftbench compare --max-seeds`).

A cell is judged on the seeds both sides ran (matched: the baseline must hold them),
by the repeated confidence interval of the mean paired difference current - baseline
(`stats.sequential.repeated_interval`'s interval, one-sided at `alpha` on each side,
looks at min, min + step, ..., max seeds, O'Brien-Fleming-type spending):

- "regression": the interval lies below 0 (the current is worse) and the mean drop
  exceeds `acc_drop`: the fixed gate's rule, held at every look at once;
- "pass": the interval lies above -`acc_drop` (no drop beyond the tolerance);
- "ambiguous": neither yet; `ftbench compare` runs the cell's next seeds and judges
  again, up to max. Still ambiguous at max, it passes with a note, as the fixed gate
  passes a drop it cannot show significant.

Over all looks, the chance of a false "regression" when the true Δ >= 0, and of a
false "pass" when the true Δ <= -acc_drop, are each at most alpha, assuming the
seeds' differences are independent and normal with one variance (the repeated
interval's guarantee; Jennison & Turnbull 2000, ch. 9). CPU runs with fixed seeds
that repeat the baseline exactly give differences of 0 on every seed: an interval of
[0, 0], a pass at the first look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ftbench.errors import UserInputError
from ftbench.stats.sequential import look_index, look_schedule, t_design

GateVerdict = Literal["regression", "pass", "ambiguous"]


@dataclass(frozen=True)
class LookPlan:
    """`{min, max, step}` of a sequential gate option (its config key `KEY`): the looks."""

    KEY: ClassVar[str] = "looks"
    min: int = 3
    max: int = 10
    step: int = 2

    @classmethod
    def parse(cls, value: Any) -> "LookPlan | None":
        if value is None or isinstance(value, cls):
            return value
        example = f"{{min: {cls.min}, max: {cls.max}, step: {cls.step}}}"
        if not isinstance(value, dict) or set(value) - {"min", "max", "step"}:
            raise UserInputError(f"{cls.KEY} must be a mapping with keys min, max, step (e.g. {example}), "
                                 f"got {value!r}")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in value.values()):
            raise UserInputError(f"{cls.KEY}' min, max and step must be whole numbers, got {value!r}")
        out = cls(**value)
        try:
            out.looks
        except ValueError as exc:
            raise UserInputError(f"{cls.KEY}: {exc}") from None
        return out

    @property
    def looks(self) -> tuple[int, ...]:
        return look_schedule(self.min, self.max, self.step)


@dataclass(frozen=True)
class MoreSeeds(LookPlan):
    """`more_seeds: {min, max, step}` of the gate config: the looks, in matched seeds."""

    KEY: ClassVar[str] = "more_seeds"


@dataclass(frozen=True)
class SeededJudgement:
    verdict: GateVerdict
    n: int  # matched seeds
    mean: float  # mean paired difference current - baseline (points)
    low: float
    high: float
    last: bool  # at max: no more seeds to add


def matched(base: dict, cur: dict, metric: str) -> tuple[list[int], np.ndarray]:
    """The seeds both sides hold (in order) and current - baseline on each."""
    b = dict(zip(base["seeds"], base["metrics"].get(metric, [])))
    c = dict(zip(cur["seeds"], cur["metrics"].get(metric, [])))
    seeds = sorted(b.keys() & c.keys())
    return seeds, np.array([c[s] - b[s] for s in seeds], dtype=float)


def judge(diffs: np.ndarray, acc_drop: float, alpha: float, plan: MoreSeeds) -> SeededJudgement:
    """The verdict on a cell's matched differences (module docstring): their mean ±
    the one-sided critical value of look k of the design at `alpha` times their
    standard error. A count between two looks (a failed run) is judged at the
    earlier look's boundary (wider: conservative)."""
    looks, n = plan.looks, len(diffs)
    y = np.asarray(diffs, dtype=float)
    if n < 2:
        return SeededJudgement("ambiguous", n, float(y.mean()) if n else math.nan, -math.inf, math.inf,
                               n >= looks[-1])
    k = look_index(looks, n)
    critical = t_design(looks, alpha, "obrien-fleming", 1).critical[k]
    mean = float(y.mean())
    half = critical * float(y.std(ddof=1)) / math.sqrt(n)  # 0 when every seed moved alike
    low, high = mean - half, mean + half
    verdict: GateVerdict = ("regression" if high < 0 and mean < -acc_drop else
                            "pass" if low > -acc_drop else "ambiguous")
    return SeededJudgement(verdict, n, mean, low, high, n >= looks[-1])
