"""A search's trial rounds, run through the executor: the trials it asks for, less
those already finished (unless stale and `--rerun-stale`), and the trials another
driver holds, waited for (the next trials depend on their scores) or run here once
that driver's claim goes stale. `ftbench.driver.search.run_search` calls it per round.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

from ftbench.driver.failfast import one_line
from ftbench.driver.search import cell_key
from ftbench.driver.worker import CLAIMED_ELSEWHERE, Payload, landed, run_payload
from ftbench.results.claims import claim_is_stale
from ftbench.results.provenance import stale_records
from ftbench.results.store import ResultsStore
from ftbench.suite.runs import RunSpec

HELD_POLL_S = 2.0  # how often a search looks again at trials another driver is running


class TrialRounds:
    """`run_trials` for `run_search`: called with each round's trial specs, it yields
    their records. Keeps the first error of each cell's failed trials and the stale
    trials it reused, for the driver to report."""

    def __init__(self, suite_name: str, executor, folder: Path, plugins: tuple[str, ...], *, rerun: bool,
                 rerun_stale: bool, quiet: bool, log: Callable[[str], None]):
        self.suite_name, self.executor, self.folder, self.plugins = suite_name, executor, folder, plugins
        self.rerun, self.rerun_stale, self.quiet, self.log = rerun, rerun_stale, quiet, log
        self.store = ResultsStore(folder)
        self.errors: dict[tuple, str] = {}  # cell key -> the first error of its failed trials
        self.stale_kept: dict[str, str] = {}  # stale trials reused (without --rerun-stale): id -> why
        self.lost: list[str] = []  # trials the executor called ok whose records are not in the folder
        self._said_stale = False

    def __call__(self, batch: list[RunSpec]) -> Iterator[dict]:
        finished = {} if self.rerun else {s.id: r for s in batch if (r := self.store.done_record(s.id)) is not None}
        found = stale_records(list(finished.values()), {s.id: s.threads for s in batch})
        stale = set(found) if self.rerun_stale else set()
        self.stale_kept.update({} if self.rerun_stale else found)
        if stale and not self._said_stale:
            self.log("search: stale trials (older code or another thread count) are run again (--rerun-stale)")
            self._said_stale = True
        yield from (r for i, r in finished.items() if i not in stale)
        todo = [s for s in batch if s.id not in finished or s.id in stale]
        by_id = {s.id: s for s in todo}
        held: list[RunSpec] = []
        while todo:
            for record in self._execute(todo, stale):
                if record.get("status") == CLAIMED_ELSEWHERE:
                    held.append(by_id[record["id"]])
                    continue
                self._note_error(record)
                if not landed(self.store, record):
                    self.lost.append(record["id"])
                yield record
            if held:
                self.log(f"search: waiting for {len(held)} trial(s) that another driver is running (claim file "
                         f"{self.store.claim_path(held[0].id)}); the next trials depend on them")
            todo = yield from self._wait_for(held)

    def _execute(self, todo: list[RunSpec], again: set[str]) -> Iterator[dict]:
        payloads = [Payload(s, self.folder, self.plugins, workdir=os.getcwd(), rerun=self.rerun or s.id in again,
                            driver_pid=os.getpid()) for s in todo]
        bar = tqdm(total=len(todo), desc=f"{self.suite_name} trials", unit="run", disable=self.quiet or not todo,
                   file=sys.stderr, dynamic_ncols=True)
        try:
            for record in self.executor.map(run_payload, payloads):
                bar.update(1)
                yield record
        finally:
            bar.close()

    def _wait_for(self, held: list[RunSpec]) -> Iterator[dict]:
        """Yield the records of `held` trials as another driver finishes them; return
        (as the generator's value) those whose claim went stale, to run here."""
        todo: list[RunSpec] = []
        while held and not todo:
            time.sleep(HELD_POLL_S)
            for spec in list(held):
                if (record := self.store.done_record(spec.id)) is not None:
                    held.remove(spec)
                    yield record
                elif claim_is_stale(self.store.claim_path(spec.id)):
                    held.remove(spec)  # that driver is gone: run it here
                    todo.append(spec)
        return todo

    def _note_error(self, record: dict) -> None:
        if record.get("status") != "ok" and record.get("cell"):
            error = record.get("error") or {}
            self.errors.setdefault(cell_key(record["cell"]), f"{error.get('type')}: {one_line(error.get('message'))}")

    def failed_cells(self, selections: list[dict]) -> dict[tuple, str]:
        """Cell key -> why, for each cell whose search finished no trial (its runs
        fail); says so on stderr even with --quiet, and logs each selection."""
        failed: dict[tuple, str] = {}
        for sel in selections:
            cell = sel["cell"]
            if sel.get("trial") is None:  # no trial finished: nothing was selected
                key = cell_key(cell)
                first = f"; first error: {self.errors[key]}" if key in self.errors else ""
                failed[key] = (f"the search of {cell['strategy']} on {cell['backbone']}/{cell['dataset']}/"
                               f"{cell['data']} finished none of its {sel['trials']} trials ({sel['failed']} failed, "
                               f"{sel['pruned']} pruned{first}); its runs are not run at an unsearched "
                               f"configuration: fix the trials (their records are in {self.folder}) and run again")
                print(f"search FAILED: {failed[key]}", file=sys.stderr)  # even with --quiet
                continue
            score = ("ORACLE, test", sel.get("test_acc")) if sel.get("select") == "oracle" else ("val", sel["val_acc"])
            self.log(f"selected for {cell['strategy']} {cell['data']}: {sel['selected']} "
                     f"({score[0]} {score[1] if score[1] is None else round(score[1], 2)}, {sel['trials']} trials)")
        return failed
