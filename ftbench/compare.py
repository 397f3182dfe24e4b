"""The regression gate: compare current results against a saved baseline.

A baseline is a compact JSON file (`ftbench baseline save`) holding, per cell
(backbone, dataset, strategy, data), the per-seed test metrics and throughput of
the runs with status ok. `compare` decides, per cell:

- accuracy regression: the current mean is below the baseline mean by more than
  `acc_drop` points AND a one-sided Welch t-test (current < baseline) gives
  p < `alpha`. With fewer than 2 seeds on a side no test can run; then the drop
  alone decides, and the row says so ("n<2, drop only").
- speed regression: mean samples/s current / baseline < `speed_ratio`, compared
  only when both sides ran on the same device name.
- missing: a cell on one side only; a failure only with `fail_on_missing`.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator
from scipy import stats
from tabulate import tabulate

from ftbench.errors import FtbenchError, UserInputError
from ftbench.store import RECORD_FORMAT, load_records, write_json_atomic

BASELINE_FORMAT = "ftbench.baseline/1"
CELL_KEYS = ("backbone", "dataset", "strategy", "data")
METRICS = ("acc", "balanced_acc", "top5")  # test-split metrics a baseline keeps
ENV_KEYS = ("python", "torch", "timm", "ftbench", "device_name")

ACC_REGRESSION = "ACC REGRESSION"
SPEED_REGRESSION = "SPEED REGRESSION"
SEED_MISMATCH = "SEED MISMATCH"
MISSING = "missing"
NO_TEST = "n<2, drop only"


# ---------------------------------------------------------------- tolerances


@dataclass(frozen=True)
class Tolerances:
    """What counts as a regression. Load from a file with `load_tolerances`."""

    acc_drop: float = 1.0  # points (accuracies are percentages) the mean may drop before it counts
    alpha: float = 0.05  # level of the one-sided Welch t-test that must also reject
    speed_ratio: float = 0.9  # current/baseline mean samples/s below this is a regression
    metric: str = "acc"  # which test metric: acc, balanced_acc or top5
    fail_on_missing: bool = False  # a baseline cell absent from the current results fails the gate
    # Reproduction (`make reproduce`): every seed on both sides must be within this many
    # points of the baseline's same seed (0: equal accuracies); None compares means only.
    seed_tolerance: float | None = None

    def __post_init__(self) -> None:
        for name in ("acc_drop", "alpha", "speed_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserInputError(f"tolerance {name} must be a number, got {value!r}")
        if self.acc_drop < 0:
            raise UserInputError(f"acc_drop must be >= 0 points, got {self.acc_drop}")
        if not 0 < self.alpha < 1:
            raise UserInputError(f"alpha must be between 0 and 1 (e.g. 0.05), got {self.alpha}")
        if self.speed_ratio <= 0:
            raise UserInputError(f"speed_ratio must be > 0 (e.g. 0.9), got {self.speed_ratio}")
        if self.metric not in METRICS:
            raise UserInputError(f"metric '{self.metric}' is not one of {', '.join(METRICS)}")
        if self.seed_tolerance is not None and (isinstance(self.seed_tolerance, bool) or not isinstance(
                self.seed_tolerance, (int, float)) or self.seed_tolerance < 0):
            raise UserInputError(f"seed_tolerance must be a number of points >= 0 (0: exact), got "
                                 f"{self.seed_tolerance!r}")
        if not isinstance(self.fail_on_missing, bool):
            raise UserInputError(f"fail_on_missing must be true or false, got {self.fail_on_missing!r}")


def load_tolerances(path: str | Path | None = None, **overrides: Any) -> Tolerances:
    """Tolerances from a YAML or TOML file (top-level keys acc_drop, alpha,
    speed_ratio, metric, fail_on_missing), then `overrides` that are not None."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text()
            values = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (OSError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise UserInputError(f"{path}: cannot read the gate config ({exc})") from exc
        values = values or {}
        if not isinstance(values, dict):
            raise UserInputError(f"{path}: the gate config must be a mapping of keys to values")
        allowed = [f.name for f in fields(Tolerances)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise UserInputError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        _build(values, f"{path}: ")  # a bad value in the file names the file
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _build(values, "")


def _build(values: dict[str, Any], where: str) -> Tolerances:
    try:
        return Tolerances(**values)
    except UserInputError as exc:
        raise UserInputError(f"{where}{exc}") from None


# ---------------------------------------------------------------- baselines


def _cell_key(cell: dict) -> tuple[str, ...]:
    return tuple(str(cell[k]) for k in CELL_KEYS)


def _common(values: list[Any]) -> Any:
    """The one value every record shares, or the sorted distinct values when they differ."""
    distinct = sorted({v for v in values if v is not None}, key=str)
    return distinct[0] if len(distinct) == 1 else (distinct or None)


def make_baseline(records: list[dict], calibration: float | None = None) -> dict:
    """A compact baseline from run records: per cell the seeds, the test metrics and
    samples/s per seed, of the runs with status ok; and the calibration loop's
    samples/s measured beside the runs (`ftbench run --calibrate`), when there is one."""
    groups: dict[tuple[str, ...], list[dict]] = {}
    for record in records:
        cell = record.get("cell") or {}
        if any(k not in cell for k in CELL_KEYS):
            raise UserInputError(f"record {record.get('id')} has no complete `cell` labels "
                                 f"({', '.join(CELL_KEYS)}); it was not written by this ftbench")
        groups.setdefault(_cell_key(cell), []).append(record)
    cells = [_baseline_cell(runs) for _, runs in sorted(groups.items())]
    env = {key: _common([r.get("env", {}).get(key) for r in records]) for key in ENV_KEYS}
    return {"format": BASELINE_FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "env": env, "calibration": calibration, "cells": cells}


def _baseline_cell(runs: list[dict]) -> dict:
    ok = sorted((r for r in runs if r.get("status") == "ok"), key=lambda r: r.get("seed", 0))
    seeds = [r.get("seed") for r in ok]
    if len(set(seeds)) < len(seeds):
        ids = ", ".join(r["id"] for r in ok)
        raise UserInputError(f"cell {'/'.join(_cell_key(runs[0]['cell']))} has two ok runs with one seed "
                             f"(records {ids}); the cell labels do not tell them apart, so compare "
                             "results of one suite at a time")
    tests = [(r.get("metrics") or {}).get("test") or {} for r in ok]
    # A metric enters only when every seed has it, so lists stay aligned with `seeds`.
    metrics = {m: [float(t[m]) for t in tests] for m in METRICS
               if ok and all(isinstance(t.get(m), (int, float)) for t in tests)}
    speed = [(r.get("timing") or {}).get("samples_per_s") for r in ok]
    devices = {(r.get("env") or {}).get("device_name") for r in ok}
    return {"cell": {k: runs[0]["cell"][k] for k in CELL_KEYS}, "seeds": seeds, "metrics": metrics,
            "samples_per_s": speed, "device_name": devices.pop() if len(devices) == 1 else None,
            "not_ok": len(runs) - len(ok), "budget": _common([_budget(r) for r in ok])}


def _budget(record: dict) -> str | None:
    """A record's budget limits as one comparable string ("steps=4"), or None."""
    limits = (record.get("budget") or {}).get("limits") or {}
    return ", ".join(f"{k}={v:g}" for k, v in sorted(limits.items()) if isinstance(v, (int, float))) or None


def save_baseline(records: list[dict], path: str | Path, calibration: float | None = None) -> dict:
    """Write `make_baseline(records, calibration)` to `path` atomically and return it."""
    if not records:
        raise UserInputError("no run records to save; run `ftbench run SUITE` first")
    baseline = make_baseline(records, calibration)
    if not any(cell["seeds"] for cell in baseline["cells"]):
        raise UserInputError(f"none of the {len(records)} run records has status ok; a baseline needs "
                             "finished runs, so fix the failures and rerun `ftbench run SUITE`")
    write_json_atomic(Path(path), baseline)
    return baseline


class _CellModel(BaseModel):
    cell: dict[str, str]
    seeds: list[int]
    metrics: dict[str, list[float]]
    samples_per_s: list[float | None]
    device_name: str | None = None
    not_ok: int = 0
    budget: str | list[str] | None = None

    @model_validator(mode="after")
    def _aligned(self) -> "_CellModel":
        missing = [k for k in CELL_KEYS if k not in self.cell]
        if missing:
            raise ValueError(f"cell labels lack {', '.join(missing)}")
        lengths = {len(v) for v in self.metrics.values()} | {len(self.samples_per_s)}
        if lengths - {len(self.seeds)}:
            raise ValueError(f"per-seed lists must have one value per seed ({len(self.seeds)})")
        return self


class _BaselineModel(BaseModel):
    format: str
    created_at: str
    env: dict[str, Any]
    calibration: float | None = Field(None, gt=0)
    cells: list[_CellModel]


def _check_baseline(data: Any, path: Path) -> dict:
    fix = "recreate it with `ftbench baseline save RESULTS -o FILE`"
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: not a baseline (a JSON object is expected); {fix}")
    if data.get("format") != BASELINE_FORMAT:
        hint = ("; it is one run record: pass its results folder instead"
                if data.get("format") == RECORD_FORMAT else f"; {fix}")
        raise UserInputError(f"{path}: format is {data.get('format')!r}, expected '{BASELINE_FORMAT}'{hint}")
    try:
        _BaselineModel.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
        raise UserInputError(f"{path}: malformed baseline ({problems}); {fix}") from None
    return data


def load_side(path: str | Path) -> dict:
    """A baseline dict from a baseline file, or from a results folder of run records."""
    path = Path(path)
    if path.is_dir():
        records = load_records(path)
        if not records:
            raise UserInputError(f"{path}: no run records in this folder; run `ftbench run SUITE` first")
        from ftbench.calibrate import read_calibration

        return make_baseline(records, read_calibration(path))
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read it ({exc.strerror}); pass a baseline file or a "
                             "results folder") from exc
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: not valid JSON ({exc}); pass a baseline file written by "
                             "`ftbench baseline save`") from exc
    return _check_baseline(data, path)


# ---------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (0 for one value) and count of per-seed values."""

    mean: float
    sd: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Summary":
        arr = np.asarray(values, dtype=float)
        return cls(float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, len(arr))

    def __str__(self) -> str:
        return f"{self.mean:.2f}±{self.sd:.2f} ({self.n})" if self.n > 1 else f"{self.mean:.2f} ({self.n})"


@dataclass
class CellResult:
    """The verdict on one cell and the numbers behind it."""

    cell: dict[str, str]
    baseline: Summary | None = None
    current: Summary | None = None
    p_value: float | None = None
    test: str = ""  # "welch", NO_TEST, or "" when accuracy was not compared
    speed_ratio: float | None = None
    speed: tuple[float, float] | None = None  # mean samples/s (baseline, current)
    missing_in: Literal["baseline", "current"] | None = None
    verdicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "/".join(str(self.cell[k]) for k in CELL_KEYS)

    @property
    def delta(self) -> float | None:
        return self.current.mean - self.baseline.mean if self.baseline and self.current else None

    @property
    def verdict(self) -> str:
        return ", ".join(self.verdicts) or "ok"


@dataclass
class Comparison:
    """Every cell's result, in cell order, and the tolerances that judged them."""

    rows: list[CellResult]
    tolerances: Tolerances
    env_changes: list[str] = field(default_factory=list)  # "torch 2.14.1 -> 2.15.0"

    @property
    def regressions(self) -> list[CellResult]:
        return [r for r in self.rows if {ACC_REGRESSION, SPEED_REGRESSION, SEED_MISMATCH} & set(r.verdicts)]

    @property
    def missing(self) -> list[CellResult]:
        return [r for r in self.rows if r.missing_in]

    @property
    def failed(self) -> bool:
        lost = any(r.missing_in == "current" for r in self.rows)
        return bool(self.regressions) or (self.tolerances.fail_on_missing and lost)


def compare(baseline: dict, current: dict, tolerances: Tolerances = Tolerances()) -> Comparison:
    """Judge every cell of `current` against `baseline` (both as from `load_side`)."""
    for side, data in (("baseline", baseline), ("current", current)):
        have = sorted({m for c in data["cells"] for m in c["metrics"]})
        # Only when other metrics exist: a side whose runs all failed has none, and
        # its cells are then reported as missing instead.
        if have and tolerances.metric not in have:
            raise UserInputError(f"the {side} has no test metric '{tolerances.metric}'; "
                                 f"choose --metric from: {', '.join(have)}")
    base = {_cell_key(c["cell"]): c for c in baseline["cells"]}
    cur = {_cell_key(c["cell"]): c for c in current["cells"]}
    calibration = (baseline.get("calibration"), current.get("calibration"))
    rows = [_compare_cell(base.get(key), cur.get(key), tolerances, calibration)
            for key in sorted(base.keys() | cur.keys())]
    _check_comparable(rows, baseline, current)
    changes = [f"{key} {baseline['env'].get(key)} -> {current['env'].get(key)}" for key in ENV_KEYS
               if baseline["env"].get(key) != current["env"].get(key)]
    return Comparison(rows, tolerances, changes)


def _check_comparable(rows: list[CellResult], baseline: dict, current: dict) -> None:
    """A gate that compared nothing must not pass: raise when no cell has ok runs on
    both sides, saying why."""
    if any(not r.missing_in for r in rows):
        return
    if not any(c["seeds"] for c in current["cells"]):
        not_ok = sum(c.get("not_ok", 0) for c in current["cells"])
        raise FtbenchError(f"nothing to compare: the current results have no ok runs ({not_ok} failed or "
                           "diverged); fix the failures (`ftbench report` lists them) and rerun")
    shown = lambda side: ", ".join("/".join(_cell_key(c["cell"])) for c in side["cells"][:3]) or "none"
    raise FtbenchError(f"nothing to compare: no cell has ok runs in both the baseline ({shown(baseline)}) "
                       f"and the current results ({shown(current)}); compare results of the same suite")


def _compare_cell(base: dict | None, cur: dict | None, tol: Tolerances,
                  calibration: tuple[float | None, float | None] = (None, None)) -> CellResult:
    result = CellResult(cell=(base or cur)["cell"])
    for side, data in (("baseline", base), ("current", cur)):
        if data and data.get("not_ok"):
            result.notes.append(f"{data['not_ok']} run(s) failed or diverged in the {side}")
    b_acc = (base or {}).get("metrics", {}).get(tol.metric)
    c_acc = (cur or {}).get("metrics", {}).get(tol.metric)
    result.baseline = Summary.of(b_acc) if b_acc else None
    result.current = Summary.of(c_acc) if c_acc else None
    if not b_acc or not c_acc:
        result.missing_in = "baseline" if not b_acc else "current"
        result.verdicts.append(MISSING)
        result.notes.insert(0, f"missing in the {result.missing_in}: no ok runs with test {tol.metric}")
        return result
    if base.get("budget") and cur.get("budget") and base["budget"] != cur["budget"]:
        result.notes.append(f"warning: budgets differ (baseline {base['budget']}, current {cur['budget']}); "
                            "the accuracies may not be comparable")
    drop = result.baseline.mean - result.current.mean
    if min(len(b_acc), len(c_acc)) < 2:
        result.test = NO_TEST
        significant = True
        result.notes.append(f"{NO_TEST}: fewer than 2 seeds on a side, so no significance test")
    else:
        result.test = "welch"
        result.p_value = welch_less(c_acc, b_acc)
        significant = result.p_value < tol.alpha
    if drop > tol.acc_drop and significant:
        result.verdicts.append(ACC_REGRESSION)
    if tol.seed_tolerance is not None:
        _compare_seeds(base, cur, tol, result)
    _compare_speed(base, cur, tol, result, calibration)
    return result


def _compare_seeds(base: dict, cur: dict, tol: Tolerances, result: CellResult) -> None:
    """Seed by seed: each seed's value must be within `seed_tolerance` of the
    baseline's same seed, and every baseline seed must be there."""
    b = dict(zip(base["seeds"], base["metrics"][tol.metric]))
    c = dict(zip(cur["seeds"], cur["metrics"][tol.metric]))
    off = [f"seed {s}: {b[s]:.4g} -> {c[s]:.4g}" for s in sorted(b.keys() & c.keys())
           if abs(c[s] - b[s]) > tol.seed_tolerance]
    lost = sorted(b.keys() - c.keys())
    if off or lost:
        result.verdicts.append(SEED_MISMATCH)
    if off:
        result.notes.append(f"{len(off)} seed(s) beyond {tol.seed_tolerance:g} points: {'; '.join(off)}")
    if lost:
        result.notes.append(f"seed(s) {', '.join(map(str, lost))} of the baseline missing in the current")


def welch_less(current: list[float], baseline: list[float]) -> float:
    """One-sided Welch t-test p-value for mean(current) < mean(baseline)."""
    if np.ptp(current) == 0 and np.ptp(baseline) == 0:
        # No spread on either side: the t statistic is undefined, and a difference
        # repeated exactly by every seed is as certain as it gets.
        return 0.0 if np.mean(current) < np.mean(baseline) else 1.0
    return float(stats.ttest_ind(current, baseline, equal_var=False, alternative="less").pvalue)


def _compare_speed(base: dict, cur: dict, tol: Tolerances, result: CellResult,
                   calibration: tuple[float | None, float | None] = (None, None)) -> None:
    """Samples/s current/baseline. With a calibration on both sides each mean is first
    divided by its side's calibration loop speed, which cancels the machine and its
    load (so any two machines compare); without, only the same device compares."""
    b_cal, c_cal = calibration
    calibrated = bool(b_cal and c_cal)
    b_dev, c_dev = base.get("device_name"), cur.get("device_name")
    if not calibrated and (b_dev is None or c_dev is None or b_dev != c_dev):
        result.notes.append(f"speed not compared: device differs ({b_dev or 'mixed/unknown'} vs "
                            f"{c_dev or 'mixed/unknown'})")
        return
    b_sps = [v for v in base["samples_per_s"] if v is not None and math.isfinite(v)]
    c_sps = [v for v in cur["samples_per_s"] if v is not None and math.isfinite(v)]
    if not b_sps or not c_sps or np.mean(b_sps) <= 0:
        result.notes.append("speed not compared: samples/s not recorded")
        return
    result.speed = (float(np.mean(b_sps)), float(np.mean(c_sps)))
    result.speed_ratio = result.speed[1] / result.speed[0]
    if calibrated:
        result.speed_ratio *= b_cal / c_cal
    elif b_cal or c_cal:
        result.notes.append("speed not calibrated: only one side ran `ftbench run --calibrate`")
    if result.speed_ratio < tol.speed_ratio:
        result.verdicts.append(SPEED_REGRESSION)


# ---------------------------------------------------------------- rendering


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _table(comparison: Comparison, tablefmt: str) -> str:
    rows = []
    for r in comparison.rows:
        p = NO_TEST if r.test == NO_TEST else _fmt(r.p_value, ".3g")
        rows.append([r.label, str(r.baseline or "-"), str(r.current or "-"), _fmt(r.delta, "+.2f"), p,
                     _fmt(r.speed_ratio, ".2f"), r.verdict])
    metric = comparison.tolerances.metric
    headers = ["cell", f"baseline {metric}", f"current {metric}", "delta", "p (Welch, 1-sided)",
               "speed ratio", "verdict"]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def footnote(tol: Tolerances) -> str:
    """The rule the gate applied, in words."""
    points = "point" if tol.acc_drop == 1 else "points"
    return (f"Accuracy regression: mean test {tol.metric} drops by more than {tol.acc_drop:g} {points} and a "
            f"one-sided Welch t-test (current < baseline) gives p < {tol.alpha:g}; with fewer than 2 seeds "
            f"on a side the drop alone decides ({NO_TEST}). Speed regression: mean samples/s "
            f"current/baseline < {tol.speed_ratio:g}, each relative to its side's calibration loop when both "
            f"have one (`ftbench run --calibrate`), else on the same device only. "
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
            msg = (f"{r.label}: test {tol.metric} {r.baseline.mean:.2f} -> {r.current.mean:.2f} "
                   f"({r.delta:+.2f} points, limit -{tol.acc_drop:g}; {test})")
            lines.append(f"::error title={_escape(f'{ACC_REGRESSION} {r.label}', True)}::{_escape(msg)}")
        if SPEED_REGRESSION in r.verdicts:
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
