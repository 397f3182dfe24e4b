"""Baselines: a compact JSON file (`ftbench baseline save`) holding, per cell
(backbone, dataset, strategy, data), the per-seed test metrics and throughput of the
runs with status ok; or the same built from a results folder (`load_side`)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from ftbench.driver.calibrate import read_calibration
from ftbench.errors import UserInputError
from ftbench.results.records import RECORD_FORMAT, load_records
from ftbench.results.store import write_json_atomic

BASELINE_FORMAT = "ftbench.baseline/1"
CELL_KEYS = ("backbone", "dataset", "strategy", "data")
BASELINE_METRICS = ("acc", "balanced_acc", "top5")  # test-split metrics a baseline keeps
ENV_KEYS = ("python", "torch", "timm", "ftbench", "device_name")


def cell_labels(cell: dict) -> tuple[str, ...]:
    """A cell's labels as strings, in `CELL_KEYS` order: its key in a baseline."""
    return tuple(str(cell[k]) for k in CELL_KEYS)


def _common(values: list[Any]) -> Any:
    """The one value every record shares, or the sorted distinct values when they differ."""
    # A malformed record's list or mapping counts by its text, rather than failing the set.
    distinct = sorted({v if isinstance(v, (str, int, float, bool)) else str(v) for v in values if v is not None},
                      key=str)
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
        groups.setdefault(cell_labels(cell), []).append(record)
    cells = [_baseline_cell(runs) for _, runs in sorted(groups.items())]
    env = {key: _common([r.get("env", {}).get(key) for r in records]) for key in ENV_KEYS}
    return {"format": BASELINE_FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "env": env, "calibration": calibration, "cells": cells}


def _baseline_cell(runs: list[dict]) -> dict:
    ok = sorted((r for r in runs if r.get("status") == "ok"), key=lambda r: r.get("seed", 0))
    seeds = [r.get("seed") for r in ok]
    if len(set(seeds)) < len(seeds):
        ids = ", ".join(r["id"] for r in ok)
        raise UserInputError(f"cell {'/'.join(cell_labels(runs[0]['cell']))} has two ok runs with one seed "
                             f"(records {ids}); the cell labels do not tell them apart, so compare "
                             "results of one suite at a time")
    tests = [(r.get("metrics") or {}).get("test") or {} for r in ok]
    # A metric enters only when every seed has it, so lists stay aligned with `seeds`.
    metrics = {m: [float(t[m]) for t in tests] for m in BASELINE_METRICS
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


def save_baseline(records: list[dict], path: str | Path, calibration: float | None = None,
                  speed: dict | None = None) -> dict:
    """Write `make_baseline(records, calibration)` to `path` atomically and return it;
    with `speed` (`ftbench.gate.speed.baseline_speed`), the timing repetitions too."""
    if not records:
        raise UserInputError("no run records to save; run `ftbench run SUITE` first")
    baseline = make_baseline(records, calibration)
    if not any(cell["seeds"] for cell in baseline["cells"]):
        raise UserInputError(f"none of the {len(records)} run records has status ok; a baseline needs "
                             "finished runs, so fix the failures and rerun `ftbench run SUITE`")
    if speed is not None:
        baseline["speed"] = speed
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


class _SpeedCell(BaseModel):
    cell: dict[str, str]
    log_ratios: list[float]


class _SpeedModel(BaseModel):
    """Timing repetitions (`ftbench baseline save --speed-reps`, `ftbench.gate.speed`)."""

    machine: str | list[str]
    cells: list[_SpeedCell]


class _BaselineModel(BaseModel):
    format: str
    created_at: str
    env: dict[str, Any]
    calibration: float | None = Field(None, gt=0)
    cells: list[_CellModel]
    speed: _SpeedModel | None = None


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
