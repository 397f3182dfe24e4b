"""The gate's verdict as text: a terminal table, a markdown summary (a GitHub job
summary or a PR comment), and GitHub annotations."""

from __future__ import annotations

import os
from typing import Any

from tabulate import tabulate

from ftbench.gate.compare import ACC_REGRESSION, NO_TEST, SPEED_REGRESSION, Comparison
from ftbench.gate.tolerances import Tolerances


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _table(comparison: Comparison, tablefmt: str) -> str:
    rows = []
    for r in comparison.rows:
        p = NO_TEST if r.test == NO_TEST else _fmt(r.p_value, ".3g")
        if r.seeded is not None:  # more_seeds: the sequential interval decides, on matched seeds
            p = f"[{r.seeded.low:+.2f}, {r.seeded.high:+.2f}] n={r.seeded.n}"
        speed = r.speed_seq.describe() if r.speed_seq is not None else _fmt(r.speed_ratio, ".2f")
        rows.append([r.label, str(r.baseline or "-"), str(r.current or "-"), _fmt(r.delta, "+.2f"), p, speed,
                     r.verdict])
    metric = comparison.tolerances.metric
    seeded = comparison.tolerances.more_seeds is not None
    test = "interval (sequential)" if seeded else "p (Welch, 1-sided)"
    delta = "delta (matched seeds)" if seeded else "delta"
    headers = ["cell", f"baseline {metric}", f"current {metric}", delta, test,
               "speed ratio", "verdict"]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def footnote(tol: Tolerances) -> str:
    """The rule the gate applied, in words."""
    points = "point" if tol.acc_drop == 1 else "points"
    if tol.more_seeds is not None:
        looks = ", ".join(map(str, tol.more_seeds.looks))
        accuracy = (f"Accuracy regression: on the seeds both sides ran, the mean test {tol.metric} drops by more "
                    f"than {tol.acc_drop:g} {points} and the repeated upper bound of Δ (one-sided at "
                    f"{tol.alpha:g}, O'Brien-Fleming looks at {looks} seeds) is below 0; a pass needs the lower "
                    f"bound above -{tol.acc_drop:g}; an ambiguous cell gets more seeds up to "
                    f"{tol.more_seeds.max}, then passes. ")
    else:
        accuracy = (f"Accuracy regression: mean test {tol.metric} drops by more than {tol.acc_drop:g} {points} "
                    f"and a one-sided Welch t-test (current < baseline) gives p < {tol.alpha:g}; with fewer than "
                    f"2 seeds on a side the drop alone decides ({NO_TEST}). ")
    if tol.speed_reps is not None:
        looks = ", ".join(map(str, tol.speed_reps.looks))
        speed = (f"Speed regression: on timing repetitions (fresh processes alternating the calibration loop and "
                 f"one run per cell), the repeated interval of the calibrated speed ratio current/baseline "
                 f"(one-sided at {tol.alpha:g} / cells, O'Brien-Fleming looks at {looks} repetitions) lies "
                 f"below {tol.speed_ratio:g}; above it passes; undecided at {tol.speed_reps.max} passes. ")
    else:
        speed = (f"Speed regression: mean samples/s current/baseline < {tol.speed_ratio:g}, each relative to its "
                 f"side's calibration loop when both have one (`ftbench run --calibrate`), else on the same device "
                 f"only. ")
    return (accuracy + speed
            + ("" if tol.seed_tolerance is None else
               f"Seed mismatch: a seed's test {tol.metric} differs from the baseline's same seed by more than "
               f"{tol.seed_tolerance:g} points, or is missing. ")
            + "Missing cells "
            f"{'fail' if tol.fail_on_missing else 'are reported but do not fail'} the gate.")


def _outcome(comparison: Comparison) -> str:
    n_reg, n_missing = len(comparison.regressions), len(comparison.missing)
    word = "FAIL" if comparison.failed else "PASS"
    return f"{word}: {len(comparison.rows)} cell(s), {n_reg} regression(s), {n_missing} missing"


def _notes(comparison: Comparison, bullet: str) -> list[str]:
    return [f"{bullet}{r.label}: {note}" for r in comparison.rows for note in r.notes]


def render_terminal(comparison: Comparison) -> str:
    """A plain-text table, the notes per cell, the rule applied and the outcome."""
    notes = _notes(comparison, "  - ")
    env = [f"Environment changed: {'; '.join(comparison.env_changes)}", ""] if comparison.env_changes else []
    parts = [_table(comparison, "simple"), "", *(["Notes:", *notes, ""] if notes else []), *env,
             footnote(comparison.tolerances), _outcome(comparison)]
    return "\n".join(parts)


def render_markdown(comparison: Comparison) -> str:
    """A markdown summary (a GitHub job summary or a PR comment)."""
    notes = _notes(comparison, "- ")
    parts = [f"## ftbench regression gate: {_outcome(comparison)}", "", _table(comparison, "github"), "",
             *(["**Notes**", "", *notes, ""] if notes else []),
             *([f"Environment changed: {'; '.join(comparison.env_changes)}", ""] if comparison.env_changes else []),
             f"_{footnote(comparison.tolerances)}_"]
    return "\n".join(parts) + "\n"


def _escape(text: str, is_property: bool = False) -> str:
    # GitHub's workflow-command encoding: data escapes %, CR and LF; properties also : and ,
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if is_property else text


def github_annotations(comparison: Comparison) -> list[str]:
    """`::error` lines for regressions and `::warning` lines for missing cells."""
    tol, lines = comparison.tolerances, []
    for r in comparison.rows:
        if ACC_REGRESSION in r.verdicts:
            test = NO_TEST if r.test == NO_TEST else f"Welch one-sided p={r.p_value:.3g} < {tol.alpha:g}"
            if r.seeded is not None:
                test = f"sequential, {r.seeded.n} matched seeds, upper bound {r.seeded.high:+.2f} < 0"
            msg = (f"{r.label}: test {tol.metric} {r.baseline.mean:.2f} -> {r.current.mean:.2f} "
                   f"({r.delta:+.2f} points, limit -{tol.acc_drop:g}; {test})")
            lines.append(f"::error title={_escape(f'{ACC_REGRESSION} {r.label}', True)}::{_escape(msg)}")
        if SPEED_REGRESSION in r.verdicts and r.speed_seq is not None:
            msg = (f"{r.label}: calibrated speed ratio {r.speed_seq.describe()} repetitions, interval below "
                   f"{tol.speed_ratio:g}")
            lines.append(f"::error title={_escape(f'{SPEED_REGRESSION} {r.label}', True)}::{_escape(msg)}")
        elif SPEED_REGRESSION in r.verdicts:
            msg = (f"{r.label}: samples/s {r.speed[0]:.1f} -> {r.speed[1]:.1f} "
                   f"(ratio {r.speed_ratio:.2f} < {tol.speed_ratio:g})")
            lines.append(f"::error title={_escape(f'{SPEED_REGRESSION} {r.label}', True)}::{_escape(msg)}")
        if r.missing_in:
            level = "error" if tol.fail_on_missing and r.missing_in == "current" else "warning"
            msg = f"{r.label}: {'; '.join(r.notes)}"
            lines.append(f"::{level} title=missing cell::{_escape(msg)}")
    return lines


def write_github(comparison: Comparison, echo: Any) -> None:
    """The markdown summary to $GITHUB_STEP_SUMMARY (appended) or, without it,
    through `echo`; then the annotation lines through `echo`."""
    summary = render_markdown(comparison)
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a") as fh:
            fh.write(summary)
        echo(render_terminal(comparison))  # the job log stays readable too
    else:
        echo(summary)
    for line in github_annotations(comparison):
        echo(line)
