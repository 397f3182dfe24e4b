"""A table's multiplicity family (one Holm adjustment over every claim it makes)
and the best / not-shown-worse markers of its columns, set when the family closes."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Hashable

import numpy as np

from ftbench import stats
from ftbench.report.core import BEST, TIED, UNTESTED, Est

if TYPE_CHECKING:
    from ftbench.report.context import Context


class Family:
    """One table's multiplicity family: every hypothesis whose rejection the table
    reports (its markers' pairs, its Δ and equivalence tests, its fixed-sequence
    claims) gets one Holm adjustment, so the chance of any false claim in the
    table is at most alpha whatever the true values (strong family-wise control).
    A hypothesis added twice under one key (a Δ that is also a marker's pair) counts
    once. `close()` adjusts and then runs what waited for the adjusted p-values."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self._p: dict[Hashable, float] = {}
        self._kind: dict[Hashable, str] = {}
        self._after: list[Callable[[], None]] = []
        self.adjusted: dict[Hashable, float] = {}

    def add(self, key: Hashable, p: float, kind: str) -> Hashable:
        if key not in self._p:
            self._p[key], self._kind[key] = p, kind
        return key

    def then(self, fn: Callable[[], None]) -> None:
        self._after.append(fn)

    def close(self) -> None:
        keys = list(self._p)
        self.adjusted = dict(zip(keys, stats.holm([self._p[k] for k in keys]))) if keys else {}
        for fn in self._after:
            fn()

    def size(self) -> int:
        return sum(math.isfinite(p) for p in self._p.values())

    def note(self) -> str:
        """The table's multiplicity note: what the family holds and its error rate."""
        counts: dict[str, int] = defaultdict(int)
        for key, p in self._p.items():
            if math.isfinite(p):
                counts[self._kind[key]] += 1
        what = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no testable hypotheses"
        return (f"multiplicity (exploratory): one family per table: its {self.size()} hypotheses ({what}) are "
                f"Holm-adjusted together, so the chance of any false claim in this table is at most α = "
                f"{self.alpha:g} (strong family-wise control; simulated in tests/test_simulations.py); other tables "
                "are other families, and only the Primary comparisons table is confirmatory")


def mark_column(rows: list[list[Any]], groups: list[Any], col: int, higher: bool, ctx: Context, family: Family, *,
          labels: int = 4, log: bool = False) -> None:
    """Mark, in each group of column `col`, the best Est among the testable ones, those
    not shown worse than any other and those with fewer than 2 seeds, which no test can
    place. Every pair of a group's testable cells is a hypothesis of the table's
    `family`; the marks are set when the family closes (adjusted p < alpha).
    `log`: compare log values (times and rates: the table shows geometric means)."""
    by_group: dict[Any, list[tuple[tuple, Est]]] = defaultdict(list)
    for row, g in zip(rows, groups):
        if isinstance(row[col], Est) and math.isfinite(row[col].mean):
            by_group[g].append((tuple(row[:labels]), row[col]))
    for items in by_group.values():
        if len(items) >= 2:
            _mark_group(dict(items), col, higher, ctx, family, log)


def _mark_group(ests: dict[tuple, Est], col: int, higher: bool, ctx: Context, family: Family, log: bool) -> None:
    cells = {k: _log_values(e.by_seed) if log else e.by_seed for k, e in ests.items()}
    steps = {e.step for e in ests.values()}
    step = steps.pop() if len(steps) == 1 and not log else None
    pairs = stats.pair_tests(cells, higher=higher, test=ctx.test, step=step,
                             examples=lambda a, b, seeds: example_diffs(ests[a], ests[b], seeds))
    keys = [family.add(pair_key(col, pr.a, pr.b), pr.p, "pairs") for pr in pairs]

    def apply() -> None:
        found = stats.best_of(cells, pairs, [family.adjusted[k] for k in keys], higher=higher, alpha=ctx.alpha)
        for k, e in ests.items():
            e.mark = (UNTESTED if k in found.untestable else BEST if k == found.best else
                      "" if k in found.worse else TIED)

    family.then(apply)


def pair_key(col: Any, a: tuple, b: tuple) -> tuple:
    """The family key of the test of two rows (by their labels) in column `col`."""
    return col, frozenset((a, b))


def example_diffs(a: Est, b: Est, seeds: list[int]) -> np.ndarray | None:
    """Seeds x examples table of a's minus b's per-example correctness (points), when
    both carry bits of one test set for every matched seed; None otherwise."""
    if a.examples is None or b.examples is None or not all(s in a.examples and s in b.examples for s in seeds):
        return None
    if len({len(a.examples[s]) for s in seeds} | {len(b.examples[s]) for s in seeds}) != 1:
        return None
    return np.stack([a.examples[s] - b.examples[s] for s in seeds])


def _log_values(by_seed: dict[int, float]) -> dict[int, float]:
    """Log of positive values (times, rates); values as they are when one is not positive."""
    if all(v > 0 for v in by_seed.values()):
        return {s: math.log(v) for s, v in by_seed.items()}
    return by_seed
