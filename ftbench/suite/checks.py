"""Checks of a suite as a whole, after its schema: names and params of components
against the registry, labels that rules and primary comparisons name, searched
values the runs would accept, equal tuning budgets, entries that would repeat a
run. Each returns problem lines with field paths (`ftbench.suite.problems.where`)."""

from __future__ import annotations

import difflib
import json
from typing import Any

from pydantic import BaseModel, ValidationError

from ftbench.config import TrainConfig
from ftbench.corruption_names import check_corruption
from ftbench.errors import UnknownComponentError, UserInputError
from ftbench.plugins import PLURALS
from ftbench.suite.expand import resolve_ref
from ftbench.suite.problems import pydantic_problems, where
from ftbench.suite.schema import (PRETRAIN_PREFIX, ComponentRef, DatasetEntry, Dimension, SearchConfig, Suite,
                                  entry_label, entry_labels, search_key)
from ftbench.suite.strict import did_you_mean, validate_strictly
from ftbench.suite.tuning import resolve_search, trial_runs, unequal_budgets


def check_semantics(suite: Suite, lines: dict[tuple, int], registry) -> list[str]:
    problems: list[str] = []
    for i, entry in enumerate(suite.strategies):
        try:
            validate_strictly(TrainConfig, {**suite.train.model_dump(), **entry.train})
        except ValidationError as exc:
            problems += pydantic_problems(exc, lines, ("strategies", i, "train"), model=TrainConfig)
    for i, entry in enumerate(suite.datasets):
        for j, name in enumerate(entry.shifts.corruptions):
            try:
                check_corruption(name, 1)
            except UserInputError as exc:
                problems.append(f"{where(('datasets', i, 'shifts', 'corruptions', j), lines)}: {exc}")
        problems += _check_adapt(entry, ("datasets", i, "adapt"), lines)
    for i, entry in enumerate(suite.backbones):
        ref = str(entry.params.get("pretrained", ""))
        if ref.startswith(PRETRAIN_PREFIX) and ref[len(PRETRAIN_PREFIX):] not in suite.pretrain:
            problems.append(f"{where(('backbones', i, 'params', 'pretrained'), lines)}: no pretrain job named "
                            f"'{ref[len(PRETRAIN_PREFIX):]}'; define it under `pretrain:` "
                            f"(jobs: {', '.join(suite.pretrain) or 'none'})")
    for kind, key in (("backbone", "backbones"), ("dataset", "datasets"), ("strategy", "strategies")):
        labels = [entry_label(e, getattr(suite, key)) for e in getattr(suite, key)]
        for dup in sorted({x for x in labels if labels.count(x) > 1}):
            problems.append(f"{key}: two entries share the label '{dup}'; give each a distinct `label:`")
    known = {"backbone": entry_labels(suite.backbones), "dataset": entry_labels(suite.datasets),
             "strategy": entry_labels(suite.strategies), "data": [d.label for d in suite.data]}
    for rules, key in ((suite.exclude, "exclude"), (suite.include, "include")):
        for i, rule in enumerate(rules):
            for field, values in known.items():
                value = getattr(rule, field)
                if value is not None and value not in values:
                    problems.append(f"{where((key, i, field), lines)}: '{value}' matches no {field} "
                                    f"(labels: {', '.join(values)})")
    problems += _check_primary(suite, lines, known)
    problems += _check_adaptive(suite, lines, known)
    problems += _check_search(suite, lines, registry)
    problems += _check_duplicate_runs(suite, lines, registry)
    if registry is not None:
        problems += _check_components(suite, lines, registry)
    return problems


def _check_primary(suite: Suite, lines: dict[tuple, int], known: dict[str, list[str]]) -> list[str]:
    """Every label a primary comparison names is one of the suite's."""
    problems = []
    for i, entry in enumerate(suite.primary):
        for key, kind in (("strategy", "strategy"), ("vs", "strategy"), ("backbone", "backbone"),
                          ("dataset", "dataset"), ("data", "data")):
            value = getattr(entry, key)
            if value is not None and value not in known[kind]:
                close = difflib.get_close_matches(value, known[kind], n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(f"{where(('primary', i, key), lines)}: '{value}' is no {kind} of this suite{hint} "
                                f"({kind} labels: {', '.join(known[kind])})")
        if entry.strategy == entry.vs:
            problems.append(f"{where(('primary', i), lines)}: compares '{entry.strategy}' with itself; name two "
                            "different strategies")
    return problems


def _check_adaptive(suite: Suite, lines: dict[tuple, int], known: dict[str, list[str]]) -> list[str]:
    """Adaptive seeds compare every strategy with `baseline` unless `primary:` names the comparisons."""
    seeds = suite.adaptive
    if seeds is None or suite.primary or seeds.baseline in known["strategy"]:
        return []
    return [f"{where(('seeds', 'baseline'), lines)}: adaptive seeds compare each strategy with the baseline "
            f"'{seeds.baseline}', which is no strategy of this suite (labels: {', '.join(known['strategy'])}); "
            "set `seeds: {..., baseline: LABEL}` or declare `primary:` comparisons"]


def _check_search(suite: Suite, lines: dict[tuple, int], registry) -> list[str]:
    """Every searched value must be one the run would accept, and every searched
    strategy gets the same number of trial runs (unless `allow_unequal_budget`)."""
    problems: list[str] = []
    budgets: dict[str, tuple[int, int, int]] = {}  # strategy label -> (trials, tuning seeds, folds)
    for i, (label, entry) in enumerate(zip(entry_labels(suite.strategies), suite.strategies)):
        try:
            config = resolve_search(suite, entry)
        except ValidationError as exc:
            problems += pydantic_problems(exc, lines, ("strategies", i, "search"), model=SearchConfig)
            continue
        if config is None:
            continue
        at = ("search",) if entry.search is None or entry.search.space is None else ("strategies", i, "search")
        if config.n_trials() is None:
            problems.append(f"{where(at, lines)}: set `trials:` (how many configurations each strategy "
                            f"tries; the same for every strategy keeps the comparison fair)")
        else:
            budgets[label] = (config.n_trials(), len(config.seeds), config.folds or 1)
        params_model = _strategy_params(registry, entry.name)
        train = {**suite.train.model_dump(mode="json"), **entry.train}
        for key, dim in config.space.items():
            problems += _dimension_problems(at + ("space", key), key, dim, config.resolved_sampler(), entry.name,
                                            entry.params, train, params_model, lines)
    if len({trial_runs(b) for b in budgets.values()}) > 1 and not (suite.search and suite.search.allow_unequal_budget):
        problems.append(f"{where(('strategies',), lines)}: the searched strategies get different tuning budgets "
                        f"({unequal_budgets(budgets)}), so the comparison favours the better-tuned ones: give "
                        "every entry the same `trials:` and tuning `seeds:` (a grid's size is its trials), or set "
                        "`allow_unequal_budget: true` under the suite's `search:` to compare them anyway")
    return list(dict.fromkeys(problems))  # a suite-wide problem is found once per entry


def _strategy_params(registry, name: Any) -> type[BaseModel] | None:
    if registry is None or not isinstance(name, str):
        return None
    try:
        return registry.get("strategy", name).params
    except UnknownComponentError:
        return None  # reported with the components


def _dimension_problems(path: tuple, key: str, dim: Dimension, sampler: str, strategy: str, params: dict,
                        train: dict, params_model: type[BaseModel] | None, lines: dict[tuple, int]) -> list[str]:
    """What is wrong with one searched dimension of a strategy entry: a range under
    the grid sampler, a parameter the strategy does not have, values it refuses."""
    problems = []
    section, _, name = key.partition(".")
    if sampler == "grid" and dim.kind not in ("grid", "choice"):
        problems.append(f"{where(path, lines)}: the grid sampler needs `grid:` or `choice:` values, "
                        f"not {dim.kind}; use sampler: tpe or random for ranges")
    if section == "params" and params_model is not None and name not in params_model.model_fields:
        known = [f.alias or n for n, f in params_model.model_fields.items()]
        return problems + [f"{where(path, lines)}: strategy '{strategy}' has no parameter '{name}'"
                           f"{did_you_mean(name, known)} (its parameters: {', '.join(known) or 'none'})"]
    samples = dim.values() or list(getattr(dim, dim.kind if dim.kind != "int" else "int_"))
    model, base = (TrainConfig, train) if section == "train" else (params_model, params)
    if model is None:
        return problems
    for value in samples:
        try:
            validate_strictly(model, {**base, name: value})
        except ValidationError as exc:
            own = [e for e in exc.errors() if tuple(e["loc"][:1]) in ((name,), ())]
            if not own:
                continue  # another key's problem, reported where that key is
            what = f"`train.{name}`" if section == "train" else f"`params.{name}` of '{strategy}'"
            problems.append(f"{where(path, lines)}: {value!r} is not a valid {what}: {own[0]['msg']}")
    return problems


def raw_search_problems(raw: dict, lines: dict[tuple, int], registry) -> list[str]:
    """The search-space problems of a suite that failed the schema, found from its
    raw YAML wherever a dimension is well-formed, so that one pass reports them
    with the schema's problems."""
    def space_of(node: Any) -> dict:
        search = node.get("search") if isinstance(node, dict) else None
        space = search.get("space") if isinstance(search, dict) else None
        return space if isinstance(space, dict) else {}

    def sampler_of(*nodes: Any) -> str:
        for node in nodes:
            search = node.get("search") if isinstance(node, dict) else None
            if isinstance(search, dict) and isinstance(search.get("sampler"), str):
                return search["sampler"]
        return "tpe"  # grid only when asked for (or all-grid): a range's problem shows in the next pass

    problems: list[str] = []
    strategies = raw.get("strategies") if isinstance(raw.get("strategies"), list) else []
    base_train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    for i, entry in enumerate(strategies):
        if not isinstance(entry, dict) or (isinstance(entry.get("search"), dict)
                                           and entry["search"].get("enabled") is False):
            continue
        own = space_of(entry)
        spaces = [(("search", "space"), space_of(raw)), (("strategies", i, "search", "space"), own)]
        params = entry.get("params") if isinstance(entry.get("params"), dict) else {}
        train = {**base_train, **(entry.get("train") if isinstance(entry.get("train"), dict) else {})}
        for prefix, space in spaces:
            for key, value in space.items():
                try:
                    search_key(str(key))
                    dim = Dimension.model_validate(value)
                except (ValueError, ValidationError):
                    continue  # the schema's problem
                if prefix[0] == "search" and key in own:
                    continue  # the entry's own dimension replaces the suite's
                problems += _dimension_problems(prefix + (key,), key, dim, sampler_of(entry, raw), entry.get("name"),
                                                params, train, _strategy_params(registry, entry.get("name")), lines)
    return list(dict.fromkeys(problems))


def _check_adapt(entry: DatasetEntry, path: tuple, lines: dict[tuple, int]) -> list[str]:
    adapt = entry.adapt
    if adapt is None:
        return []
    if adapt.corruption is not None:
        try:
            check_corruption(adapt.corruption, adapt.severity)
        except UserInputError as exc:
            return [f"{where(path + ('corruption',), lines)}: {exc}"]
    return []


def _entry_identity(kind: str, entry, suite: Suite, registry) -> str:
    """What an entry contributes to its runs' configs (and so their ids); labels are
    not part of it: a label names a run, it does not make a different one."""
    ref = entry
    if registry is not None:
        try:
            ref = resolve_ref(registry, kind, entry)
        except Exception:  # noqa: BLE001 - an unknown name or bad params is reported by _check_components
            ref = entry
    identity: dict[str, Any] = {"name": ref.name, "params": ref.params}
    if kind == "dataset":
        identity.update(shifts=entry.shifts.model_dump(mode="json"), val_fraction=entry.val_fraction,
                        adapt=entry.adapt.model_dump(mode="json") if entry.adapt else None)
    if kind == "strategy":
        identity["train"] = {**suite.train.model_dump(mode="json"), **entry.train}
    return json.dumps(identity, sort_keys=True, default=str)


def _check_duplicate_runs(suite: Suite, lines: dict[tuple, int], registry) -> list[str]:
    """Entries that would expand to runs with one config (one id): their records
    would overwrite each other, so they are refused here, naming both."""
    problems = []
    for kind, key in (("backbone", "backbones"), ("dataset", "datasets"), ("strategy", "strategies")):
        seen: dict[str, int] = {}
        for i, entry in enumerate(getattr(suite, key)):
            identity = _entry_identity(kind, entry, suite, registry)
            if identity in seen:
                j = seen[identity]
                problems.append(
                    f"{where((key, i), lines)}: expands to the same runs as {where((key, j), lines)} "
                    f"('{entry.label or entry.name}' and '{getattr(suite, key)[j].label or entry.name}': one name, "
                    "params and settings once defaults are filled in), so one's records would replace the "
                    "other's; a label alone does not make a different run: remove one, or change its params")
            else:
                seen[identity] = i
    for key, values, show in (("seeds", suite.seeds if isinstance(suite.seeds, list) else [], lambda v: f"seed {v}"),
                              ("data", suite.data, lambda d: f"data '{d.label}'")):
        seen_value: dict[Any, int] = {}
        for i, value in enumerate(values):
            ident = value.label if key == "data" else value  # {} and {fraction: 1} are both 'all'
            if ident in seen_value:
                problems.append(f"{where((key, i), lines)}: repeats {where((key, seen_value[ident]), lines)} "
                                f"({show(value)}); each run would be planned twice, or two would share a report "
                                "cell: remove the repeat")
            else:
                seen_value[ident] = i
    return problems


def _check_components(suite: Suite, lines: dict[tuple, int], registry) -> list[str]:
    problems = []
    refs: list[tuple[str, tuple, ComponentRef]] = []
    refs += [("backbone", ("backbones", i), e) for i, e in enumerate(suite.backbones)]
    refs += [("dataset", ("datasets", i), e) for i, e in enumerate(suite.datasets)]
    refs += [("dataset", ("datasets", i, "shifts", "datasets", j), o)
             for i, e in enumerate(suite.datasets) for j, o in enumerate(e.shifts.datasets)]
    refs += [("strategy", ("strategies", i), e) for i, e in enumerate(suite.strategies)]
    refs += [("executor", ("executor",), suite.executor)]
    refs += [("logger", ("loggers", i), e) for i, e in enumerate(suite.loggers)]
    for name, job in suite.pretrain.items():
        refs += [("backbone", ("pretrain", name, "backbone"), job.backbone),
                 ("dataset", ("pretrain", name, "dataset"), job.dataset)]
    for kind, path, ref in refs:
        try:
            comp = registry.get(kind, ref.name)
        except UnknownComponentError as exc:
            problems.append(f"{where(path + ('name',), lines)}: {exc}")
            continue
        params = {k: v for k, v in ref.params.items()}
        if kind == "backbone" and str(params.get("pretrained", "")).startswith(PRETRAIN_PREFIX):
            params["pretrained"] = "none"  # resolved to a checkpoint at expansion
        try:
            validate_strictly(comp.params, params)
        except ValidationError as exc:
            problems += pydantic_problems(exc, lines, path + ("params",),
                                           f"`ftbench list {PLURALS[kind]} {ref.name}` describes them", comp.params)
    return problems


def raw_name_problems(raw: dict, lines: dict[tuple, int], registry) -> list[str]:
    """Unknown component names in a suite that failed the schema, so that one pass
    reports them with the schema's problems."""
    if registry is None:
        return []
    entries = [(kind, (key, i), e) for kind, key in (("backbone", "backbones"), ("dataset", "datasets"),
                                                     ("strategy", "strategies"))
               for i, e in enumerate(raw.get(key) if isinstance(raw.get(key), list) else [])]
    entries.append(("executor", ("executor",), raw.get("executor")))
    problems = []
    for kind, path, entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            try:
                registry.get(kind, entry["name"])
            except UnknownComponentError as exc:
                problems.append(f"{where(path + ('name',), lines)}: {exc}")
    return problems
