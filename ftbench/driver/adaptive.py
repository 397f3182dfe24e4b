"""Adaptive seeds (`seeds: {min, max, step, until: decided}`): which runs a study
needs, replayed from look 0 from the records it has.

Every cell runs the first `min` seeds. At each look (`stats.sequential.look_schedule`:
min, min + step, ..., max seeds) the comparisons of each family are tested with the
group-sequential Holm procedure (`stats.sequential.decide`: a difference, or
equivalence within the margin, each at its alpha-spending boundary). Only the cells of
comparisons still undecided get the next look's seeds. A family is the suite's
`primary:` comparisons when it declares them, else, per task, every strategy against
`seeds.baseline`; a cell in no comparison runs `min` seeds.

The path is a function of the records alone: `replay` starts at look 0 every time and
walks forward while each look's runs have records, so a resumed, rerun or differently
parallel study (-j, any executor) takes the same path. Seeds are always the first n
of start, start + 1, ..., in order. A failed run counts as run (it gives no pair).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from ftbench.stats.sequential import SequentialLook, decide, look_schedule
from ftbench.suite.runs import RunSpec
from ftbench.suite.schema import AdaptiveSeeds, Suite, entry_labels

PLAN_FILE = "plan.json"  # in the results folder: the looks and verdicts, for the report
PLAN_FORMAT = "ftbench.adaptive/1"

CellKey = tuple[str, str, str, str]  # backbone, dataset, strategy, data labels
Task = tuple[str, str, str]  # backbone, dataset, data labels


@dataclass(frozen=True)
class Comparison:
    task: Task
    strategy: str
    vs: str

    def cells(self) -> tuple[CellKey, CellKey]:
        b, d, data = self.task
        return (b, d, self.strategy, data), (b, d, self.vs, data)


@dataclass
class AdaptivePlan:
    """Where a study stands: `needed` (cell -> seeds it runs so far), the runs of
    the current look that have no record yet (`pending`), and each look's verdicts."""

    settings: AdaptiveSeeds
    looks: tuple[int, ...]
    families: list[list[Comparison]]
    needed: dict[CellKey, int]
    specs: dict[CellKey, list[RunSpec]]  # seed order
    history: list[list[SequentialLook]] = field(default_factory=list)  # per look, per family
    pending: list[RunSpec] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not self.pending

    def planned(self) -> list[RunSpec]:
        """Every run the plan asks for so far (the current look's included)."""
        return [s for key, runs in self.specs.items() for s in runs[:self.needed[key]]]

    def max_runs(self) -> int:
        return sum(len(runs) for runs in self.specs.values())

    def to_json(self) -> dict:
        """The plan as plan.json holds it (`PLAN_FILE`), for the report."""
        s = self.settings
        looks = []
        for k, family_looks in enumerate(self.history):
            rows = [_comparison_json(c, state) for fam, look in zip(self.families, family_looks)
                    for c, state in zip(fam, look.comparisons)]
            looks.append({"look": k, "seeds": self.looks[k], "comparisons": rows})
        final = looks[-1]["comparisons"] if looks else []
        ended = []
        for row in final:
            decided_at = next((look["seeds"] for look in looks for r in look["comparisons"]
                               if r["verdict"] != "undecided" and _same(r, row)), None)
            futile_at = next((look["seeds"] for look in looks for r in look["comparisons"]
                              if r.get("futile") and _same(r, row)), None)
            ended.append({**row, "decided_at": decided_at, **({"futile_at": futile_at} if futile_at else {})})
        cells = [{"backbone": k[0], "dataset": k[1], "strategy": k[2], "data": k[3], "seeds": self.needed[k],
                  "max": len(self.specs[k])} for k in sorted(self.specs)]
        planned = len(self.planned())
        return {"format": PLAN_FORMAT, "complete": self.done,
                "settings": {"min": s.min, "max": s.max, "step": s.step, "start": s.start, "alpha": s.alpha,
                             "margin": s.margin, "spending": s.spending, "baseline": s.baseline,
                             "futility": s.futility},
                "looks": list(self.looks), "history": looks, "comparisons": ended, "cells": cells,
                "runs": {"planned": planned, "max": self.max_runs(), "saved": self.max_runs() - planned,
                         "pending": len(self.pending)}}


def _comparison_json(c: Comparison, state) -> dict:
    b, d, data = c.task
    return {"backbone": b, "dataset": d, "data": data, "strategy": c.strategy, "vs": c.vs, "verdict": state.verdict,
            "n": state.n, "mean": state.mean, "p_diff": state.p_diff, "level_diff": state.level_diff,
            "p_equiv": state.p_equiv, "level_equiv": state.level_equiv, "holm_share": state.share,
            **({"power": state.power, "futile": state.futile} if state.power is not None else {})}


def _same(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in ("backbone", "dataset", "data", "strategy", "vs"))


def families(suite: Suite, cells: set[CellKey]) -> list[list[Comparison]]:
    """The families the plan tests: the primary comparisons (one family, at every
    task where both strategies ran and the entry's labels match), else per task
    every strategy against the baseline (in the suite's strategy order)."""
    tasks = sorted({(b, d, data) for b, d, _, data in cells})
    if suite.primary:
        family = []
        for p in suite.primary:
            for b, d, data in tasks:
                if any(v is not None and v != x for v, x in ((p.backbone, b), (p.dataset, d), (p.data, data))):
                    continue
                c = Comparison((b, d, data), p.strategy, p.vs)
                if all(k in cells for k in c.cells()) and c not in family:
                    family.append(c)
        return [family] if family else []
    order = {s: i for i, s in enumerate(entry_labels(suite.strategies))}
    out = []
    base = suite.adaptive.baseline if suite.adaptive else "full"
    for task in tasks:
        strategies = sorted({k[2] for k in cells if (k[0], k[1], k[3]) == task and k[2] != base},
                            key=lambda s: (order.get(s, len(order)), s))
        fam = [Comparison(task, s, base) for s in strategies
               if all(k in cells for k in Comparison(task, s, base).cells())]
        if fam:
            out.append(fam)
    return out


def _accuracy(record: dict | None) -> tuple[float, int | None] | None:
    """(test accuracy, test examples) of an ok record, else None."""
    if not record or record.get("status") != "ok":
        return None
    test = (record.get("metrics") or {}).get("test") or {}
    acc = test.get("acc")
    return (float(acc), test.get("n")) if isinstance(acc, (int, float)) else None


def _diffs(c: Comparison, plan: AdaptivePlan, n: int, read: Callable[[str], dict | None]
           ) -> tuple[list[float], float | None]:
    """The paired differences strategy - vs on the first n seeds (seed order), and
    the grid step 100 / n_test when every run has one test-set size."""
    a_runs, b_runs = ({s.seed: s for s in plan.specs[key][:n]} for key in c.cells())
    diffs, sizes = [], set()
    for seed in [s for s in plan.settings.values if s in a_runs and s in b_runs]:  # matched seeds, in order
        a, b = _accuracy(read(a_runs[seed].id)), _accuracy(read(b_runs[seed].id))
        if a is not None and b is not None:
            diffs.append(a[0] - b[0])
            sizes |= {a[1], b[1]}
    step = 100 / sizes.pop() if len(sizes) == 1 and isinstance(next(iter(sizes)), int) else None
    return diffs, step


def replay(suite: Suite, specs: list[RunSpec], read: Callable[[str], dict | None]) -> AdaptivePlan:
    """The plan from look 0 given the records `read(run_id)` returns (any status;
    None = not run): it walks forward while every run a look needs has a record."""
    settings = suite.adaptive
    if settings is None:
        raise ValueError("replay needs a suite with adaptive seeds")
    looks = look_schedule(settings.min, settings.max, settings.step)
    by_cell: dict[CellKey, dict[int, RunSpec]] = defaultdict(dict)
    for spec in specs:
        by_cell[(*spec.labels, spec.data.label)][spec.seed] = spec
    ordered = {k: [runs[s] for s in settings.values if s in runs] for k, runs in by_cell.items()}
    fams = families(suite, set(ordered))
    plan = AdaptivePlan(settings, looks, fams, {k: min(looks[0], len(v)) for k, v in ordered.items()}, ordered)
    previous: list[SequentialLook | None] = [None] * len(fams)
    for k, n in enumerate(looks):
        plan.pending = [s for s in plan.planned() if read(s.id) is None]
        if plan.pending:
            return plan
        states = []
        for i, fam in enumerate(fams):
            diffs, steps = zip(*(_diffs(c, plan, n, read) for c in fam))
            step = steps[0] if len(set(steps)) == 1 else None
            states.append(decide(list(diffs), k, looks, margin=settings.margin, alpha=settings.alpha,
                                 kind=settings.spending, step=step, previous=previous[i],
                                 futility=settings.futility))
        plan.history.append(states)
        previous = states
        if k + 1 == len(looks):
            break
        grow = {key for fam, look in zip(fams, states) for c, more in zip(fam, look.more_seeds) if more
                for key in c.cells()}
        if not grow:
            break
        for key in grow:
            plan.needed[key] = min(looks[k + 1], len(ordered[key]))
    plan.pending = []
    return plan
