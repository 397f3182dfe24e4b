"""Which strategies of a suite are tuned, and with which search: an entry's search
is the suite's `search:` under the entry's own. Torch-free: `validate` and the
report read it."""

from __future__ import annotations

import math

from ftbench.suite.schema import SearchConfig, StrategyEntry, Suite, entry_labels


def resolve_search(suite: Suite, entry: StrategyEntry) -> SearchConfig | None:
    """The search of one strategy entry: the suite's `search:` under the entry's own
    (entry keys win, spaces merge key by key); None when it searches nothing."""
    base = suite.search.model_dump(by_alias=True, exclude_none=True) if suite.search else {}
    own = entry.search.model_dump(by_alias=True, exclude_none=True) if entry.search else {}
    if not base and not own:
        return None
    merged = {**base, **own, "space": {**base.get("space", {}), **own.get("space", {})}}
    config = SearchConfig.model_validate(merged)
    return config if config.enabled and config.space else None


def unequal_budgets(budgets: dict[str, tuple[int, ...]]) -> str:
    """"full 9 trials x 1 seed, lp-ft 3 trials x 1 seed" for label -> (trials, seeds[, folds])."""
    return ", ".join(f"{label} {b[0]} trials x {b[1]} seed{'s' if b[1] != 1 else ''}"
                     + (f" x {b[2]} folds" if len(b) > 2 and b[2] > 1 else "") for label, b in budgets.items())


def trial_runs(budget: tuple[int, ...]) -> int:
    """Trial runs of a (trials, seeds[, folds]) budget: what fairness compares."""
    return math.prod(budget)


def search_budgets(suite: Suite) -> dict[str, tuple[int, int, int]]:
    """Strategy label -> (trials, tuning seeds, folds) of each searched strategy entry."""
    out = {}
    for label, entry in zip(entry_labels(suite.strategies), suite.strategies):
        config = resolve_search(suite, entry)
        if config is not None and config.n_trials() is not None:
            out[label] = (config.n_trials(), len(config.seeds), config.folds or 1)
    return out


def searches(suite: Suite) -> bool:
    """Whether a `search:` (suite-wide or on an entry) may tune some strategy."""
    return suite.search is not None or any(s.search for s in suite.strategies)


def oracle_strategies(suite: Suite) -> list[str]:
    """Labels of the strategy entries whose search selects on test (`select: oracle`)."""
    return [label for label, entry in zip(entry_labels(suite.strategies), suite.strategies)
            if (config := resolve_search(suite, entry)) is not None and config.select == "oracle"]
