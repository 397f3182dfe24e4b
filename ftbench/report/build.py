"""`build_report`: every table of a report over run records, each table's builder
in its own module, in the order the report shows them."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ftbench import stats
from ftbench.errors import UserInputError
from ftbench.report.accuracy import accuracy_table
from ftbench.report.adaptive import adaptive_table, expected_seeds
from ftbench.report.context import Context
from ftbench.report.core import METRICS, Report, Table, load_study
from ftbench.report.data_efficiency import data_table
from ftbench.report.domain_shift import shift_table
from ftbench.report.forgetting import forgetting_table
from ftbench.report.incomplete import incomplete_table
from ftbench.report.primary import primary_table
from ftbench.report.ranking import ranking_table
from ftbench.report.selection import DEFAULT_THRESHOLD, mark_uncertain, runner_up_table
from ftbench.report.summary import summary_table
from ftbench.report.time import time_table
from ftbench.report.tuning import oracle_warning, tuning_tables

TEST_SET: tuple[str, ...] = ("include", "ignore")


def build_report(records: list[dict], *, baseline: str = "full", scratch: str = "scratch", interval: str = "t",
                 test: str = "ttest", alpha: float = 0.05, metric: str = "acc", margin: float = 1.0,
                 test_set: str = "include", primary: list[dict] | None = None, plan: dict | None = None,
                 selection_threshold: float = DEFAULT_THRESHOLD, runner_up: list[dict] | None = None) -> Report:
    """Every table of a report over run `records` (as `ftbench.results.records.load_records` reads them).

    `test_set`: "include" gives test accuracies two-level intervals and tests (seeds
    and test examples) where the records hold per-example bits; "ignore", seeds only.
    `primary`: the suite's primary comparisons ({strategy, vs} entries), the one
    confirmatory family, reported first. `plan`: an adaptive study's plan.json
    (`ftbench.report.adaptive`): how each comparison ended, and which seeds each cell
    was meant to run (so cells stopped early are not called incomplete).
    `selection_threshold`: a searched cell whose selected values have a lower
    P(selected) is marked "selection uncertain". `runner_up`: the records of
    results/<suite>/runner-up (`search.final_top: 2`).

    >>> report = build_report(load_records("results/quickstart"))   # doctest: +SKIP
    >>> print(ftbench.report.render.render(report, "markdown"))                             # doctest: +SKIP
    """
    for name, value, allowed in (("interval", interval, stats.INTERVALS), ("test", test, stats.TESTS),
                                 ("metric", metric, METRICS), ("test-set", test_set, TEST_SET)):
        if value not in allowed:
            raise UserInputError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
    if not 0 < alpha < 1:
        raise UserInputError(f"alpha must be between 0 and 1, not {alpha}")
    if not margin > 0:
        raise UserInputError(f"the equivalence margin must be a positive number of points, not {margin}")
    if not 0 < selection_threshold <= 1:
        raise UserInputError(f"the selection threshold must be a probability in (0, 1], not {selection_threshold}")
    if not records:
        raise UserInputError("no run records to report on; run the suite first with `ftbench run SUITE`")
    primary = _check_primary(primary or [])
    study = load_study(records)
    ctx = Context(study, baseline, scratch, interval, test, alpha, metric, margin=margin, test_set=test_set)
    first = _safe("primary", "Primary comparisons (confirmatory)", lambda: primary_table(ctx, primary))
    accuracy, vs_base = _safe("accuracy", "Accuracy", lambda: accuracy_table(ctx), {})
    data, aucs = _safe("data", "Data efficiency", lambda: data_table(ctx), {})
    shift, er = _safe("shift", "Domain shift", lambda: shift_table(ctx), {})
    forget, drop = _safe("forgetting", "Forgetting (source task)", lambda: forgetting_table(ctx), {})
    ranks, ranking = _safe("ranks", "Across tasks", lambda: ranking_table(ctx), None)
    summary = _safe("summary", "Summary per strategy", lambda: summary_table(ctx, vs_base, aucs, er, drop))
    if warning := oracle_warning(ctx):  # first thing read about the accuracy
        accuracy.title += " (ORACLE selection in some cells: see the first note)"
        summary.notes.insert(0, warning)
        accuracy.notes.insert(0, warning)
    tables = [first, summary, accuracy, _safe("time", "Training time & cost", lambda: time_table(ctx)),
              *tuning_tables(ctx, selection_threshold), data, shift, forget,
              *([ranks] if ranks else []),
              *([_safe("adaptive", "Adaptive seeds", lambda: adaptive_table(plan))] if plan else []),
              incomplete_table(ctx, expected_seeds(plan))]
    options = {"baseline": baseline, "scratch": scratch, "interval": interval, "test": test, "alpha": alpha,
               "metric": metric, "margin": margin, "test_set": test_set, "two_level": ctx.two_level,
               "confidence": ctx.confidence, "seeds": study.seeds, "records": len(records),
               "primary": primary}
    if runner_up:  # `final_top: 2`: the accuracy table's verdicts again with each runner-up swapped in
        def verdicts(recs: list[dict]) -> dict:
            return accuracy_table(Context(load_study(recs), baseline, scratch, interval, test, alpha, metric,
                                          margin=margin, test_set=test_set))[1]
        tables.insert(tables.index(accuracy) + 1, _safe("runner_up", "Verdict at the runner-up", lambda: (
            runner_up_table(records, runner_up, baseline, alpha, vs_base, verdicts))))
    if any(t.key == "selected" for t in tables):  # a searched suite: how sure its selections are
        options |= {"selection_threshold": selection_threshold,
                    "selection_uncertain": len(mark_uncertain(tables, study, selection_threshold))}
    return Report(tables, options, study, ranking)


def _check_primary(primary: list[dict]) -> list[dict]:
    """The primary comparisons as {strategy, vs[, backbone, dataset, data]} dicts, or a UserInputError."""
    out = []
    for i, entry in enumerate(primary):
        if not isinstance(entry, dict) or not isinstance(entry.get("strategy"), str) \
                or not isinstance(entry.get("vs"), str):
            raise UserInputError(f"primary comparison {i + 1} must name a `strategy` and what it is compared with "
                                 f"(`vs`), as in {{strategy: lp-ft, vs: full}}; got {entry!r}")
        out.append({k: v for k, v in entry.items() if v is not None})
    return out


def _safe(key: str, title: str, build: Callable[[], Any], fallback: Any = ...) -> Any:
    """A table builder's result; a builder that still fails on some degenerate input
    gives its table as one line that says so instead of ending the report (every
    statistic returns nan with a note, so this is a last resort; tests check that no
    table of a degenerate study lands here)."""
    try:
        return build()
    except (ArithmeticError, ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        table = Table(key, title, [], empty=f"could not be computed ({type(exc).__name__}: {exc}); please report "
                                            "this with the records")
        return table if fallback is ... else (table, fallback)
