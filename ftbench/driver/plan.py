"""Which runs a results folder's saved suite plans now (searched cells at their
selected values, replayed from the trial records), so that every command
(`ftbench status`, `run`, `report`, `compare`, `prune`) classifies records alike
(`ftbench.results.freshness`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import yaml
from pydantic import ValidationError

from ftbench.driver.adaptive import replay
from ftbench.driver.search import TRIALS_FOLDER, plan_search, runner_up_plan
from ftbench.errors import FtbenchError, UnknownComponentError
from ftbench.results.freshness import Freshness, classify
from ftbench.results.records import load_records
from ftbench.results.store import RESOLVED_SUITE, ResultsStore
from ftbench.suite.expand import expand
from ftbench.suite.schema import Suite
from ftbench.suite.tuning import searches


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
    folder = Path(folder)
    records = {r["id"]: r for r in (load_records(folder, quiet=quiet) if records is None else records)}
    trials_dir = folder / TRIALS_FOLDER
    trials = {r["id"]: r for r in load_records(trials_dir, quiet=True)} if trials_dir.is_dir() else {}
    planned, unknown = None, None
    suite_file = folder / RESOLVED_SUITE
    asked: set[str] | None = None
    second = None
    if not suite_file.exists():
        unknown = f"no {RESOLVED_SUITE} in {folder}"
    else:
        reg = registry() if callable(registry) else registry  # a --plugin that cannot load is an error
        try:
            suite = Suite.model_validate(yaml.safe_load(suite_file.read_text()))
            specs = expand(suite, reg)
            if searches(suite):  # searched cells' runs at their selected values
                asked = set()
                specs, plans = plan_search(suite, specs, reg, ResultsStore(folder / TRIALS_FOLDER), asked_ids=asked)
                if not all(p.selected for p in plans.values()):
                    asked = None  # a learning sampler's later trials depend on the missing ones
                second = runner_up_plan(suite, specs, plans, reg)
            if suite.adaptive is not None:  # the runs its looks have asked for so far, not max everywhere
                specs = replay(suite, specs, ResultsStore(folder).read).planned()
            planned = specs
        except UnknownComponentError as exc:
            unknown = _not_installed_message(exc, records)
        except (FtbenchError, ValidationError, yaml.YAMLError, OSError) as exc:
            unknown = f"its {RESOLVED_SUITE} cannot be expanded ({str(exc).splitlines()[0]})"
    out = classify(folder, records, trials, planned, unknown, asked)
    out.runner_up = second
    return out
