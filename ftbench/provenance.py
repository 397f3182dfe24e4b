"""Which code made a record: digests of the core and of each plugin a run used.

A run's id hashes its config, not the code that ran it, so after a strategy is
edited its finished records would still count as done. Each record therefore
carries `env.code`: {module: digest} for the core and for the top-level package
of every component the run used. A record is *stale* when one of those digests
differs from the code installed now (`ftbench status`, `ftbench report`), and
`ftbench run --rerun-stale` reruns just those runs.

A digest is the sha256 of a package's Python source files (their paths and
bytes), so an edit anywhere in a plugin's package changes it; for a package
installed from a distribution into site-packages it is that distribution's
version instead (hashing a third party's whole install says nothing more).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ftbench.suite import RunSpec

CORE = "ftbench"
# The core modules a run's numbers depend on; the CLI, the report and the store do
# not change a result, so editing them does not make records stale.
CORE_MODULES = ("checkpoints", "components", "config", "corruptions", "data", "evaluate", "pretrain",
                "runner", "suite", "training")
NO_DIGEST = "no code digests (recorded by an older ftbench)"


def _source_digest(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def module_digest(name: str) -> str:
    """The digest of top-level module or package `name` as installed now:
    'sha256:<16 hex>' of its source, 'dist:<distribution>==<version>' for one
    installed from a distribution, 'missing' when it cannot be found."""
    if name == CORE:
        root = Path(__file__).parent
        return "sha256:" + _source_digest([root / f"{m}.py" for m in CORE_MODULES], root)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return "missing"
    origin = Path(spec.origin)
    if {"site-packages", "dist-packages"} & set(origin.parts):
        dists = importlib.metadata.packages_distributions().get(name)
        if dists:
            return f"dist:{dists[0]}=={importlib.metadata.version(dists[0])}"
    if spec.submodule_search_locations:
        root = origin.parent
        return "sha256:" + _source_digest(list(root.rglob("*.py")), root)
    return "sha256:" + _source_digest([origin], origin.parent)


def _code_unit(component) -> str:
    """The module whose digest stands for `component`'s code: its plugin's top-level
    package, or, for a component the core itself defines (ftbench.testing's toys),
    that module."""
    module = getattr(component.factory, "__module__", "") or "missing"
    top = module.split(".")[0]
    return module if top == CORE and module != CORE else top


def run_code(spec: "RunSpec", registry) -> dict[str, str]:
    """{module: digest} of the core and of every plugin package `spec` uses."""
    refs = [("backbone", spec.backbone), ("dataset", spec.dataset), ("strategy", spec.strategy),
            *(("dataset", ref) for ref in spec.dataset.shifts.datasets)]
    modules = {_code_unit(registry.get(kind, ref.name)) for kind, ref in refs}
    return {CORE: module_digest(CORE), **{m: module_digest(m) for m in sorted(modules)}}


def stale_reason(record: dict) -> str | None:
    """Why `record` came from other code than the one installed now, or None when
    its code is current: the modules whose digest changed."""
    code = (record.get("env") or {}).get("code")
    if not code:
        return NO_DIGEST
    changed = [m for m, digest in sorted(code.items()) if module_digest(m) != digest]
    return f"code changed: {', '.join(changed)}" if changed else None


def stale_records(records: list[dict]) -> dict[str, str]:
    """Record id -> why it is stale, over the finished (ok, diverged) records."""
    out = {}
    for rec in records:
        if rec.get("status") in ("ok", "diverged") and (reason := stale_reason(rec)):
            out[rec["id"]] = reason
    return out


def summarise_stale(stale: dict[str, str], total: int) -> str:
    """One line: how many of `total` records are stale, and why."""
    reasons: dict[str, int] = {}
    for reason in stale.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    why = "; ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    return f"{len(stale)} of {total} records came from older code ({why})"


def stale_warning(records: list[dict]) -> str | None:
    """The line `ftbench report` logs when some of `records` came from older code
    (a log line, not a table note: a report's tables depend on its records alone)."""
    stale = stale_records(records)
    if not stale:
        return None
    return summarise_stale(stale, len(records)) + "; `ftbench run SUITE --rerun-stale` reruns them"


def report_notes(records: list[dict]) -> list[str]:
    """Warnings a report's summary carries: results that depend on the machine's
    speed (a `seconds` budget), source tasks near chance."""
    notes = []
    timed = [r for r in records if r.get("hardware_dependent")]
    if timed:
        notes.append(f"{len(timed)} records are hardware-dependent (a `seconds` budget stopped or could stop "
                     "them, in the run or its pretraining): their numbers change with the machine's speed and load")
    near = sorted({f"{r['config']['backbone']['params'].get('pretrained', '?')} "
                   f"({r['metrics']['source']['before']['acc']:.1f}% on {r['metrics']['source']['classes']} classes)"
                   for r in records if _near_chance(r)})
    if near:
        notes.append("source task near chance (its pretraining learned little; forgetting and transfer "
                     "numbers mean little): " + ", ".join(near))
    return notes


def _near_chance(record: dict) -> bool:
    """Source accuracy below twice chance (at most halfway to 100%): the default
    threshold of a pretraining (`min_source_acc`)."""
    try:
        acc = record["metrics"]["source"]["before"]["acc"]
        classes = record["metrics"]["source"]["classes"]
    except (KeyError, TypeError):
        return False
    if acc is None or not classes:
        return False
    chance = 100 / classes
    return acc < min(2 * chance, (chance + 100) / 2)
