"""Figures of a report as PNG files: data-efficiency curves, accuracy vs training
time, forgetting vs accuracy, shifted vs in-distribution accuracy, and the
critical-difference diagram of average ranks.

matplotlib is an optional extra (`pip install ftbench[plots]`). Figures are drawn on
matplotlib's Agg canvas directly, without pyplot, so no global backend is changed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from ftbench import stats
from ftbench.errors import UserInputError
from ftbench.report.build import build_report
from ftbench.report.core import Cell, Report, shifted_mean, source_metric, split_metric, timing
from ftbench.report.forest import forest
from ftbench.report.labels import place_labels
from ftbench.report.tuning import val_acc_vs_lr

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def write_plots(report_or_records: Report | list[dict], out_dir: str | Path, **options: Any) -> list[Path]:
    """Write every figure the report has data for into `out_dir`; return their paths.

    Records are first turned into a report with `options` (as `build_report` takes).
    """
    try:
        from matplotlib.figure import Figure  # noqa: F401  (fail here, before any work, without it)
    except ImportError as exc:
        raise UserInputError("plots need matplotlib, an optional extra: pip install ftbench[plots]") from exc
    report = report_or_records if isinstance(report_or_records, Report) else build_report(report_or_records,
                                                                                          **options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures(report):
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths


def figures(report: Report) -> Iterator[tuple[str, Figure]]:
    """(name, matplotlib Figure) for every figure the report has data for, drawn
    but not saved (`write_plots` saves PNGs; the HTML report embeds SVGs)."""
    from matplotlib.figure import Figure

    colors = {s: f"C{i % 10}" for i, s in enumerate(sorted({c.strategy for c in report.study.ok}))}
    drawers: dict[str, Callable[[Report, Figure, dict[str, str]], bool]] = {
        "forest": forest, "data_efficiency": _data_efficiency, "accuracy_vs_time": _accuracy_vs_time,
        "forgetting_vs_accuracy": _forgetting_vs_accuracy, "domain_shift": _domain_shift,
        "critical_difference": _critical_difference, "val_acc_vs_lr": val_acc_vs_lr}
    for name, draw in drawers.items():
        fig = Figure(figsize=(8.5, 4.5), layout="constrained")  # room for the legend beside the panels
        if draw(report, fig, colors):
            yield name, fig


def _summary(report: Report, by_seed: dict[int, float]) -> stats.Summary:
    return stats.summarize(list(by_seed.values()), interval=report.options["interval"],
                           confidence=report.options["confidence"])


def _acc(report: Report) -> dict[Cell, dict[int, float]]:
    return report.study.values(lambda r: split_metric(r, "test", report.options["metric"]))


def _data_efficiency(report: Report, fig: Figure, colors: dict[str, str]) -> bool:
    """Mean accuracy vs n_train per strategy with its interval band, one panel per
    backbone and dataset."""
    acc = _acc(report)
    curves: dict[tuple[str, str], dict[str, list[Cell]]] = defaultdict(lambda: defaultdict(list))
    for cell in acc:
        if cell in report.study.n_train:
            curves[(cell.backbone, cell.dataset)][cell.strategy].append(cell)
    curves = {k: v for k, v in curves.items() if any(len(cs) >= 2 for cs in v.values())}
    if not curves:
        return False
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, ((backbone, dataset), by_strategy) in zip(axes, sorted(curves.items())):
        for strategy, cells in sorted(by_strategy.items()):
            cells.sort(key=lambda c: report.study.n_train[c])
            x = [report.study.n_train[c] for c in cells]
            sums = [_summary(report, acc[c]) for c in cells]
            ax.plot(x, [s.mean for s in sums], "o-", color=colors[strategy], label=strategy)
            ax.fill_between(x, [s.low for s in sums], [s.high for s in sums], color=colors[strategy], alpha=0.2)
        scratch = by_strategy.get(report.options["scratch"])
        if scratch:  # the target of data efficiency: scratch with all its data
            best = max(scratch, key=lambda c: report.study.n_train[c])
            ax.axhline(_summary(report, acc[best]).mean, color="0.4", ls=":", lw=1,
                       label=f"{report.options['scratch']} at {report.study.n_train[best]:g} examples")
        chance = _chance(report, [c for cs in by_strategy.values() for c in cs])
        if chance is not None:
            ax.axhline(chance, color="0.6", ls="--", lw=1, label=f"chance ({chance:.3g}%)")
        ax.set(xlabel="labelled training examples", title=f"{dataset} ({backbone})")
        _log_axis(ax.xaxis, ax.set_xscale)
    axes[0].set_ylabel(f"test {report.options['metric']} (%)")
    _legend_outside(fig, axes)
    return True


def _chance(report: Report, cells: list[Cell]) -> float | None:
    """Accuracy of guessing, from the class count the runs recorded (None without)."""
    counts = [(rec.get("data_amount") or {}).get("n_classes") for c in cells
              for rec in report.study.ok.get(c, {}).values()]
    if not counts or not all(type(n) is int and n >= 1 for n in counts) or len(set(counts)) != 1:
        return None  # unknown, mixed, or not a count (a hand-edited record)
    n = counts[0]
    k = 5 if report.options["metric"] == "top5" else 1
    return min(100.0, 100.0 * k / n)


def _log_axis(axis, set_scale) -> None:
    """A log axis that reads 10, 20, 50, 100 (not 3x10^1): plain numbers at 1, 2, 5."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    set_scale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _legend_outside(fig: Figure, axes) -> None:
    """One legend for all panels, right of them, so it covers no data."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize="small")


def _scatter_cells(report: Report, fig: Figure, colors: dict[str, str], x: dict[Cell, dict[int, float]],
                   xlabel: str, log_x: bool, labels: bool = False) -> bool:
    """Per cell: mean accuracy against the mean of `x`, with interval error bars;
    with `labels`, each point is named (strategy, and data amount when they vary)."""
    acc = _acc(report)
    cells = sorted(set(acc) & set(x))
    if not cells:
        return False
    ax = fig.subplots()
    seen, names = set(), []
    for cell in cells:
        sx, sy = _summary(report, x[cell]), _summary(report, acc[cell])
        ax.errorbar(sx.mean, sy.mean, xerr=_err(sx), yerr=_err(sy), fmt="o", color=colors[cell.strategy],
                    label=None if cell.strategy in seen else cell.strategy)
        seen.add(cell.strategy)
        if labels:
            name = " ".join([cell.strategy] + [getattr(cell, f) for f in ("data", "dataset")
                                               if len({getattr(c, f) for c in cells}) > 1])
            names.append((sx.mean, sy.mean, name))
    ax.set(xlabel=xlabel, ylabel=f"test {report.options['metric']} (%)")
    if log_x:
        _log_axis(ax.xaxis, ax.set_xscale)
    _legend_outside(fig, [ax])
    if names:
        place_labels(fig, ax, names)  # last: where the layout put the axes; a label with no free spot is left out
    return True


def _err(s: stats.Summary) -> list[list[float]] | None:
    """Asymmetric error bar lengths, or None when the interval is undefined."""
    if not math.isfinite(s.low):
        return None
    return [[s.mean - s.low], [s.high - s.mean]]


def _accuracy_vs_time(report: Report, fig: Figure, colors: dict[str, str]) -> bool:
    return _scatter_cells(report, fig, colors, report.study.values(timing("train_s")), "training time (s)", True,
                          labels=True)


def _forgetting_vs_accuracy(report: Report, fig: Figure, colors: dict[str, str]) -> bool:
    metric = report.options["metric"]
    before = report.study.values(lambda r: source_metric(r, metric, "before"))
    after = report.study.values(lambda r: source_metric(r, metric, "after"))
    drop = {c: {s: before[c][s] - a for s, a in after[c].items() if s in before[c]} for c in set(before) & set(after)}
    return _scatter_cells(report, fig, colors, drop, f"source-task {metric} drop (points)", False)


def _domain_shift(report: Report, fig: Figure, colors: dict[str, str]) -> bool:
    """Every run's shifted vs in-distribution accuracy with the fitted line, one
    panel per dataset."""
    metric = report.options["metric"]
    acc, shifted = _acc(report), report.study.values(lambda r: shifted_mean(r, metric))
    datasets = sorted({c.dataset for c in shifted})
    if not datasets:
        return False
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets):
        xs, ys = [], []
        for strategy in sorted({c.strategy for c in shifted if c.dataset == dataset}):
            pairs = [(acc[c][s], v) for c in shifted if c.dataset == dataset and c.strategy == strategy
                     for s, v in shifted[c].items() if s in acc.get(c, {})]
            ax.scatter(*zip(*pairs), color=colors[strategy], label=strategy, s=18)
            xs += [p[0] for p in pairs]
            ys += [p[1] for p in pairs]
        fit = stats.robustness_fit(xs, ys)
        if fit is not None:
            line = np.linspace(min(xs), max(xs), 2)
            ax.plot(line, fit.predict(line), "k--", lw=1, label="fit")
        limits = ax.get_xlim(), ax.get_ylim()
        ax.axline((xs[0], xs[0]), slope=1, color="0.6", ls=":", lw=1, label="y = x (no drop under shift)")
        ax.set(xlim=limits[0], ylim=limits[1])  # the reference line must not zoom out from the data
        ax.set(xlabel=f"test {metric} (%)", title=dataset)
    axes[0].set_ylabel(f"mean shifted {metric} (%)")
    _legend_outside(fig, axes)
    return True


def _critical_difference(report: Report, fig: Figure, colors: dict[str, str]) -> bool:
    """Average ranks on one axis (best on the left), the critical difference as a
    bar, and thick lines joining strategies whose ranks differ by less than it."""
    ranking = report.ranking
    if ranking is None or not math.isfinite(ranking.friedman.cd):
        return False
    k, cd = len(ranking.strategies), ranking.friedman.cd
    order = sorted(zip(ranking.ranks, ranking.strategies))
    # Cliques: from each strategy, the farthest one within CD; skip those inside a drawn one.
    cliques, drawn_to = [], -1
    for i, (rank, _) in enumerate(order):
        j = max(j for j in range(i, k) if order[j][0] - rank < cd)
        if j > i and j > drawn_to:
            cliques.append((rank, order[j][0]))
            drawn_to = j
    top = -0.6 - 0.3 * len(cliques)  # the first label row, below the clique bars
    rows = (k + 1) // 2
    ax = fig.subplots()
    fig.set_size_inches(7, 1.4 + 0.35 * (rows + len(cliques)))
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(top - 0.7 * rows, 2)
    ax.axis("off")
    ax.hlines(0, 1, k, color="k")
    for r in range(1, k + 1):
        ax.vlines(r, 0, 0.2, color="k")
        ax.text(r, 0.35, str(r), ha="center")
    ax.plot([1, 1 + cd], [1.3, 1.3], "k-", lw=2)
    ax.text(1 + cd / 2, 1.5, f"CD = {cd:.2f}", ha="center")
    for n, (low, high) in enumerate(cliques):
        y = -0.4 - 0.3 * n
        ax.plot([low - 0.03, high + 0.03], [y, y], "k-", lw=4)
    for i, (rank, strategy) in enumerate(order):
        left = i < rows
        y = top - 0.7 * (i if left else k - 1 - i)
        x_text = 0.55 if left else k + 0.45
        ax.plot([rank, rank, x_text], [0, y, y], color=colors.get(strategy, "k"), lw=1)
        ax.text(x_text, y + 0.08, f"{strategy} ({rank:.2f})", ha="left" if left else "right", va="bottom")
    ax.set_title(f"average rank over {ranking.n_tasks} tasks (Friedman p = {ranking.friedman.p:.3g})")
    return True
