"""Report tables over run records: one table per axis (accuracy, training time and
cost, data efficiency, domain shift, forgetting), a summary per strategy, ranks
across tasks, and the cells that miss seeds.

A cell is (backbone, dataset, strategy, data); its seeds are replicates. A task is a
cell without its strategy: strategies are compared within a task on matched seeds.
Every table says how many seeds it averages, which interval it shows and which test
marked its values. `ftbench.render.render` turns a Report into text, LaTeX, CSV or JSON.
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
BEST, TIED = "*", "†"


class Cell(NamedTuple):
    backbone: str
    dataset: str
    strategy: str
    data: str

    @property
    def task(self) -> tuple[str, str, str]:
        return self.backbone, self.dataset, self.data


def json_number(x: float | int | None) -> float | int | None:
    """A JSON number: nan and inf become null; floats keep 6 decimals."""
    if x is None or isinstance(x, (int, np.integer)):
        return None if x is None else int(x)
    return round(float(x), 6) if math.isfinite(x) else None


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

    def text(self) -> str:
        if not math.isfinite(self.mean):
            return "—"
        sign = "+" if self.signed else ""
        mean = self.mean if round(self.mean, self.digits) != 0 else 0.0  # no "-0.0"
        out = f"{mean:{sign}.{self.digits}f}"
        half = (self.high - self.low) / 2
        if math.isfinite(half):
            out += f" ± {half:.{self.digits}f}"
        return out + self.mark

    def to_json(self) -> dict:
        return {"mean": json_number(self.mean), "low": json_number(self.low),
                "high": json_number(self.high), "n": self.n, "mark": self.mark}


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
    acc: dict[Cell, dict[int, float]] = field(init=False)  # test accuracy, every table's base
    _amounts: dict[tuple[str, str, str], float] = field(init=False)

    def __post_init__(self) -> None:
        self.acc = self.study.values(lambda r: split_metric(r, "test", self.metric))
        by_task = defaultdict(list)
        for cell, n in self.study.n_train.items():
            by_task[cell.task].append(n)
        self._amounts = {task: float(np.mean(ns)) for task, ns in by_task.items()}

    def est(self, by_seed: dict[int, float], digits: int = 1, signed: bool = False) -> Est:
        s = stats.summarize(list(by_seed.values()), interval=self.interval, confidence=self.confidence)
        return Est(s.mean, s.low, s.high, s.n, dict(by_seed), digits, signed)

    def strategy_key(self, strategy: str) -> tuple:
        return strategy != self.baseline, strategy != self.scratch, strategy

    def cell_key(self, cell: Cell) -> tuple:
        return cell.backbone, cell.dataset, self.data_rank(cell), self.strategy_key(cell.strategy)

    def data_rank(self, cell: Cell) -> tuple[float, str]:
        """Data labels sort by their mean n_train within a backbone and dataset."""
        return self._amounts.get(cell.task, math.inf), cell.data

    def marker_note(self, scope: str) -> str:
        return (f"{BEST} best in its column {scope}; {TIED} not significantly different from the best "
                f"({stats.test_label(self.test)} on matched seeds, Holm over the group, α = {self.alpha:g})")


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
    return text


def _mark(rows: list[list[Any]], groups: list[Any], col: int, higher: bool, ctx: _Ctx) -> None:
    """Mark the best Est of column `col` in each group, and those the paired test
    cannot tell from it (Holm-adjusted p >= alpha over the group's comparisons)."""
    by_group: dict[Any, list[Est]] = defaultdict(list)
    for row, g in zip(rows, groups):
        if isinstance(row[col], Est) and math.isfinite(row[col].mean):
            by_group[g].append(row[col])
    for ests in by_group.values():
        if len(ests) < 2:
            continue
        best = (max if higher else min)(ests, key=lambda e: e.mean)
        best.mark = BEST
        others = [e for e in ests if e is not best]
        pvals = []
        for e in others:
            _, x, y = stats.match_seeds(e.by_seed, best.by_seed)
            pvals.append(stats.paired_test(x, y, test=ctx.test).p)
        for e, p in zip(others, stats.holm(pvals)):
            if p >= ctx.alpha:
                e.mark = TIED


def _cell_rows(ctx: _Ctx, columns: list[dict[Cell, dict[int, float]]],
               digits: list[int]) -> tuple[list[Cell], list[list[Any]]]:
    """Rows of label columns, n and one Est per column, for every cell with data."""
    cells = sorted(set().union(*columns), key=ctx.cell_key)
    rows = []
    for cell in cells:
        ests = [ctx.est(col[cell], d) if cell in col else Est(math.nan) for col, d in zip(columns, digits)]
        rows.append([cell.backbone, cell.dataset, cell.data, cell.strategy, max(e.n for e in ests), *ests])
    return cells, rows


_CELL_HEADERS = ["Backbone", "Dataset", "Data", "Strategy", "n"]


# ------------------------------------------------------------------ the tables


def _accuracy_table(ctx: _Ctx) -> tuple[Table, dict[Cell, tuple[float, float]]]:
    """Accuracy per cell with each strategy's paired test against the baseline;
    also returns cell -> (mean difference, Holm-adjusted p) for the summary."""
    acc = ctx.acc
    title = f"Accuracy (test {ctx.metric}, %)"
    if not acc:
        return Table("accuracy", title, [], empty="no ok runs with a test accuracy yet"), {}
    cells, rows = _cell_rows(ctx, [acc], [1])
    comparisons: dict[Cell, stats.Paired] = {}
    for cell in cells:
        base = cell._replace(strategy=ctx.baseline)
        if cell.strategy != ctx.baseline and base in acc:
            _, x, y = stats.match_seeds(acc[cell], acc[base])
            comparisons[cell] = stats.paired_test(x, y, test=ctx.test, confidence=ctx.confidence)
    adjusted = dict(zip(comparisons, stats.holm([c.p for c in comparisons.values()])))
    for cell, row in zip(cells, rows):
        c = comparisons.get(cell)
        if cell.strategy == ctx.baseline:
            row += ["baseline", "", "", ""]
        elif c is None:
            row += ["—", Num(None), Num(None), 0]
        else:
            row += [Est(c.mean_diff, c.diff_low, c.diff_high, c.n_pairs, signed=True),
                    Num(adjusted[cell], "p"), Num(c.d_z), c.n_pairs]
    _mark(rows, [c.task for c in cells], 5, True, ctx)
    m = sum(math.isfinite(p) for p in adjusted.values())
    notes = [_seed_note([r[5] for r in rows], ctx.study),
             f"{stats.interval_label(ctx.interval, ctx.confidence)}; Δ = strategy − {ctx.baseline} on matched seeds "
             f"with its {ctx.confidence:.0%} Student-t CI; d_z = mean Δ / sd Δ",
             f"p: {stats.test_label(ctx.test)} vs {ctx.baseline} on matched seeds, Holm-Bonferroni over {m} "
             f"comparison{'s' if m != 1 else ''}",
             ctx.marker_note("within each backbone/dataset/data")]
    pairs = [c.n_pairs for c in comparisons.values() if c.n_pairs >= 2]
    if ctx.test == "wilcoxon" and pairs and stats.wilcoxon_min_p(min(pairs)) >= ctx.alpha:
        n = min(pairs)
        notes.append(f"with {n} pairs the Wilcoxon test cannot give p below {stats.wilcoxon_min_p(n):g} "
                     f"(all {n} differences of one sign), so it can never be significant at α = {ctx.alpha:g}: "
                     "run more seeds or use --test ttest")
    if not any(c.strategy == ctx.baseline for c in cells):
        notes.append(f"no '{ctx.baseline}' runs, so no paired tests; choose another baseline with --baseline")
    headers = [*_CELL_HEADERS, "Acc (%)", f"Δ vs {ctx.baseline}", "p (Holm)", "d_z", "pairs"]
    return (Table("accuracy", title, headers, rows, notes),
            {cell: (c.mean_diff, adjusted[cell]) for cell, c in comparisons.items()})


def _time_table(ctx: _Ctx) -> Table:
    study = ctx.study
    columns = [study.values(timing("wall_s")), study.values(timing("train_s")),
               study.values(timing("samples_per_s")), study.values(time_to_target)]
    title = "Training time & cost"
    if not any(columns):
        return Table("time", title, [], empty="no ok runs with timings yet")
    cells, rows = _cell_rows(ctx, columns, [2, 2, 0, 2])
    for cell, row in zip(cells, rows):
        reached = f"{row[8].n}/{len(study.ok.get(cell, {}))}"
        params = [(r.get("params") or {}) for r in study.ok.get(cell, {}).values()]
        trainable, total = (params[0].get("trainable"), params[0].get("total")) if params else (None, None)
        share = trainable / total * 100 if trainable is not None and total else None
        row[9:] = [reached, Num(trainable, ",d"), Num(share, ".2f")]
    for col, higher in ((5, False), (6, False), (7, True), (8, False)):
        _mark(rows, [c.task for c in cells], col, higher, ctx)
    envs = [r.get("env") or {} for runs in study.ok.values() for r in runs.values()]
    devices = sorted({f"{e['device']} ({e.get('device_name')})" for e in envs if e.get("device")}) or ["unknown"]
    notes = [_seed_note([r[5] for r in rows], study), stats.interval_label(ctx.interval, ctx.confidence),
             "time to target: seconds of training until val accuracy reached the suite's target, over the "
             "seeds that reached it (reached = seeds reaching it / ok seeds)",
             ctx.marker_note("within each backbone/dataset/data (lower time, higher samples/s)"),
             f"measured on: {', '.join(devices)}" + ("; times from different devices do not compare"
                                                      if len(devices) > 1 else "")]
    headers = [*_CELL_HEADERS, "Wall s", "Train s", "Samples/s", "To target s", "Reached", "Trainable",
               "Trainable %"]
    return Table("time", title, headers, rows, notes)


def _data_table(ctx: _Ctx) -> tuple[Table, dict[tuple[str, str, str], dict[int, float]]]:
    """Accuracy per data amount, AUC over log data and the amount that matches
    scratch at full data; per (backbone, dataset, strategy)."""
    acc = ctx.acc
    n_train = ctx.study.n_train
    curves: dict[tuple[str, str, str], list[Cell]] = defaultdict(list)
    for cell in sorted(acc, key=ctx.cell_key):
        curves[(cell.backbone, cell.dataset, cell.strategy)].append(cell)
    title = "Data efficiency"
    if not any(len(cs) >= 2 for cs in curves.values()):
        return Table("data", title, [], empty="every strategy ran at one data amount only; add amounts "
                                              "(shots or fractions) to the suite to measure it"), {}
    labels = sorted({c.data for cs in curves.values() for c in cs},
                    key=lambda d: min(ctx.data_rank(c) for cs in curves.values() for c in cs if c.data == d))
    targets = {}
    for (bb, ds, strategy), cs in curves.items():
        if strategy == ctx.scratch:
            full = max(cs, key=lambda c: n_train.get(c, 0))
            targets[(bb, ds)] = float(np.mean(list(acc[full].values())))
    rows, groups, aucs = [], [], {}
    for (bb, ds, strategy), cs in sorted(curves.items(), key=lambda kv: (kv[0][:2], ctx.strategy_key(kv[0][2]))):
        by_label = {c.data: c for c in cs}
        ests = [ctx.est(acc[by_label[d]]) if d in by_label else Est(math.nan) for d in labels]
        # AUC per seed over the seeds that ran every amount, so its interval is over seeds too.
        seeds = sorted(set.intersection(*(set(acc[c]) for c in cs)))
        xs = [n_train.get(c, math.nan) for c in cs]
        auc = {s: stats.data_auc(xs, [acc[c][s] for c in cs]) for s in seeds} if len(cs) >= 2 else {}
        auc = {s: v for s, v in auc.items() if math.isfinite(v)}
        aucs[(bb, ds, strategy)] = auc
        match = "—"
        if (bb, ds) in targets:
            means = [float(np.mean(list(acc[c].values()))) for c in cs]
            hit = stats.smallest_matching(xs, means, targets[(bb, ds)])
            match = "never" if hit is None else next(f"{c.data} (n={n_train[c]:g})" for c in cs
                                                      if n_train.get(c) == hit)
        rows.append([bb, ds, strategy, *ests, ctx.est(auc) if auc else Est(math.nan), match])
        groups.append((bb, ds))
    for col in range(3, 4 + len(labels)):
        _mark(rows, groups, col, True, ctx)
    notes = [_seed_note([e for r in rows for e in r[3:-2] if isinstance(e, Est)], ctx.study),
             f"{stats.interval_label(ctx.interval, ctx.confidence)}; columns are data amounts in test {ctx.metric} %",
             "AUC: area under accuracy vs log(n_train), the data axis scaled to [0, 1] (the mean accuracy over "
             "log-spaced amounts), per seed over the seeds that ran every amount",
             f"matches {ctx.scratch}@full: smallest amount whose mean accuracy >= {ctx.scratch}'s at its largest "
             "amount (" + (", ".join(f"{ds}: {t:.1f}" for (_, ds), t in targets.items()) or
                           f"no '{ctx.scratch}' runs; choose one with --scratch") + ")",
             ctx.marker_note("within each backbone/dataset")]
    headers = ["Backbone", "Dataset", "Strategy", *labels, "AUC", f"Matches {ctx.scratch}@full"]
    return Table("data", title, headers, rows, notes, label_cols=3), aucs


def _shift_table(ctx: _Ctx) -> tuple[Table, dict[Cell, dict[int, float]]]:
    study = ctx.study
    shifted = study.values(lambda r: shifted_mean(r, ctx.metric))
    title = "Domain shift"
    if not shifted:
        return Table("shift", title, [], empty="no shifted test sets in these runs; add shifted sets to "
                                               "the dataset to measure robustness"), {}
    test = ctx.acc
    er: dict[Cell, dict[int, float]] = {}
    fit_notes = []
    for dataset in sorted({c.dataset for c in shifted}):
        pairs = [(c, s) for c in shifted if c.dataset == dataset for s in shifted[c] if s in test.get(c, {})]
        fit = stats.robustness_fit([test[c][s] for c, s in pairs], [shifted[c][s] for c, s in pairs])
        sets = sorted({name for c in shifted if c.dataset == dataset for rec in study.ok[c].values()
                       for name in rec["metrics"]["shifted"]})
        if fit is None:
            fit_notes.append(f"{dataset}: fewer than two distinct test accuracies, no fit; sets: {', '.join(sets)}")
            continue
        sign = "+" if fit.intercept >= 0 else "−"
        fit_notes.append(f"{dataset}: shifted = {fit.slope:.3f} × test {sign} {abs(fit.intercept):.2f} "
                         f"over {len(pairs)} runs (r = {fit.r:.2f}); sets: {', '.join(sets)}")
        for c, s in pairs:
            er.setdefault(c, {})[s] = float(stats.effective_robustness([test[c][s]], [shifted[c][s]], fit)[0])
    gap = {c: {s: test[c][s] - v for s, v in by.items() if s in test.get(c, {})} for c, by in shifted.items()}
    cells, rows = _cell_rows(ctx, [{c: test[c] for c in shifted if c in test}, shifted, gap, er], [1, 1, 1, 1])
    for col, higher in ((5, True), (6, True), (7, False), (8, True)):
        _mark(rows, [c.task for c in cells], col, higher, ctx)
    notes = [_seed_note([r[6] for r in rows], study), stats.interval_label(ctx.interval, ctx.confidence),
             f"shifted: mean test {ctx.metric} over the shifted sets; gap = test − shifted; effective robustness = "
             "shifted − the line fitted per dataset over all ok runs (shifted vs test):", *fit_notes,
             ctx.marker_note("within each backbone/dataset/data (lower gap)")]
    headers = [*_CELL_HEADERS, "Test", "Shifted", "Gap", "Eff. robustness"]
    return Table("shift", title, headers, rows, notes), er


def _forgetting_table(ctx: _Ctx) -> tuple[Table, dict[Cell, dict[int, float]]]:
    study = ctx.study
    before = study.values(lambda r: source_metric(r, ctx.metric, "before"))
    after = study.values(lambda r: source_metric(r, ctx.metric, "after"))
    title = "Forgetting (source task)"
    cells = sorted(set(before) & set(after), key=ctx.cell_key)
    if not cells:
        return Table("forgetting", title, [], empty="no backbone with a source task in these runs, so "
                                                    "forgetting was not measured"), {}
    drop, keep = {}, {}
    for c in cells:
        seeds = sorted(set(before[c]) & set(after[c]))
        pairs = {s: stats.forgetting(before[c][s], after[c][s]) for s in seeds}
        drop[c] = {s: d for s, (d, _) in pairs.items()}
        keep[c] = {s: k for s, (_, k) in pairs.items() if math.isfinite(k)}
    cells, rows = _cell_rows(ctx, [{c: before[c] for c in cells}, {c: after[c] for c in cells}, drop, keep],
                             [1, 1, 1, 1])
    for col, higher in ((6, True), (7, False), (8, True)):
        _mark(rows, [c.task for c in cells], col, higher, ctx)
    notes = [_seed_note([r[7] for r in rows], study), stats.interval_label(ctx.interval, ctx.confidence),
             f"source-task {ctx.metric} before and after fine-tuning; drop = before − after (points); "
             "retention = after / before × 100",
             ctx.marker_note("within each backbone/dataset/data (lower drop)")]
    headers = [*_CELL_HEADERS, "Before", "After", "Drop", "Retention %"]
    return Table("forgetting", title, headers, rows, notes), drop


def _seedwise(ctx: _Ctx, data: dict[Any, dict[int, float]], split: Callable[[Any], tuple[str, Any]],
              digits: int) -> tuple[dict[str, Est], int]:
    """Per strategy: for each seed, the mean over the tasks every strategy ran; then
    mean ± interval over those seeds. `split(key)` gives (strategy, task)."""
    by_strategy: dict[str, dict[Any, dict[int, float]]] = defaultdict(dict)
    for key, by_seed in data.items():
        strategy, task = split(key)
        by_strategy[strategy][task] = by_seed
    if not by_strategy:
        return {}, 0
    shared = set.intersection(*(set(tasks) for tasks in by_strategy.values()))
    out = {}
    for strategy, tasks in by_strategy.items():
        seeds = sorted(set.intersection(*(set(tasks[t]) for t in shared))) if shared else []
        out[strategy] = ctx.est({s: float(np.mean([tasks[t][s] for t in shared])) for s in seeds}, digits)
    return out, len(shared)


def _strategy_task(cell: Cell) -> tuple[str, tuple[str, str, str]]:
    return cell.strategy, cell.task


def _summary_table(ctx: _Ctx, vs_base: dict[Cell, tuple[float, float]],
                   aucs: dict[tuple[str, str, str], dict[int, float]], er: dict[Cell, dict[int, float]],
                   drop: dict[Cell, dict[int, float]]) -> Table:
    columns = [_seedwise(ctx, ctx.acc, _strategy_task, 1),
               _seedwise(ctx, ctx.study.values(timing("train_s")), _strategy_task, 2),
               _seedwise(ctx, aucs, lambda k: (k[2], k[:2]), 1),
               _seedwise(ctx, er, _strategy_task, 1),
               _seedwise(ctx, drop, _strategy_task, 1)]
    strategies = sorted({s for col, _ in columns for s in col}, key=ctx.strategy_key)
    title = "Summary per strategy"
    if not strategies:
        return Table("summary", title, [], empty="no ok runs yet")
    rows = []
    for s in strategies:
        wtl = [(d > 0) - (d < 0) if p < ctx.alpha else 0
               for c, (d, p) in vs_base.items() if c.strategy == s and math.isfinite(p)]
        record = "baseline" if s == ctx.baseline else (
            f"{wtl.count(1)}/{wtl.count(0)}/{wtl.count(-1)}" if wtl else "—")
        rows.append([s, columns[0][0].get(s, Est(math.nan)), record,
                     *(col.get(s, Est(math.nan)) for col, _ in columns[1:])])
    for col, higher in ((1, True), (3, False), (4, True), (5, True), (6, False)):
        _mark(rows, [0] * len(rows), col, higher, ctx)
    counts = [n for _, n in columns]
    notes = [_seed_note([e for r in rows for e in r[1:] if isinstance(e, Est)], ctx.study).replace("per cell",
                                                                                                  "per strategy"),
             f"{stats.interval_label(ctx.interval, ctx.confidence)}: per seed, the mean over the tasks every "
             f"strategy ran ({counts[0]} backbone/dataset/data for Acc, {counts[1]} for Train s, {counts[2]} "
             f"backbone/dataset for AUC, {counts[3]} for Eff. robustness, {counts[4]} for Drop)",
             f"W/T/L vs {ctx.baseline}: tasks where the strategy is significantly better / not different / worse "
             f"(accuracy table: {stats.test_label(ctx.test)}, Holm-adjusted p < {ctx.alpha:g})",
             ctx.marker_note("(lower Train s and Drop)").replace("Holm over the group", "Holm over the strategies")]
    notes += ctx.study.notes
    headers = ["Strategy", "Acc (%)", f"W/T/L vs {ctx.baseline}", "Train s", "Data AUC", "Eff. robustness", "Drop"]
    return Table("summary", title, headers, rows, notes, label_cols=1)


def _cell_at(task: tuple[str, str, str], strategy: str) -> Cell:
    return Cell(task[0], task[1], strategy, task[2])


def _ranking_table(ctx: _Ctx) -> tuple[Table | None, Ranking | None]:
    """Average ranks, Friedman and Nemenyi, IQM and P(improvement) over tasks that
    ran every strategy; None with fewer than two tasks."""
    acc = ctx.acc
    tasks = sorted({c.task for c in acc})
    if len(tasks) < 2:
        return None, None
    strategies = sorted({c.strategy for c in acc}, key=ctx.strategy_key)
    complete = [t for t in tasks if all(_cell_at(t, s) in acc for s in strategies)]
    title = "Across tasks"
    if len(complete) < 2:
        return Table("ranks", title, [], empty=f"fewer than 2 tasks ran all {len(strategies)} strategies; "
                                               "see Incomplete cells"), None
    per_task = {s: [list(acc[_cell_at(t, s)].values()) for t in complete] for s in strategies}
    scores = np.array([[np.mean(per_task[s][i]) for s in strategies] for i in range(len(complete))])
    ranks = stats.average_ranks(scores)
    fr = stats.friedman(scores, ctx.alpha)
    rows = []
    for s, rank in zip(strategies, ranks):
        point, low, high = stats.iqm_interval(per_task[s], confidence=ctx.confidence)
        poi = Est(math.nan)
        if s != ctx.baseline and ctx.baseline in per_task:
            poi = Est(*stats.probability_of_improvement(per_task[s], per_task[ctx.baseline],
                                                        confidence=ctx.confidence), digits=2)
        rows.append([s, Num(float(rank)), Est(point, low, high), poi])
    best = min(range(len(rows)), key=lambda i: ranks[i])
    for i, row in enumerate(rows):
        row[1].mark = BEST if i == best else (TIED if ranks[i] - ranks[best] < fr.cd else "")
    max(rows, key=lambda r: r[2].mean)[2].mark = BEST
    left_out = [t for t in tasks if t not in complete]
    ns = [len(x) for runs in per_task.values() for x in runs]
    notes = [f"{len(complete)} tasks (backbone/dataset/data) that ran all {len(strategies)} strategies; "
             f"n = {min(ns)}–{max(ns)} seeds per task" if min(ns) != max(ns) else
             f"{len(complete)} tasks (backbone/dataset/data) that ran all {len(strategies)} strategies; "
             f"n = {min(ns)} seeds per task",
             f"avg rank: rank of mean test {ctx.metric} within each task (1 = best, ties share), averaged",
             (fr.note or f"Friedman χ² = {fr.statistic:.2f}, p = {Num(fr.p, 'p').text()}; Nemenyi critical "
                         f"difference (α = {ctx.alpha:g}) = {fr.cd:.2f}"),
             f"IQM: interquartile mean of all runs pooled over tasks, {ctx.confidence:.0%} stratified bootstrap "
             "percentile interval (seeds resampled within tasks, seeded)",
             f"P(> {ctx.baseline}): chance a run of the strategy beats a run of {ctx.baseline} on the same task "
             "(Mann-Whitney U / nm, ties 1/2), averaged over tasks, same bootstrap",
             f"{BEST} lowest average rank / highest IQM; {TIED} average rank within the critical difference "
             "of the best"]
    if left_out:
        notes.append("left out (a strategy missing): " + ", ".join("/".join(t) for t in left_out))
    headers = ["Strategy", "Avg rank", "IQM acc (%)", f"P(> {ctx.baseline})"]
    return (Table("ranks", title, headers, rows, notes, label_cols=1),
            Ranking(strategies, [float(r) for r in ranks], len(complete), fr))


def _incomplete_table(ctx: _Ctx) -> Table:
    """Cells that miss a seed of the study or failed one, and strategies absent from a task."""
    study = ctx.study
    cells = set(study.ok) | set(study.bad)
    strategies = {c.strategy for c in cells}
    expected = {Cell(c.backbone, c.dataset, s, c.data) for c in cells for s in strategies}
    rows = []
    for cell in sorted(expected, key=ctx.cell_key):
        ok, bad = study.ok.get(cell, {}), study.bad.get(cell, {})
        if len(ok) == len(study.seeds):
            continue
        problems = []
        for seed in study.seeds:
            if seed in bad:
                err = bad[seed].get("error") or {}
                why = f"{err.get('type', '')}: {str(err.get('message', '')).splitlines()[0][:80]}" if err else ""
                problems.append(f"seed {seed} {bad[seed].get('status')}" + (f" ({why})" if why else ""))
            elif seed not in ok:
                problems.append(f"seed {seed} missing")
        text = "no records" if not ok and not bad else "; ".join(problems)
        rows.append([cell.backbone, cell.dataset, cell.data, cell.strategy, f"{len(ok)}/{len(study.seeds)}", text])
    title = "Incomplete cells"
    seeds = ", ".join(map(str, study.seeds))
    if not rows:
        return Table("incomplete", title, [], empty=f"none; every cell has every seed ok (seeds {seeds})")
    notes = [f"seeds in the study: {seeds}; the tables above average only a cell's ok seeds, and show n",
             "rerun with `ftbench run` to retry failed and missing runs"]
    return Table("incomplete", title, ["Backbone", "Dataset", "Data", "Strategy", "Ok seeds", "Missing or failed"],
                 rows, notes, label_cols=6)


# ------------------------------------------------------------------ the report


def build_report(records: list[dict], *, baseline: str = "full", scratch: str = "scratch", interval: str = "t",
                 test: str = "ttest", alpha: float = 0.05, metric: str = "acc") -> Report:
    """Every table of a report over run `records` (as `ftbench.store.load_records` reads them).

    >>> report = build_report(load_records("results/quickstart"))   # doctest: +SKIP
    >>> print(ftbench.render.render(report, "markdown"))                             # doctest: +SKIP
    """
    for name, value, allowed in (("interval", interval, stats.INTERVALS), ("test", test, stats.TESTS),
                                 ("metric", metric, METRICS)):
        if value not in allowed:
            raise UserInputError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
    if not 0 < alpha < 1:
        raise UserInputError(f"alpha must be between 0 and 1, not {alpha}")
    if not records:
        raise UserInputError("no run records to report on; run the suite first with `ftbench run SUITE`")
    study = load_study(records)
    ctx = _Ctx(study, baseline, scratch, interval, test, alpha, metric)
    accuracy, vs_base = _accuracy_table(ctx)
    data, aucs = _data_table(ctx)
    shift, er = _shift_table(ctx)
    forget, drop = _forgetting_table(ctx)
    ranks, ranking = _ranking_table(ctx)
    tables = [_summary_table(ctx, vs_base, aucs, er, drop), accuracy, _time_table(ctx), data, shift, forget,
              *([ranks] if ranks else []), _incomplete_table(ctx)]
    options = {"baseline": baseline, "scratch": scratch, "interval": interval, "test": test, "alpha": alpha,
               "metric": metric, "confidence": ctx.confidence, "seeds": study.seeds, "records": len(records)}
    return Report(tables, options, study, ranking)
