"""Tables of a tuned suite (`search:`): the selected hyperparameters per cell, the
sensitivity of each strategy to its hyperparameters, and the tuning cost added to
the training time. Built from the `selection` entry of the final runs' records
(ftbench/search.py), so they need no trial records; a suite without a search has
none of these tables. Cells selected on test (`select: oracle`) are labelled
ORACLE here and warned about above the accuracy and summary tables.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from scipy import stats as sps

from ftbench.report.core import CELL_HEADERS, Cell, Num, Table, timing
from ftbench.report.context import Context
from ftbench.report.selection import DEFAULT_THRESHOLD, confidence_columns, confidence_notes


def _selections(ctx: Context) -> dict[Cell, dict]:
    """One selection per cell (its seeds' runs share it)."""
    out = {}
    for cell, runs in ctx.study.ok.items():
        sel = next((r["selection"] for r in runs.values() if r.get("selection")), None)
        if sel:
            out[cell] = sel
    return out


def _oracle(sel: dict) -> bool:
    return sel.get("select") == "oracle"


def oracle_warning(ctx: Context) -> str | None:
    """The warning a report carries when some cells' runs used hyperparameters
    selected on test accuracy; None when none did."""
    sels = _selections(ctx)
    oracle = sorted((c for c, sel in sels.items() if _oracle(sel)), key=ctx.cell_key)
    if not oracle:
        return None
    names = ", ".join("/".join((c.strategy, c.data)) for c in oracle[:4]) + (", ..." if len(oracle) > 4 else "")
    return (f"WARNING: ORACLE selection: {len(oracle)} of {len(ctx.study.ok)} cells ({names}) ran at hyperparameters "
            "selected on TEST accuracy (`select: oracle`): their accuracy is optimistic, not a fair comparison")


def _values_text(values: dict[str, Any]) -> str:
    if not values:
        return "(suite's)"
    return ", ".join(f"{k.partition('.')[2]}={v:.3g}" if isinstance(v, float) else f"{k.partition('.')[2]}={v}"
                     for k, v in sorted(values.items()))


def _selected_table(ctx: Context, sels: dict[Cell, dict], threshold: float) -> Table:
    rows = []
    for cell in sorted(sels, key=ctx.cell_key):
        sel = sels[cell]
        trials = f"{sel['completed']}/{sel['trials']}" + (f" ({sel['pruned']} pruned)" if sel.get("pruned") else "")
        selected = _values_text(sel["selected"])
        if _oracle(sel):
            test = sel.get("test_acc")
            selected = f"ORACLE (test{f' {test:.1f}' if test is not None else ''}): {selected}"
        rows.append([cell.backbone, cell.dataset, cell.data, cell.strategy, selected,
                     Num(sel.get("val_acc"), ".1f"), *confidence_columns(sel, _values_text, threshold), trials, ",".join(map(str, sel["tuning_seeds"])),
                     f"{sel['sampler']} (seed {sel['sampler_seed']})"])
    rules = sorted({sel["rule"] for sel in sels.values()})
    notes = ["selected on validation held out of each cell's labelled budget, never on test or shifted sets; "
             "the accuracy tables are about the suite's seeds rerun at these values",
             "rule: " + "; ".join(rules),
             "Val acc: the selected trial's mean validation accuracy over the tuning seeds; "
             "Trials: completed / run", *confidence_notes(sels, threshold)]
    if any(_oracle(sel) for sel in sels.values()):
        notes[0] = ("ORACLE rows were selected on the TEST split's accuracy (`select: oracle`, DomainBed's oracle; "
                    "the selected trial's mean test accuracy in brackets): optimistic, not a fair comparison; "
                    "the other rows on validation held out of each cell's labelled budget, never on test or "
                    "shifted sets")
    headers = CELL_HEADERS[:4] + ["Selected", "Val acc", "P(selected)", "Runner-up", "Trials", "Tuning seeds",
                                  "Sampler"]
    return Table("selected", "Selected hyperparameters", headers, rows, notes)


def sensitivity(val_accs: list[float]) -> tuple[float, float, float]:
    """(best − median, interquartile range, % of trials within 1 point of the best)
    of one search's trial validation accuracies."""
    x = np.asarray(val_accs, dtype=float)
    best = x.max()
    return float(best - np.median(x)), float(sps.iqr(x)), float(np.mean(x >= best - 1.0) * 100)


def _sensitivity_table(ctx: Context, sels: dict[Cell, dict]) -> Table:
    by_strategy: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    trials: dict[str, list[int]] = defaultdict(list)
    for cell, sel in sels.items():
        # a pruned trial stopped early: its accuracy then is no measure of its hyperparameters
        accs = [t["val_acc"] for t in sel.get("trial_results", [])
                if t.get("state") == "complete" and t.get("val_acc") is not None]
        if len(accs) >= 2:
            by_strategy[cell.strategy].append(sensitivity(accs))
            trials[cell.strategy].append(len(accs))
    title = "Sensitivity to hyperparameters"
    if not by_strategy:
        return Table("sensitivity", title, [], empty="no search with two or more completed trials (pruned trials "
                                                     "do not count: they stopped before their accuracy was known)")
    rows = []
    for strategy in sorted(by_strategy, key=ctx.strategy_key):
        gap, iqr, near = np.mean(by_strategy[strategy], axis=0)
        rows.append([strategy, len(by_strategy[strategy]), f"{min(trials[strategy])}–{max(trials[strategy])}"
                     if min(trials[strategy]) != max(trials[strategy]) else str(trials[strategy][0]),
                     Num(gap, ".1f"), Num(iqr, ".1f"), Num(near, ".0f")])
    notes = ["spread of validation accuracy (points) over each search's completed trials, averaged over the "
             "strategy's cells: a method whose best is far above its median needs its search",
             "Best − median: best trial minus the median trial; IQR: interquartile range of the trials; "
             "Within 1 pt %: share of trials within 1 point of the best",
             "completed trials only: a pruned trial stopped early, so its accuracy then measures when it was "
             "stopped, not its hyperparameters; cells with fewer than 2 completed trials are left out (Cells)"]
    headers = ["Strategy", "Cells", "Trials", "Best − median", "IQR", "Within 1 pt %"]
    return Table("sensitivity", title, headers, rows, notes, label_cols=1)


def _cost_table(ctx: Context, sels: dict[Cell, dict]) -> Table:
    train = ctx.study.values(timing("train_s"))
    rows = []
    for cell in sorted(sels, key=ctx.cell_key):
        cost = sels[cell].get("cost") or {}
        seeds = train.get(cell, {})
        final = float(np.mean(list(seeds.values()))) if seeds else math.nan
        per_run = final + cost.get("train_s", 0.0) / len(seeds) if seeds else math.nan
        rows.append([cell.backbone, cell.dataset, cell.data, cell.strategy, cost.get("runs"),
                     Num(cost.get("train_s"), ".1f"), Num(cost.get("wall_s"), ".1f"), Num(final, ".2f"),
                     Num(per_run, ".2f")])
    notes = ["the search's cost, paid once per cell: Runs (trials x tuning seeds), their training and wall seconds",
             "Train s: mean training seconds of a final run (as in Training time & cost); "
             "with tuning: that plus the search's training seconds shared over the cell's final runs"]
    headers = CELL_HEADERS[:4] + ["Tuning runs", "Tuning train s", "Tuning wall s", "Train s",
                                   "Train s with tuning"]
    return Table("tuning_cost", "Tuning cost", headers, rows, notes)


def tuning_tables(ctx: Context, selection_threshold: float = DEFAULT_THRESHOLD) -> list[Table]:
    """The tuning tables, or none when no run was tuned; P(selected) below
    `selection_threshold` is marked uncertain."""
    sels = _selections(ctx)
    if not sels:
        return []
    return [_selected_table(ctx, sels, selection_threshold), _sensitivity_table(ctx, sels), _cost_table(ctx, sels)]


def _lr_axis(ax) -> None:
    """A log learning-rate axis with plain labels at 1, 2 and 5 (1e-3, 2e-3; not
    10^-3 in mathtext, whose raised exponent is a separate text box), at most six."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=6))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")))
    ax.xaxis.set_minor_formatter(NullFormatter())


def val_acc_vs_lr(report, fig, colors: dict[str, str]) -> bool:
    """Figure: each strategy's trial validation accuracy against its learning rate
    (one panel per strategy; the selected trial ringed). False without lr searches."""
    points: dict[str, list[tuple[float, float, bool]]] = defaultdict(list)
    for cell, runs in report.study.ok.items():
        sel = next((r["selection"] for r in runs.values() if r.get("selection")), None)
        for t in (sel or {}).get("trial_results", []):
            lr = t["values"].get("train.lr")
            if lr is not None and t["val_acc"] is not None and t["state"] == "complete":
                points[cell.strategy].append((lr, t["val_acc"], t["number"] == sel.get("trial")))
    if not points:
        return False
    strategies = sorted(points)
    ncols = min(3, len(strategies))  # panels wide enough for their tick labels
    nrows = -(-len(strategies) // ncols)
    fig.set_size_inches(8.5, 0.6 + 2.3 * nrows)
    grid = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(strategies):]:
        ax.set_visible(False)
    for ax, strategy in zip(axes, strategies):
        lrs, accs, chosen = zip(*sorted(points[strategy]))
        ax.scatter(lrs, accs, s=14, color=colors.get(strategy, "C0"))
        ax.scatter([x for x, c in zip(lrs, chosen) if c], [y for y, c in zip(accs, chosen) if c], s=60,
                   facecolors="none", edgecolors="black")
        _lr_axis(ax)
        ax.set_title(strategy, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.supxlabel("learning rate", fontsize=8)
    for row in grid:
        row[0].set_ylabel("val. accuracy (%)", fontsize=8)
    fig.suptitle("Search trials: validation accuracy vs learning rate (selected ringed)", fontsize=9)
    return True
