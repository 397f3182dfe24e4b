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

from ftbench.results.provenance import stale_records, summarise_stale

ARCHIVE = "archive"


@dataclass
class Freshness:
    """The records of one results folder, classified (`ftbench.driver.plan.check_folder`)."""

    folder: Path
    records: dict[str, dict]  # id -> record, every record in the folder
    planned: list | None  # the suite's RunSpecs, None when the suite could not be expanded
    unknown: str | None = None  # why `planned` is None (no saved suite, a plugin not loaded)
    stale: dict[str, str] = field(default_factory=dict)  # id -> reason, finished planned records
    orphaned: list[str] = field(default_factory=list)  # record ids the suite does not plan
    trials: dict[str, dict] = field(default_factory=dict)  # id -> record of trials/
    trials_stale: dict[str, str] = field(default_factory=dict)
    trials_orphaned: list[str] = field(default_factory=list)
    runner_up: object | None = None  # `driver.search.RunnerUpPlan` under `search.final_top: 2`, else None

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


def classify(folder: Path, records: dict[str, dict], trials: dict[str, dict], planned: list | None,
             unknown: str | None = None, asked: set[str] | None = None) -> Freshness:
    """Classify `records` (id -> record) and search `trials` of `folder` against the
    runs its suite plans (`planned`, RunSpecs; None when the suite could not be
    expanded, `unknown` saying why) and the trial ids its search asks for (`asked`;
    None while that is not known). `ftbench.driver.plan.check_folder` plans them."""
    out = Freshness(folder, records, planned, unknown=unknown, trials=trials)
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
