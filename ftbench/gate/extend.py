"""Running the next seeds of ambiguous cells before the gate decides (`more_seeds:`
in the gate config, `ftbench compare --max-seeds`; the rule is `gate.more_seeds`).

The seeds are run in the CURRENT results folder with its own saved suite, widened
to plan them, so `ftbench status` and later gates count them as its runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import yaml

from ftbench.errors import UserInputError
from ftbench.gate.baseline import cell_labels, load_side
from ftbench.gate.compare import Comparison, compare
from ftbench.gate.more_seeds import MoreSeeds
from ftbench.gate.tolerances import Tolerances


def with_max_seeds(tolerances: Tolerances, max_seeds: int) -> Tolerances:
    """The tolerances with `more_seeds.max` = max_seeds (defaults for the rest)."""
    m = tolerances.more_seeds or MoreSeeds()
    return replace(tolerances, more_seeds=MoreSeeds.parse({"min": min(m.min, max_seeds), "max": max_seeds,
                                                           "step": m.step}))


def add_seeds(base: dict, folder: Path, tolerances: Tolerances, comparison: Comparison, registry,
              log: Callable[[str], None] = lambda line: None) -> Comparison:
    """Run the next look's seeds of every ambiguous cell in `folder` (seeds the
    baseline holds, in its order) and judge again, until none is ambiguous, the cells
    are at max, or a round adds no matched seed (its runs failed); returns the last
    comparison."""
    base_cells = {cell_labels(c["cell"]): c for c in base["cells"]}
    looks = tolerances.more_seeds.looks
    current = load_side(folder)
    while True:
        have = {cell_labels(c["cell"]): set(c["seeds"]) for c in current["cells"]}
        want: dict[tuple[str, ...], list[int]] = {}
        for row in comparison.rows:
            j, key = row.seeded, cell_labels(row.cell)
            if j is None or j.verdict != "ambiguous" or j.last:
                continue
            goal = next((n for n in looks if n > j.n), looks[-1])
            extra = [s for s in base_cells[key]["seeds"] if s not in have.get(key, set())][:goal - j.n]
            if extra:
                want[key] = extra
            else:
                row.notes.append("the baseline holds no more seeds to add: save it from a run with more seeds")
        if not want:
            return comparison
        log(f"more seeds: {len(want)} ambiguous cell(s), {sum(map(len, want.values()))} run(s) in {folder}")
        matched_before = {cell_labels(r.cell): r.seeded.n for r in comparison.rows if r.seeded is not None}
        run_seeds(folder, want, registry)
        current = load_side(folder)
        comparison = compare(base, current, tolerances)
        if not any(r.seeded is not None and r.seeded.n > matched_before.get(cell_labels(r.cell), 0)
                   for r in comparison.rows if cell_labels(r.cell) in want):
            return comparison


def run_seeds(folder: Path, want: dict[tuple[str, ...], list[int]], registry) -> None:
    """Run these seeds of these cells (backbone, dataset, strategy, data labels) with
    the folder's own suite, which then plans them (its seeds gain them, excluded but
    for these cells), so `ftbench status` and later gates see them as its runs."""
    from ftbench.driver.suite_run import run_suite
    from ftbench.results.store import RESOLVED_SUITE
    from ftbench.suite.schema import MatrixRule, Suite

    path = folder / RESOLVED_SUITE
    if not path.exists():
        raise UserInputError(f"{folder} has no {RESOLVED_SUITE}, so its runs cannot be extended; run the suite "
                             "with `ftbench run` into it, or compare without --max-seeds")
    suite = Suite.model_validate(yaml.safe_load(path.read_text()))
    if suite.adaptive is not None:
        raise UserInputError(f"{folder}'s suite has adaptive seeds; the gate adds seeds only to a suite with a "
                             "list of seeds")
    new = sorted({s for seeds in want.values() for s in seeds} - set(suite.seeds))
    include = [MatrixRule(backbone=b, dataset=d, strategy=st, data=da, seed=s)
               for (b, d, st, da), seeds in sorted(want.items()) for s in seeds]
    wider = suite.model_copy(update={"seeds": [*suite.seeds, *new],
                                     "exclude": [*suite.exclude, *(MatrixRule(seed=s) for s in new)],
                                     "include": [*suite.include, *include]})
    run_suite(wider, registry, folder, quiet=True)
