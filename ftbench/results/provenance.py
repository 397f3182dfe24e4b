"""Which code made a record: digests of the core and of each plugin a run used.

A run's id hashes its config, not the code that ran it, so after a strategy is
edited its finished records would still count as done. Each record therefore
carries `env.code`: {module: digest} for the core and for the top-level package
of every component the run used (for a component registered with
`lazy("pkg.mod:attr")`, the package `pkg` its target lives in), and
`env.code_scheme`, the version of how those digests are made. A record is
*stale* when one of those digests differs from the code installed now, when it
was digested under another scheme, or when its digest could not be made
(`env.code_error` says why). `ftbench status`, `run`, `report` and `compare`
say so (`ftbench.results.freshness`); `ftbench run --rerun-stale` reruns them.

A digest is the sha256 of a package's files (their paths and bytes), so an edit
anywhere in a plugin's package changes it:
- a package imported from a source tree (an editable install, a folder on the
  path, the built-in plugins under plugins/): its Python files;
- a package installed from a distribution: the files of that package its RECORD
  lists, read from disk, so a reinstall with changed code and the same version
  changes it too;
- the core: every module of `ftbench` a run may import (`NOT_IN_RUNS` lists the
  ones it never does: the CLI, the report, the gate, the scaffold).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from ftbench.suite.runs import RunSpec

CORE = "ftbench"
#: How `env.code` is made. A record of another scheme is stale as a whole ("digest
#: scheme changed"): its digests are not comparable module by module. 1 (no
#: `code_scheme` key): the core's listed modules, `lazy` components as
#: ftbench.components, installed plugins by version. 2: this module's rules over
#: the flat package. 3: the same rules over the package layout (suite/, engine/,
#: driver/, results/, ...): every core digest moved with its files.
CODE_SCHEME = 3
#: Top-level modules and subpackages of ftbench that a run never imports: editing
#: them cannot change a result, so they stay out of the core digest (a test checks
#: that every module a real run imports is covered). ftbench.testing, whose toy
#: components tests run, is digested on its own when a run uses one of them.
NOT_IN_RUNS = frozenset({"__main__", "calibrate", "cli", "cli_errors", "cli_gate", "cli_report", "cli_reproduce",
                         "compare", "gate", "plots", "render", "report", "reproduce", "scaffold", "stats",
                         "templates", "testing"})
MISSING = "missing"
_CORE_ROOT = Path(__file__).parent.parent  # the ftbench package folder
NO_DIGEST = "no code digests (recorded by an older ftbench)"
SCHEME_CHANGED = "digest scheme changed (an older ftbench's record)"


def _files_digest(files: Iterable[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def core_files() -> list[Path]:
    """The source files of the core digest: every module of the ftbench package
    but those in `NOT_IN_RUNS`."""
    root = _CORE_ROOT
    return [p for p in root.rglob("*.py") if p.relative_to(root).parts[0].removesuffix(".py") not in NOT_IN_RUNS]


@functools.lru_cache(maxsize=1)
def _distributions_by_package() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _installed_files(name: str, origin: Path) -> tuple[str, list[Path], Path] | None:
    """(distribution==version, the files of package `name` its RECORD lists, the
    folder they are relative to) when `name` was imported from those installed
    files; None for a package imported from a source tree (an editable install)."""
    for dist_name in _distributions_by_package().get(name, []):
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
        listed = [f for f in dist.files or () if f.parts and (f.parts[0] == name or f.as_posix() == f"{name}.py")
                  and "__pycache__" not in f.parts and f.suffix != ".pyc"]
        located = {Path(dist.locate_file(f)).resolve(): f for f in listed}
        if origin.resolve() in located:
            root = Path(dist.locate_file(""))
            return (f"{dist.metadata['Name']}=={dist.version}",
                    [Path(dist.locate_file(f)) for f in listed if Path(dist.locate_file(f)).is_file()], root)
    return None


@functools.lru_cache(maxsize=None)
def module_digest(name: str) -> str:
    """The digest of top-level module or package `name` (or of ftbench.testing) as
    installed now: 'sha256:<16 hex>' of its source, 'dist:<name>==<version>
    sha256:<16 hex>' of a distribution's installed files, 'missing' when it
    cannot be found."""
    if name == CORE:
        return "sha256:" + _files_digest(core_files(), _CORE_ROOT)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin is None and spec.submodule_search_locations:
        # a namespace package (a folder without __init__.py, like a checkout's benchmarks/): its files
        roots = sorted({Path(p).resolve() for p in spec.submodule_search_locations})  # sys.path may name one twice
        parts = [_files_digest(root.rglob("*.py"), root) for root in roots]
        return "sha256:" + (parts[0] if len(parts) == 1 else hashlib.sha256(" ".join(parts).encode()).hexdigest()[:16])
    if spec is None or spec.origin in (None, "built-in", "frozen") or not Path(spec.origin).is_file():
        return MISSING
    origin = Path(spec.origin)
    package = bool(spec.submodule_search_locations)
    installed = _installed_files(name, origin) if "." not in name else None
    if installed is not None:
        dist, files, root = installed
        return f"dist:{dist} sha256:" + _files_digest(files, root)
    if package:
        return "sha256:" + _files_digest(origin.parent.rglob("*.py"), origin.parent)
    return "sha256:" + _files_digest([origin], origin.parent)


def code_unit(component) -> str:
    """The module whose digest stands for `component`'s code: the top-level package
    of its factory (of a `lazy` factory's target), or, for a component the core
    itself defines outside a run's modules (ftbench.testing's toys), that module."""
    from ftbench.components import lazy

    factory = component.factory
    while isinstance(factory, functools.partial):
        factory = factory.func
    if isinstance(factory, lazy):
        module = factory.target.partition(":")[0]
    else:
        module = getattr(factory, "__module__", None) or getattr(type(factory), "__module__", "") or MISSING
    top = module.split(".")[0]
    if top == CORE and module != CORE and module.split(".")[1] in NOT_IN_RUNS:
        return ".".join(module.split(".")[:2])
    return top


def run_code(spec: "RunSpec", registry, used: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """{module: digest} of the core and of every plugin package `spec` uses, plus
    the components in `used` ((kind, name) pairs a run looked up on its way: a
    backbone's source dataset)."""
    refs = {("backbone", spec.backbone.name), ("dataset", spec.dataset.name), ("strategy", spec.strategy.name),
            *(("dataset", ref.name) for ref in spec.dataset.shifts.datasets), *used}
    modules = {code_unit(registry.get(kind, name)) for kind, name in refs}
    return {CORE: module_digest(CORE), **{m: module_digest(m) for m in sorted(modules - {CORE})}}


def code_env(spec: "RunSpec", registry, used: Iterable[tuple[str, str]] = ()) -> dict:
    """The `env` keys of a record about its code: `code`, `code_scheme`, and
    `code_error` when the digests could not be made (never an empty `code` that
    says nothing)."""
    if registry is None:
        return {"code": {}, "code_scheme": CODE_SCHEME, "code_error": "the run did not execute"}
    try:
        return {"code": run_code(spec, registry, used), "code_scheme": CODE_SCHEME}
    except Exception as exc:  # noqa: BLE001 - the record must be written whatever happened; it says why
        return {"code": {}, "code_scheme": CODE_SCHEME,
                "code_error": f"digest failed: {type(exc).__name__}: {exc}"}


def stale_reason(record: dict, threads: int | None = None) -> str | None:
    """Why `record` came from other code (or, given the suite's `threads`, another
    thread count) than the one installed now; None when it is current."""
    env = record.get("env") or {}
    code = env.get("code")
    if not code:
        return f"no code digests ({env['code_error']})" if env.get("code_error") else NO_DIGEST
    if env.get("code_scheme") != CODE_SCHEME:
        return SCHEME_CHANGED
    missing = [m for m in sorted(code) if module_digest(m) == MISSING]
    changed = [m for m in sorted(code) if m not in missing and module_digest(m) != code[m]]
    reasons = []
    if changed:
        reasons.append(f"code changed: {', '.join(changed)}")
    if missing:
        reasons.append(f"not installed now: {', '.join(missing)}")
    if threads is not None and env.get("threads") is not None and env["threads"] != threads:
        reasons.append(f"threads changed: {env['threads']} -> {threads}")
    return "; ".join(reasons) or None


def stale_records(records: list[dict], threads: dict[str, int] | None = None) -> dict[str, str]:
    """Record id -> why it is stale, over the finished (ok, diverged) records;
    `threads` maps a run id to the thread count its suite asks for now."""
    out = {}
    threads = threads or {}
    for rec in records:
        if rec.get("status") in ("ok", "diverged") and (reason := stale_reason(rec, threads.get(rec["id"]))):
            out[rec["id"]] = reason
    return out


def stale_why(stale: dict[str, str]) -> str:
    """The reasons of `stale` (id -> why) with their counts: "2 code changed: x; 1 ..."."""
    reasons: dict[str, int] = {}
    for reason in stale.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    return "; ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))


def summarise_stale(stale: dict[str, str], total: int, what: str = "finished runs") -> str:
    """One line: how many of `total` runs are stale, and why."""
    return f"{len(stale)} of {total} {what} are stale ({stale_why(stale)})"


def report_notes(records: list[dict]) -> list[str]:
    """Warnings a report's summary carries: results that depend on the machine's
    speed (a `seconds` budget), searched strategies tuned with unequal budgets,
    source tasks near chance."""
    notes = []
    timed = [r for r in records if r.get("hardware_dependent")]
    if timed:
        notes.append(f"{len(timed)} records are hardware-dependent (a `seconds` budget stopped or could stop "
                     "them, in the run or its pretraining): their numbers change with the machine's speed and load")
    if unequal := _unequal_tuning(records):
        notes.append(f"unequal tuning budgets (`allow_unequal_budget`): {unequal}; the strategies tuned longer "
                     "are favoured")
    near = sorted({f"{r['config']['backbone']['params'].get('pretrained', '?')} "
                   f"({r['metrics']['source']['before']['acc']:.1f}% on {r['metrics']['source']['classes']} classes)"
                   for r in records if _near_chance(r)})
    if near:
        notes.append("source task near chance (its pretraining learned little; forgetting and transfer "
                     "numbers mean little): " + ", ".join(near))
    return notes


def _unequal_tuning(records: list[dict]) -> str | None:
    """The searched strategies' trials x tuning seeds when they differ, else None."""
    from ftbench.suite.tuning import trial_runs, unequal_budgets

    budgets: dict[str, tuple[int, int, int]] = {}
    for rec in records:
        selection = rec.get("selection") or {}
        if isinstance(selection.get("trials"), int) and rec.get("status") == "ok":
            budgets[rec["cell"]["strategy"]] = (selection["trials"], len(selection.get("tuning_seeds") or [0]),
                                                selection.get("folds") or 1)
    return unequal_budgets(budgets) if len({trial_runs(b) for b in budgets.values()}) > 1 else None


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
