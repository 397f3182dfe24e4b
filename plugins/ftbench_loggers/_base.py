"""What every built-in logger shares: the lifecycle hooks that never raise, and the
record flattened into the names trackers want."""

from __future__ import annotations

import importlib
import math
import re
import sys
from pathlib import Path
from typing import Any

import ftbench

# Curve fields logged at every point (step = samples seen); the others are bookkeeping.
CURVE_KEYS = ("train_loss", "val_acc", "train_seconds", "epoch", "progress")


class Logger:
    """Base of a logger: subclasses implement `start(suite, runs)`, `log_run(suite,
    record)` and `end(suite, records)`. A failure is reported once on stderr and
    never reaches the run or the driver: a tracker that is down costs its logs,
    not the benchmark."""

    name = "logger"

    def __init__(self, params: Any, *, results: Path):
        self.params = params
        self.results = Path(results)
        self.errors = 0

    def start(self, suite, runs: list) -> None:
        pass

    def log_run(self, suite, record: dict) -> None:
        pass

    def end(self, suite, records: list[dict]) -> None:
        pass

    def _guard(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a logger must never fail the benchmark
            self.errors += 1
            if self.errors == 1:
                print(f"ftbench: the {self.name} logger failed in {what} ({type(exc).__name__}: {exc}); "
                      "the runs go on without it", file=sys.stderr)

    @ftbench.hookimpl
    def ftbench_suite_start(self, suite, runs) -> None:
        self._guard("suite start", self.start, suite, runs)

    @ftbench.hookimpl
    def ftbench_run_collected(self, suite, record) -> None:
        self._guard(f"run {record.get('id')}", self.log_run, suite, record)

    @ftbench.hookimpl
    def ftbench_suite_end(self, suite, records) -> None:
        self._guard("suite end", self.end, suite, records)
        if self.errors > 1:
            print(f"ftbench: the {self.name} logger failed {self.errors} times in all", file=sys.stderr)


def require(module: str, package: str):
    """Import a tracker library, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"needs {package}: pip install 'ftbench[loggers]' (or pip install {package})") from exc


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to one level with dotted keys: {"a": {"b": 1}} -> {"a.b": 1}.
    Lists stay whole values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def final_metrics(record: dict) -> dict[str, float]:
    """The record's final numbers (test, val, shifted, source, variants, time to
    target, timing, budget used, trainable parameters) as flat name -> float."""
    metrics = {k: v for k, v in (record.get("metrics") or {}).items() if k != "curve"}
    tree = {**metrics, "timing": record.get("timing") or {},
            "budget_used": (record.get("budget") or {}).get("used") or {},
            "params": record.get("params") or {}}
    return {k: float(v) for k, v in flatten(tree).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def curve_points(record: dict) -> list[tuple[int, dict[str, float]]]:
    """(samples seen, {name: value}) for each learning-curve point."""
    out = []
    for point in (record.get("metrics") or {}).get("curve") or []:
        values = {k: float(point[k]) for k in CURVE_KEYS
                  if isinstance(point.get(k), (int, float)) and math.isfinite(point[k])}
        out.append((int(point.get("samples") or 0), values))
    return out


def tags(record: dict) -> dict[str, str]:
    """Cell labels, seed, status and id: what a tracker filters runs by."""
    cell = record.get("cell") or {}
    return {**{k: str(v) for k, v in cell.items()}, "seed": str(record.get("seed")),
            "status": str(record.get("status")), "ftbench_id": str(record.get("id")),
            "suite": str(record.get("suite"))}


def run_name(record: dict) -> str:
    cell = record.get("cell") or {}
    return f"{cell.get('strategy')} {cell.get('data')} s{record.get('seed')} {record.get('id')}"


def safe_name(name: str) -> str:
    """A metric name every tracker accepts (MLflow: letters, digits, _ - . / space)."""
    return re.sub(r"[^\w.\-/ ]", "_", name)
