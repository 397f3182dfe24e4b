"""Report tables over run records: one table per axis (accuracy, training time and
cost, data efficiency, domain shift, forgetting), a summary per strategy, ranks
across tasks, and the cells that miss seeds; one module per table.

A cell is (backbone, dataset, strategy, data); its seeds are replicates. A task is a
cell without its strategy: strategies are compared within a task on matched seeds.
Every table says how many seeds it averages, which interval it shows and which test
marked its values. `ftbench.render.render` turns a Report into text, LaTeX, CSV or JSON.
"""

from __future__ import annotations

from ftbench import stats
from ftbench.errors import UserInputError
from ftbench.report.accuracy import _accuracy_table
from ftbench.report.core import (BEST, METRICS, TIED, UNTESTED, Cell, Est, Num, Ranking, Report, Study, Table, _Ctx,
                                 json_number, load_study, shifted_mean, source_metric, split_metric,
                                 time_to_target, timing)
from ftbench.report.data_efficiency import _data_table
from ftbench.report.domain_shift import _shift_table
from ftbench.report.forgetting import _forgetting_table
from ftbench.report.incomplete import _incomplete_table
from ftbench.report.ranking import _ranking_table
from ftbench.report.summary import _summary_table
from ftbench.report.time import _time_table
from ftbench.report.tuning import oracle_warning, tuning_tables

__all__ = ["BEST", "METRICS", "TIED", "UNTESTED", "Cell", "Est", "Num", "Ranking", "Report", "Study", "Table",
           "build_report", "json_number", "load_study", "shifted_mean", "source_metric", "split_metric",
           "time_to_target", "timing"]


def build_report(records: list[dict], *, baseline: str = "full", scratch: str = "scratch", interval: str = "t",
                 test: str = "ttest", alpha: float = 0.05, metric: str = "acc", margin: float = 1.0) -> Report:
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
    if not margin > 0:
        raise UserInputError(f"the equivalence margin must be a positive number of points, not {margin}")
    if not records:
        raise UserInputError("no run records to report on; run the suite first with `ftbench run SUITE`")
    study = load_study(records)
    ctx = _Ctx(study, baseline, scratch, interval, test, alpha, metric, margin=margin)
    accuracy, vs_base = _accuracy_table(ctx)
    data, aucs = _data_table(ctx)
    shift, er = _shift_table(ctx)
    forget, drop = _forgetting_table(ctx)
    ranks, ranking = _ranking_table(ctx)
    summary = _summary_table(ctx, vs_base, aucs, er, drop)
    if warning := oracle_warning(ctx):  # first thing read about the accuracy
        accuracy.title += " (ORACLE selection in some cells: see the first note)"
        summary.notes.insert(0, warning)
        accuracy.notes.insert(0, warning)
    tables = [summary, accuracy, _time_table(ctx), *tuning_tables(ctx),
              data, shift, forget,
              *([ranks] if ranks else []), _incomplete_table(ctx)]
    options = {"baseline": baseline, "scratch": scratch, "interval": interval, "test": test, "alpha": alpha,
               "metric": metric, "margin": margin, "confidence": ctx.confidence, "seeds": study.seeds,
               "records": len(records)}
    return Report(tables, options, study, ranking)
