"""Which records of a results folder are current runs of its suite.

One answer for every command (`ftbench status`, `run`, `report`, `compare`,
`prune`), so they agree on what is stale:

- a record is *planned* when its id is a run of the suite saved beside it
  (`suite.resolved.yaml`, expanded with the plugins loaded now; a searched
  cell's runs at their selected values);
- a planned finished record is *stale* when it came from other code or another
  thread count than the suite asks for now (`ftbench.results.provenance.stale_reason`);
- a record whose id the suite no longer produces (a default or a param changed,
  an entry was removed) is *orphaned*: `ftbench run` will never run it again, so
  it is counted apart and `ftbench prune` moves it to `archive/`.

Search trials (`trials/`) are classified the same way, against the trials the
search asks for; their orphans are known only once every searched cell has all
its trials recorded (before that, which trials a learning sampler asks depends
on the missing ones).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ftbench.errors import FtbenchError
from ftbench.results.provenance import stale_records, summarise_stale

ARCHIVE = "archive"


@dataclass
class Freshness:
    """The records of one results folder, classified (`check_folder`)."""

    folder: Path
    records: dict[str, dict]  # id -> record, every record in the folder
    planned: list | None  # the suite's RunSpecs, None when the suite could not be expanded
    unknown: str | None = None  # why `planned` is None (no saved suite, a plugin not loaded)
    stale: dict[str, str] = field(default_factory=dict)  # id -> reason, finished planned records
    orphaned: list[str] = field(default_factory=list)  # record ids the suite does not plan
    trials: dict[str, dict] = field(default_factory=dict)  # id -> record of trials/
    trials_stale: dict[str, str] = field(default_factory=dict)
    trials_orphaned: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """The runs counted: the planned ones, else every record."""
        return [s.id for s in self.planned] if self.planned is not None else sorted(self.records)

    def lines(self, suite_hint: str = "SUITE") -> list[str]:
        """What is not current and what to do about it, a line each (empty when
        every finished record is current)."""
        out = []
        if self.stale:
            out.append(f"{summarise_stale(self.stale, len(self.ids))}; `ftbench run {suite_hint} --results "
                       f"{self.folder} --rerun-stale` reruns them")
        if self.orphaned:
            out.append(f"{len(self.orphaned)} orphaned records: their ids are no longer runs of the suite (a "
                       f"default, a param or an entry changed); `ftbench prune {self.folder}` moves them to "
                       f"{self.folder / ARCHIVE}/")
        if self.trials_stale:
            out.append(f"{summarise_stale(self.trials_stale, len(self.trials), 'search trials')}; --rerun-stale "
                       "reruns them too (which may change a selection)")
        if self.trials_orphaned:
            out.append(f"search trials: {len(self.trials_orphaned)} orphaned (the search no longer asks for them); "
                       f"`ftbench prune {self.folder}` archives them")
        return out


def _not_installed_message(error: Exception, records: dict[str, dict]) -> str:
    """`error` (a component the suite names is not installed), plus the plugin
    the records say made its runs."""
    providers = sorted({provider for rec in records.values()
                        for key, provider in ((rec.get("env") or {}).get("plugins") or {}).items()
                        if isinstance(provider, str) and f"'{key.partition(':')[2]}'" in str(error)})
    made_by = f"; its records came from {', '.join(providers)}" if providers else ""
    return (f"the suite's components are not all loaded ({str(error).split(';')[0]}{made_by}): install that "
            "plugin or pass `ftbench --plugin MODULE ...`; without it the suite's runs are unknown, so every "
            "record is counted and none can be called orphaned")


def check_folder(folder: str | Path, registry: Callable[[], object] | object | None = None,
                 records: list[dict] | None = None, quiet: bool = True) -> Freshness:
    """Classify the records of `folder` (`records`, when already loaded) against
    its saved suite, expanded with `registry` (a Registry, or a callable returning
    one, called only when the folder has a saved suite). Never raises for a suite
    that cannot be expanded: `unknown` says why, and every record is then counted."""
    import yaml

    from ftbench.results.store import RESOLVED_SUITE, ResultsStore
    from ftbench.results.records import load_records

    folder = Path(folder)
    records = {r["id"]: r for r in (load_records(folder, quiet=quiet) if records is None else records)}
    trials_dir = folder / "trials"
    trials = {r["id"]: r for r in load_records(trials_dir, quiet=True)} if trials_dir.is_dir() else {}
    out = Freshness(folder, records, None, trials=trials)
    suite_file = folder / RESOLVED_SUITE
    asked: set[str] | None = None
    if not suite_file.exists():
        out.unknown = f"no {RESOLVED_SUITE} in {folder}"
    else:
        from pydantic import ValidationError

        from ftbench.errors import UnknownComponentError
        from ftbench.search import TRIALS_FOLDER, plan_search
        from ftbench.suite.tuning import searches
        from ftbench.suite.schema import Suite
        from ftbench.suite.expand import expand

        reg = registry() if callable(registry) else registry  # a --plugin that cannot load is an error
        try:
            suite = Suite.model_validate(yaml.safe_load(suite_file.read_text()))
            specs = expand(suite, reg)
            if searches(suite):  # searched cells' runs at their selected values
                asked = set()
                specs, plans = plan_search(suite, specs, reg, ResultsStore(folder / TRIALS_FOLDER), asked_ids=asked)
                if not all(p.selected for p in plans.values()):
                    asked = None  # a learning sampler's later trials depend on the missing ones
            out.planned = specs
        except UnknownComponentError as exc:
            out.unknown = _not_installed_message(exc, records)
        except (FtbenchError, ValidationError, yaml.YAMLError, OSError) as exc:
            out.unknown = f"its {RESOLVED_SUITE} cannot be expanded ({str(exc).splitlines()[0]})"
    threads = {s.id: s.threads for s in out.planned} if out.planned is not None else {}
    planned = [records[i] for i in out.ids if i in records]
    out.stale = stale_records(planned, threads)
    out.orphaned = sorted(set(records) - set(out.ids)) if out.planned is not None else []
    suite_threads = next(iter(threads.values()), None)
    counted_trials = [r for i, r in trials.items() if asked is None or i in asked]
    out.trials_stale = stale_records(counted_trials, {i: suite_threads for i in trials} if suite_threads else None)
    out.trials_orphaned = sorted(set(trials) - asked) if asked is not None else []
    return out


def prune(freshness: Freshness) -> Path | None:
    """Move the orphaned records (and orphaned search trials) of a classified
    folder into `archive/<UTC time>/` beside them (never deleted; `ftbench report`
    and `status` read only the folder itself). Returns that folder, or None when
    there was nothing to move."""
    if not freshness.orphaned and not freshness.trials_orphaned:
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest = freshness.folder / ARCHIVE / stamp
    for ids, source, target in ((freshness.orphaned, freshness.folder, dest),
                                (freshness.trials_orphaned, freshness.folder / "trials", dest / "trials")):
        if ids:
            target.mkdir(parents=True, exist_ok=True)
        for run_id in ids:
            path = source / f"{run_id}.json"
            if path.exists():
                shutil.move(str(path), str(target / path.name))
    return dest
