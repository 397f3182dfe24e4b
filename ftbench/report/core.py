"""The report's building blocks: cells, estimates and tables, records grouped into a
study. What table builders share beyond these is in `context` and `family`.

A cell is (backbone, dataset, strategy, data); its seeds are replicates. A task is a
cell without its strategy: strategies are compared within a task on matched seeds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from ftbench import stats
from ftbench.errors import UserInputError

METRICS: tuple[str, ...] = ("acc", "balanced_acc")
BEST, TIED, UNTESTED = "*", "†", "?"
SMALL_N = 5  # below this many seeds a table warns that its intervals are wide and tests weak


class Cell(NamedTuple):
    backbone: str
    dataset: str
    strategy: str
    data: str

    @property
    def task(self) -> tuple[str, str, str]:
        return self.backbone, self.dataset, self.data


def json_number(x: float | int | None, significant: int | None = None) -> float | int | None:
    """A JSON number: nan and inf become null; floats keep 6 decimals, or
    `significant` digits (p-values: 1.8e-6 stays 1.8e-6)."""
    if x is None or isinstance(x, (int, np.integer)):
        return None if x is None else int(x)
    if not math.isfinite(x):
        return None
    return float(f"{float(x):.{significant}g}") if significant else round(float(x), 6)


@dataclass
class Est:
    """A mean over seeds with its interval; `by_seed` feeds the paired tests."""

    mean: float
    low: float = math.nan
    high: float = math.nan
    n: int = 0
    by_seed: dict[int, float] = field(default_factory=dict, repr=False)
    digits: int = 1
    signed: bool = False
    mark: str = ""
    examples: dict[int, np.ndarray] | None = field(default=None, repr=False)  # seed -> 100 x per-example correct
    step: float | None = field(default=None, repr=False)  # the grid its per-seed values move on (100 / n_test)

    agree: bool = False  # every seed gave the same value: printed as words, never as "± 0.0"

    def text(self) -> str:
        if not math.isfinite(self.mean):
            return "—"
        sign = "+" if self.signed else ""
        out = f"{_no_minus_zero(self.mean, self.digits):{sign}.{self.digits}f}"
        if self.agree:
            out += f" ({stats.ALL_EQUAL})"
        elif math.isfinite(self.high - self.low):
            below, above = round(self.mean - self.low, self.digits), round(self.high - self.mean, self.digits)
            if below == above and self.high > self.low:
                out += f" ± {(self.high - self.low) / 2:.{self.digits}f}"
            else:  # a bootstrap or log-scale interval: ± would misstate one side
                low, high = (f"{_no_minus_zero(v, self.digits):{sign}.{self.digits}f}" for v in (self.low, self.high))
                out += f" [{low}, {high}]"
        return out + self.mark

    def to_json(self) -> dict:
        return {"mean": json_number(self.mean), "low": json_number(self.low),
                "high": json_number(self.high), "n": self.n, "mark": self.mark}


def stat_text(value: float, fmt: str, why_not: str) -> str:
    """A statistic for a note: `value` formatted, or "n/a (why_not)" when it is not
    finite (never "inf" or "nan" in a table)."""
    return f"{value:{fmt}}" if math.isfinite(value) else f"n/a ({why_not})"


def _no_minus_zero(x: float, digits: int) -> float:
    return x if round(x, digits) != 0 else 0.0


@dataclass
class Num:
    """A plain number; fmt is a format spec, or "p" for p-values."""

    value: float | int | None
    fmt: str = ".2f"
    mark: str = ""

    def text(self) -> str:
        if self.value is None or not math.isfinite(self.value):
            return "—"
        if self.fmt == "p":
            return ("<0.001" if self.value < 0.001 else f"{self.value:.3f}") + self.mark
        return f"{self.value:{self.fmt}}" + self.mark

    def to_json(self) -> float | int | None:
        """The number; a p-value keeps 3 significant digits, not 6 decimals."""
        return json_number(self.value, 3 if self.fmt == "p" else None)


@dataclass
class Table:
    """Rows under headers; the first `label_cols` columns are labels. A table with
    nothing to show has `empty`, one line that says why."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    label_cols: int = 4
    empty: str | None = None


@dataclass
class Ranking:
    """Average ranks across tasks, for the critical-difference diagram."""

    strategies: list[str]
    ranks: list[float]
    n_tasks: int
    friedman: stats.Friedman


@dataclass
class Report:
    tables: list[Table]
    options: dict[str, Any]
    study: "Study" = field(repr=False)
    ranking: Ranking | None = None

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


# ------------------------------------------------------------------ records -> study


@dataclass
class Study:
    """Records grouped by cell and seed; `bad` holds failed or diverged seeds."""

    ok: dict[Cell, dict[int, dict]]
    bad: dict[Cell, dict[int, dict]]
    seeds: list[int]
    n_train: dict[Cell, float]
    notes: list[str]

    def values(self, fn: Callable[[dict], float | None]) -> dict[Cell, dict[int, float]]:
        """fn(record) per ok seed, per cell; None and non-finite results are left out."""
        out = {}
        for cell, runs in self.ok.items():
            vals = {s: float(v) for s, r in sorted(runs.items()) if (v := fn(r)) is not None and math.isfinite(v)}
            if vals:
                out[cell] = vals
        return out


def load_study(records: list[dict]) -> Study:
    """Group records by cell and seed. A failed run whose seed also has an ok record
    (a rerun) counts as ok; two ok records of one cell and seed keep the later one."""
    ok: dict[Cell, dict[int, dict]] = defaultdict(dict)
    bad: dict[Cell, dict[int, dict]] = defaultdict(dict)
    n_train: dict[Cell, list[float]] = defaultdict(list)
    notes = []
    for rec in sorted(records, key=lambda r: (r.get("finished_at") or "", r.get("id", ""))):
        try:
            cell = Cell(*(str(rec["cell"][k]) for k in Cell._fields))
            seed = int(rec["seed"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UserInputError(f"run record {rec.get('id', '?')} has no cell labels or seed ({exc!r}); "
                                 "it is not an ftbench.run/1 record: move it out of the results folder") from exc
        if (amount := (rec.get("data_amount") or {}).get("n_train")) is not None:
            n_train[cell].append(float(amount))
        if rec.get("status") == "ok":
            if seed in ok[cell]:
                notes.append(f"{_cell_name(cell)} seed {seed}: records {ok[cell][seed]['id']} and {rec['id']}"
                             " both ok; using the later one")
            ok[cell][seed] = rec
        else:
            bad[cell][seed] = rec
    for cell in ok:
        for seed in ok[cell]:
            bad[cell].pop(seed, None)
    seeds = sorted({s for runs in (*ok.values(), *bad.values()) for s in runs})
    return Study(dict(ok), {c: b for c, b in bad.items() if b}, seeds,
                 {c: float(np.mean(v)) for c, v in n_train.items()}, notes)


def _cell_name(cell: Cell) -> str:
    return "/".join(cell)


def split_metric(rec: dict, split: str, metric: str) -> float | None:
    """`metric` of one split ("test", "val") of a record's metrics."""
    return ((rec.get("metrics") or {}).get(split) or {}).get(metric)


def shifted_mean(rec: dict, metric: str) -> float | None:
    """`metric` averaged over a record's shifted test sets; None without any."""
    vals = [m.get(metric) for m in ((rec.get("metrics") or {}).get("shifted") or {}).values()]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def source_metric(rec: dict, metric: str, when: str) -> float | None:
    """Source-task `metric` "before" or "after" fine-tuning; None without a source task."""
    return (((rec.get("metrics") or {}).get("source") or {}).get(when) or {}).get(metric)


def timing(key: str) -> Callable[[dict], float | None]:
    """A getter of one field of a record's timing (wall_s, train_s, samples_per_s)."""
    return lambda rec: (rec.get("timing") or {}).get(key)


def time_to_target(rec: dict) -> float | None:
    """Training seconds until the target accuracy; None if the run never reached it."""
    ttt = (rec.get("metrics") or {}).get("time_to_target") or {}
    return ttt.get("seconds") if ttt.get("reached") else None


# ------------------------------------------------------------------ building blocks


def correct_bits(rec: dict) -> np.ndarray | None:
    """100 x a record's per-example test correctness (metrics.test.correct), or None."""
    from ftbench.results.records import decode_correct

    test = (rec.get("metrics") or {}).get("test") or {}
    if not test.get("correct") or not test.get("n"):
        return None
    try:
        return decode_correct(test["correct"], int(test["n"])).astype(float) * 100
    except (ValueError, TypeError):
        return None


CELL_HEADERS = ["Backbone", "Dataset", "Data", "Strategy", "n"]


def cell_at(task: tuple[str, str, str], strategy: str) -> Cell:
    return Cell(task[0], task[1], strategy, task[2])
