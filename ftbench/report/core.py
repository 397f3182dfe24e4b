"""The report's building blocks: cells, estimates and tables, records grouped into a
study, and the context every table builder shares (`_Ctx`, `_mark`, `_cell_rows`).

A cell is (backbone, dataset, strategy, data); its seeds are replicates. A task is a
cell without its strategy: strategies are compared within a task on matched seeds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, NamedTuple

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


@dataclass
class _Ctx:
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


def acc_interval_label(ctx: _Ctx) -> str:
    """How a note names the interval of test-accuracy cells."""
    seeds = stats.interval_label(ctx.interval, ctx.confidence)
    if not ctx.two_level:
        return seeds + ("" if ctx.test_set == "ignore" else
                        " (the test set's own sampling error is left out: no per-example bits in these records)")
    return (f"mean ± {ctx.confidence:.0%} CI half-width, two-level: over seeds and the test set's examples, both "
            "as samples (crossed random effects, variance (MS_seed + MS_example − MS_res) / (n·N), Satterthwaite "
            f"t; --test-set ignore for seeds only); cells without per-example bits: {seeds}")


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


class Family:
    """One table's multiplicity family: every hypothesis whose rejection the table
    reports (its markers' pairs, its Δ and equivalence tests, its fixed-sequence
    claims) gets one Holm adjustment, so the chance of any false claim in the
    table is at most alpha whatever the true values (strong family-wise control).
    A hypothesis added twice under one key (a Δ that is also a marker's pair) counts
    once. `close()` adjusts and then runs what waited for the adjusted p-values."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self._p: dict[Hashable, float] = {}
        self._kind: dict[Hashable, str] = {}
        self._after: list[Callable[[], None]] = []
        self.adjusted: dict[Hashable, float] = {}

    def add(self, key: Hashable, p: float, kind: str) -> Hashable:
        if key not in self._p:
            self._p[key], self._kind[key] = p, kind
        return key

    def then(self, fn: Callable[[], None]) -> None:
        self._after.append(fn)

    def close(self) -> None:
        keys = list(self._p)
        self.adjusted = dict(zip(keys, stats.holm([self._p[k] for k in keys]))) if keys else {}
        for fn in self._after:
            fn()

    def size(self) -> int:
        return sum(math.isfinite(p) for p in self._p.values())

    def note(self) -> str:
        """The table's multiplicity note: what the family holds and its error rate."""
        counts: dict[str, int] = defaultdict(int)
        for key, p in self._p.items():
            if math.isfinite(p):
                counts[self._kind[key]] += 1
        what = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no testable hypotheses"
        return (f"multiplicity (exploratory): one family per table: its {self.size()} hypotheses ({what}) are "
                f"Holm-adjusted together, so the chance of any false claim in this table is at most α = "
                f"{self.alpha:g} (strong family-wise control; simulated in tests/test_simulations.py); other tables "
                "are other families, and only the Primary comparisons table is confirmatory")


def _seed_note(ests: list[Est], study: Study) -> str:
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


def _mark(rows: list[list[Any]], groups: list[Any], col: int, higher: bool, ctx: _Ctx, family: Family, *,
          labels: int = 4, log: bool = False) -> None:
    """Mark, in each group of column `col`, the best Est among the testable ones, those
    not shown worse than any other and those with fewer than 2 seeds, which no test can
    place. Every pair of a group's testable cells is a hypothesis of the table's
    `family`; the marks are set when the family closes (adjusted p < alpha).
    `log`: compare log values (times and rates: the table shows geometric means)."""
    by_group: dict[Any, list[tuple[tuple, Est]]] = defaultdict(list)
    for row, g in zip(rows, groups):
        if isinstance(row[col], Est) and math.isfinite(row[col].mean):
            by_group[g].append((tuple(row[:labels]), row[col]))
    for items in by_group.values():
        if len(items) >= 2:
            _mark_group(dict(items), col, higher, ctx, family, log)


def _mark_group(ests: dict[tuple, Est], col: int, higher: bool, ctx: _Ctx, family: Family, log: bool) -> None:
    cells = {k: _log_values(e.by_seed) if log else e.by_seed for k, e in ests.items()}
    steps = {e.step for e in ests.values()}
    step = steps.pop() if len(steps) == 1 and not log else None
    pairs = stats.pair_tests(cells, higher=higher, test=ctx.test, step=step,
                             examples=lambda a, b, seeds: example_diffs(ests[a], ests[b], seeds))
    keys = [family.add(pair_key(col, pr.a, pr.b), pr.p, "pairs") for pr in pairs]

    def apply() -> None:
        found = stats.best_of(cells, pairs, [family.adjusted[k] for k in keys], higher=higher, alpha=ctx.alpha)
        for k, e in ests.items():
            e.mark = (UNTESTED if k in found.untestable else BEST if k == found.best else
                      "" if k in found.worse else TIED)

    family.then(apply)


def pair_key(col: Any, a: tuple, b: tuple) -> tuple:
    """The family key of the test of two rows (by their labels) in column `col`."""
    return col, frozenset((a, b))


def example_diffs(a: Est, b: Est, seeds: list[int]) -> np.ndarray | None:
    """Seeds x examples table of a's minus b's per-example correctness (points), when
    both carry bits of one test set for every matched seed; None otherwise."""
    if a.examples is None or b.examples is None or not all(s in a.examples and s in b.examples for s in seeds):
        return None
    if len({len(a.examples[s]) for s in seeds} | {len(b.examples[s]) for s in seeds}) != 1:
        return None
    return np.stack([a.examples[s] - b.examples[s] for s in seeds])


def _log_values(by_seed: dict[int, float]) -> dict[int, float]:
    """Log of positive values (times, rates); values as they are when one is not positive."""
    if all(v > 0 for v in by_seed.values()):
        return {s: math.log(v) for s, v in by_seed.items()}
    return by_seed


def _cell_rows(ctx: _Ctx, columns: list[dict[Cell, dict[int, float]]],
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


_CELL_HEADERS = ["Backbone", "Dataset", "Data", "Strategy", "n"]


def _cell_at(task: tuple[str, str, str], strategy: str) -> Cell:
    return Cell(task[0], task[1], strategy, task[2])
