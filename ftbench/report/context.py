"""What every table builder shares: the report's options and the study's test
accuracies, per-example bits and grids (`Context`), how notes name intervals and
seed counts, and the rows of label columns and estimates."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ftbench import stats
from ftbench.report.core import BEST, SMALL_N, TIED, UNTESTED, Cell, Est, Study, correct_bits, split_metric


@dataclass
class Context:
    study: Study
    baseline: str
    scratch: str
    interval: str
    test: str
    alpha: float
    metric: str
    confidence: float = 0.95
    margin: float = 1.0  # equivalence margin (points) of the TOST and "matches" claims
    test_set: str = "include"  # "include": two-level intervals and tests where records hold per-example bits
    acc: dict[Cell, dict[int, float]] = field(init=False)  # test accuracy, every table's base
    bits: dict[Cell, dict[int, np.ndarray]] = field(init=False)  # seed -> 100 x per-example correctness
    steps: dict[Cell, float] = field(init=False)  # 100 / n_test: the grid a cell's accuracies move on
    _amounts: dict[tuple[str, str, str], float] = field(init=False)

    def __post_init__(self) -> None:
        self.acc = self.study.values(lambda r: split_metric(r, "test", self.metric))
        by_task = defaultdict(list)
        for cell, n in self.study.n_train.items():
            by_task[cell.task].append(n)
        self._amounts = {task: float(np.mean(ns)) for task, ns in by_task.items()}
        self.steps, self.bits = {}, {}
        if self.metric != "acc":  # balanced accuracy is no mean of per-example bits and has no 1/n grid
            return
        for cell, runs in self.study.ok.items():
            ns = {int(n) for r in runs.values() if (n := split_metric(r, "test", "n"))}
            values = list(self.acc.get(cell, {}).values())
            # the grid only where every accuracy lies on it (k / n_test as float32 x 100)
            if len(ns) == 1 and all(abs(v / 100 * next(iter(ns)) - round(v / 100 * next(iter(ns)))) < 1e-3
                                    for v in values):
                self.steps[cell] = 100 / ns.pop()
            bits = {s: b for s, r in runs.items() if s in self.acc.get(cell, {}) and (b := correct_bits(r)) is not None}
            if bits and len({len(b) for b in bits.values()}) == 1:
                self.bits[cell] = bits

    def est(self, by_seed: dict[int, float], digits: int = 1, signed: bool = False, log: bool = False,
            cell: Cell | None = None) -> Est:
        """Mean and interval over seeds; `log`: geometric mean, interval on the log scale
        (times). With `cell` (test accuracy), the interval is two-level where the cell's
        records hold per-example bits for every seed (`two_level_of`)."""
        values = list(by_seed.values())
        examples = self.examples_of(cell, by_seed) if cell is not None else None
        if examples is not None:
            level = stats.two_level(np.stack([examples[s] for s in sorted(by_seed)]))
            low, high = stats.t_interval(float(np.mean(values)), level.var, level.df, self.confidence)
            return Est(float(np.mean(values)), low, high, len(values), dict(by_seed), digits, signed,
                       examples=examples, step=self.steps.get(cell), agree=level.var == 0)
        s = (stats.summarize_log(values, confidence=self.confidence) if log else
             stats.summarize(values, interval=self.interval, confidence=self.confidence))
        return Est(s.mean, s.low, s.high, s.n, dict(by_seed), digits, signed,
                   step=self.steps.get(cell) if cell is not None else None, agree=s.note == stats.ALL_EQUAL)

    def examples_of(self, cell: Cell | None, by_seed: dict[int, float]) -> dict[int, np.ndarray] | None:
        """The cell's per-example bits for every seed of `by_seed`, when the report
        includes the test set and they are all there (and at least 2 seeds)."""
        bits = self.bits.get(cell) if cell is not None and self.test_set == "include" else None
        if not bits or len(by_seed) < 2 or not set(by_seed) <= set(bits):
            return None
        return {s: bits[s] for s in by_seed}

    @property
    def two_level(self) -> bool:
        """Whether any cell's accuracy gets the two-level interval."""
        return self.test_set == "include" and bool(self.bits)

    def strategy_key(self, strategy: str) -> tuple:
        return strategy != self.baseline, strategy != self.scratch, strategy

    def cell_key(self, cell: Cell) -> tuple:
        return cell.backbone, cell.dataset, self.data_rank(cell), self.strategy_key(cell.strategy)

    def data_rank(self, cell: Cell) -> tuple[float, str]:
        """Data labels sort by their mean n_train within a backbone and dataset."""
        return self._amounts.get(cell.task, math.inf), cell.data

    def marker_note(self, scope: str) -> str:
        return (f"{BEST} best in its column {scope}; {TIED} not shown worse than any other; unmarked: significantly "
                f"worse than another ({stats.test_label(self.test)} of every pair on matched seeds, in the table's "
                f"family below); {UNTESTED} not testable (fewer than 2 ok seeds)")


def acc_interval_label(ctx: Context) -> str:
    """How a note names the interval of test-accuracy cells."""
    seeds = stats.interval_label(ctx.interval, ctx.confidence)
    if not ctx.two_level:
        return seeds + ("" if ctx.test_set == "ignore" else
                        " (the test set's own sampling error is left out: no per-example bits in these records)")
    return (f"mean ± {ctx.confidence:.0%} CI half-width, two-level: over seeds and the test set's examples, both "
            "as samples (crossed random effects, variance (MS_seed + MS_example − MS_res) / (n·N), Satterthwaite "
            f"t; --test-set ignore for seeds only); cells without per-example bits: {seeds}")


def seed_note(ests: list[Est], study: Study) -> str:
    ns = [e.n for e in ests if e.n]
    if not ns:
        return "n = 0 seeds"
    lo, hi = min(ns), max(ns)
    total = len(study.seeds)
    if lo == hi == total:
        text = f"n = {lo} seed{'s' if lo != 1 else ''} per cell"
    else:
        text = f"n = {lo}–{hi} seeds per cell (of {total} in the study); see Incomplete cells"
    if lo == 1:
        text += "; a cell with one seed shows no interval"
    if lo < SMALL_N:
        text += f"; fewer than {SMALL_N} seeds: intervals are wide and only large differences are detectable"
    return text


def cell_rows(ctx: Context, columns: list[dict[Cell, dict[int, float]]],
               digits: list[int], log: bool = False, accuracy: bool = False) -> tuple[list[Cell], list[list[Any]]]:
    """Rows of label columns, n and one Est per column, for every cell with data
    (`log`: geometric means with log-scale intervals, for times and rates;
    `accuracy`: the columns are test accuracy, two-level where the bits are there)."""
    cells = sorted(set().union(*columns), key=ctx.cell_key)
    rows = []
    for cell in cells:
        ests = [ctx.est(col[cell], d, log=log, cell=cell if accuracy else None) if cell in col else Est(math.nan)
                for col, d in zip(columns, digits)]
        rows.append([cell.backbone, cell.dataset, cell.data, cell.strategy, max(e.n for e in ests), *ests])
    return cells, rows
