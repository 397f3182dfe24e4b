"""Fail fast: stop scheduling runs that will fail the way earlier ones did.

When two runs fail with the same error class and share a component (two runs of one
backbone whose weights cannot be loaded, two runs of one dataset whose files are
missing), the runs still to come that use that component are not run: they are
recorded `skipped`, with the first failure's message as the reason, and `ftbench run`
exits 1 as for any failure. The next `ftbench run` tries them again.

Blame: the core's domain errors name their origin (a `BackboneError` comes from the
backbone, a `DataError` from the dataset); for any other error the components the two
runs share are blamed, less those that have finished a run ok elsewhere (unless that
leaves none: then the shared combination itself, e.g. one cell, is blamed).

The decisions reach every executor's workers through a small file in the results
folder, which `run_payload` reads before it claims a run.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftbench.results.store import write_json_atomic

RULES_FILE = ".fail-fast.json"
AXES = ("backbone", "dataset", "strategy")
_BLAME = {"BackboneError": ("backbone",), "DataError": ("dataset",)}


def one_line(message: str, limit: int = 400) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _describe(rule: dict[str, str]) -> str:
    return " and ".join(f"{axis} '{label}'" for axis, label in rule.items())


class FailFast:
    """The driver's side: watches finished records and writes the skip rules."""

    def __init__(self, results_dir: Path):
        self.path = Path(results_dir) / RULES_FILE
        self.path.unlink(missing_ok=True)  # every `ftbench run` decides afresh
        self.failures: list[tuple[str, dict, str]] = []  # (error type, cell, message)
        self.ok: set[tuple[str, str]] = set()
        self.rules: list[dict] = []

    def observe(self, record: dict) -> str | None:
        """Take a finished record; returns a line to print when it starts a new rule."""
        cell = record.get("cell") or {}
        if record.get("status") == "ok":
            self.ok.update((axis, cell.get(axis)) for axis in AXES)
            return None
        if record.get("status") != "failed":
            return None  # diverged runs are results; skipped ones were decided here
        error = record.get("error") or {}
        kind, message = error.get("type", "?"), error.get("message", "")
        for prev_kind, prev_cell, prev_message in self.failures:
            if prev_kind != kind:
                continue
            rule = self._rule(kind, prev_cell, cell)
            if rule and not any(r["match"] == rule for r in self.rules):
                reason = f"{kind}: {one_line(prev_message)}"
                self.rules.append({"match": rule, "reason": reason})
                write_json_atomic(self.path, self.rules)
                return (f"fail fast: 2 runs with {_describe(rule)} failed with {kind}; the runs still to come "
                        "with it are skipped (recorded `skipped`; the next `ftbench run` retries them)")
        self.failures.append((kind, cell, message))
        return None

    def _rule(self, kind: str, a: dict, b: dict) -> dict[str, str] | None:
        shared = [axis for axis in AXES if a.get(axis) is not None and a.get(axis) == b.get(axis)]
        if kind in _BLAME:
            blamed = [axis for axis in _BLAME[kind] if axis in shared]
        else:
            blamed = [axis for axis in shared if (axis, a[axis]) not in self.ok] or shared
        return {axis: a[axis] for axis in blamed} or None


def skip_reason(results_dir: str | Path, cell: dict) -> str | None:
    """The worker's side: why a run with this cell must be skipped, or None."""
    try:
        rules = json.loads((Path(results_dir) / RULES_FILE).read_text())
    except (OSError, ValueError):
        return None
    for rule in rules:
        if all(cell.get(axis) == label for axis, label in rule["match"].items()):
            return (f"skipped (fail fast): earlier runs with {_describe(rule['match'])} failed with "
                    f"{rule['reason']}")
    return None
