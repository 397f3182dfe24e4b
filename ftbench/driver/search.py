"""Hyperparameter search per strategy: trials on validation, then the suite's seeds
at the selected configuration.

    suite --expand--> runs, grouped into cells (backbone, dataset, strategy, data)
    each searched cell --Optuna study--> trial k: sampled values x tuning seeds
        --executor--> trial runs (records under results/<suite>/trials/)
        --mean val accuracy over tuning seeds--> told to the study
    best trial (mean val accuracy; ties: the earlier trial) --> the cell's runs at
    its configuration, with a `selection` entry in their records

Trials are ordinary runs: the same executor, claims and store, so `-j N` spreads
them and a killed search resumes. The study is rebuilt from the trial records on
every start: the samplers are seeded and each study is told its trials in order,
so a resumed search asks for exactly the trials it asked before, finds the
finished ones in the store and runs only the rest (no separate study database to
keep in step with the records). Cells advance in lockstep, one trial number at a
time, so the trials of one round run in parallel and the sampled values never
depend on the number of workers.

A trial trains on its labelled budget less a held-out part (`val_fraction` of
each class, at least one example where the class has two), is scored on that
held-out part, and never evaluates the test split, shifted sets or the source
task: selection cannot see them. The one exception is asked for by name:
`select: oracle` trains the same trials, also scores each on the test split and
selects by mean test accuracy, DomainBed's oracle: optimistic, never the default,
and labelled so in the records, the report and `ftbench validate`.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Iterable
from typing import Any

from ftbench.config import TrainConfig
from ftbench.driver.worker import CLAIMED_ELSEWHERE
from ftbench.engine.trial import make_pruner
from ftbench.errors import UserInputError
from ftbench.plugins import resolved_params
from ftbench.results.selection import RUNNER_UP_FOLDER, UNCERTAIN_BELOW, selection_confidence
from ftbench.suite.runs import RunSpec, TrialSpec, TunedSpec
from ftbench.suite.schema import SearchConfig, Suite, entry_labels
from ftbench.suite.tuning import resolve_search

TRIALS_FOLDER = "trials"
SELECTION_RULE = "best mean validation accuracy over the tuning seeds (ties: the earlier trial)"
ORACLE_RULE = ("ORACLE: best mean TEST accuracy over the tuning seeds (ties: the earlier trial) "
               "(optimistic; not a fair comparison)")


class SearchBusy(UserInputError):
    """Another driver holds trials this search is waiting for."""


def with_values(spec: RunSpec, values: dict[str, Any], registry=None) -> tuple[TrainConfig, Any]:
    """(train config, strategy ref) of `spec` with searched `values` applied
    (`train.KEY` and `params.KEY`)."""
    train = {k.partition(".")[2]: v for k, v in values.items() if k.startswith("train.")}
    params = {k.partition(".")[2]: v for k, v in values.items() if k.startswith("params.")}
    cfg = TrainConfig.model_validate({**spec.train.model_dump(), **train})
    strategy_params = {**spec.strategy.params, **params}
    if registry is not None:
        strategy_params = resolved_params(registry, "strategy", spec.strategy.name, strategy_params)
    return cfg, spec.strategy.model_copy(update={"params": strategy_params})


def _base_fields(spec: RunSpec) -> dict:
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(RunSpec)}


def _distributions(config: SearchConfig) -> dict:
    import optuna.distributions as d

    out = {}
    for key, dim in config.space.items():
        if dim.kind == "loguniform":
            out[key] = d.FloatDistribution(*dim.loguniform, log=True)
        elif dim.kind == "uniform":
            out[key] = d.FloatDistribution(*dim.uniform)
        elif dim.kind == "int":
            out[key] = d.IntDistribution(*dim.int_)
        else:
            out[key] = d.CategoricalDistribution(dim.values())
    return out


def make_study(config: SearchConfig):
    """An in-memory Optuna study with the config's seeded sampler and pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kind = config.resolved_sampler()
    if kind == "grid":
        sampler = optuna.samplers.GridSampler({k: d.values() for k, d in config.space.items()}, seed=config.seed)
    elif kind == "random":
        sampler = optuna.samplers.RandomSampler(seed=config.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=config.seed)
    return optuna.create_study(direction="maximize", sampler=sampler, pruner=make_pruner(config.pruner))


@dataclasses.dataclass
class _Cell:
    """One study: the runs of one (backbone, dataset, strategy, data) cell."""

    key: tuple
    specs: list[RunSpec]
    config: SearchConfig
    study: Any = None
    trials: list[dict] = dataclasses.field(default_factory=list)  # per number: values, value, state, records

    @property
    def n_trials(self) -> int:
        return self.config.n_trials() or 0


def _cells(suite: Suite, specs: list[RunSpec]) -> tuple[list[_Cell], list[RunSpec]]:
    """(searched cells, runs of strategies that are not searched)."""
    configs = {label: resolve_search(suite, entry)
               for label, entry in zip(entry_labels(suite.strategies), suite.strategies)}
    cells: dict[tuple, _Cell] = {}
    plain = []
    for spec in specs:
        config = configs.get(spec.cell["strategy"])
        if config is None:
            plain.append(spec)
            continue
        key = tuple(spec.cell[k] for k in ("backbone", "dataset", "strategy", "data"))
        cells.setdefault(key, _Cell(key, [], config)).specs.append(spec)
    return list(cells.values()), plain


def _prior(cell: _Cell, fold: int | None = None) -> list[dict]:
    """The earlier trials' learning curves, for a pruner in the worker; with folds,
    their curves on the same fold (folds differ in difficulty: a fold's curve is
    only comparable with the same fold's)."""
    return [{"value": t["value"], "state": t["state"],
             "curve": t["curve"] if fold is None else t["fold_curves"].get(fold, {})} for t in cell.trials]


def _trial_specs(cell: _Cell, number: int, values: dict, registry) -> list[TrialSpec]:
    base = cell.specs[0]
    train, strategy = with_values(base, values, registry)
    trial = {"number": number, "params": values, "val_fraction": cell.config.val_fraction,
             "pruner": cell.config.pruner, "prior": _prior(cell), "select": cell.config.select}
    fields = _base_fields(base) | {"train": train, "strategy": strategy}
    if cell.config.prune_points is not None:  # the trials' own curve: points the pruner sees
        fields["eval"] = base.eval.model_copy(update={"curve": True, "curve_points": cell.config.prune_points})
    k = cell.config.folds
    folds = [trial] if not k else [trial | {"folds": k, "fold": f, "prior": _prior(cell, f)} for f in range(k)]
    return [TrialSpec(**(fields | {"seed": seed}), trial=t) for seed in cell.config.seeds for t in folds]


def _val_acc(record: dict) -> float | None:
    return ((record.get("metrics") or {}).get("val") or {}).get("acc")


def _curve_means(records: list[dict]) -> dict[int, float]:
    """Curve point index -> mean val accuracy over the records that reached it."""
    by_point: dict[int, list[float]] = {}
    for rec in records:
        for i, point in enumerate(p for p in (rec.get("metrics") or {}).get("curve") or [] if "val_acc" in p):
            by_point.setdefault(i, []).append(point["val_acc"])
    return {i: statistics.fmean(v) for i, v in sorted(by_point.items())}


def _tell(cell: _Cell, trial, values: dict, records: list[dict]) -> None:
    import optuna

    curve = _curve_means(records)
    pruned = any(((r.get("metrics") or {}).get("pruned")) for r in records)
    accs = [_val_acc(r) for r in records]
    for step, value in curve.items():
        trial.report(value, step)
    if any(r.get("status") != "ok" for r in records) or any(a is None for a in accs) and not pruned:
        state, value = optuna.trial.TrialState.FAIL, None
    elif pruned:
        state, value = optuna.trial.TrialState.PRUNED, None
    else:
        state, value = optuna.trial.TrialState.COMPLETE, statistics.fmean(accs)
    try:
        cell.study.tell(trial, value, state=state)
    except RuntimeError as exc:
        # GridSampler.after_trial stops a study whose grid is done, which only an
        # optimize() loop can be; the trial is stored before that (optuna's finally).
        if "Study.stop" not in str(exc):
            raise
    reached = [a for a in accs if a is not None]
    folds = {int(((r.get("config") or {}).get("trial") or {}).get("fold", 0)) for r in records}
    fold_curves = {f: _curve_means([r for r in records if ((r.get("config") or {}).get("trial") or {})
                                    .get("fold", 0) == f]) for f in folds}
    cell.trials.append({"number": trial.number, "values": values, "value": value, "state": state.name.lower(),
                        "curve": curve, "fold_curves": fold_curves, "records": records,
                        "stopped_at": statistics.fmean(reached) if pruned and reached else None})


def _test_acc(trial: dict) -> float | None:
    """A trial's mean test accuracy over its tuning seeds (oracle trials only)."""
    accs = [((r.get("metrics") or {}).get("test") or {}).get("acc") for r in trial["records"]]
    return statistics.fmean(accs) if accs and None not in accs else None


def selection_of(cell: _Cell) -> dict:
    """What the cell's final runs record: the selected values, from what, and why."""
    oracle = cell.config.select == "oracle"
    done = [t for t in cell.trials if t["state"] == "complete"]
    runs = [r for t in cell.trials for r in t["records"]]
    cost = {"runs": len(runs),
            "train_s": round(sum((r.get("timing") or {}).get("train_s") or 0.0 for r in runs), 4),
            "wall_s": round(sum((r.get("timing") or {}).get("wall_s") or 0.0 for r in runs), 4)}
    out = {"trials": len(cell.trials), "completed": len(done),
           "pruned": sum(t["state"] == "pruned" for t in cell.trials),
           "failed": sum(t["state"] == "fail" for t in cell.trials),
           "tuning_seeds": list(cell.config.seeds), **({"folds": cell.config.folds} if cell.config.folds else {}),
           "sampler": cell.config.resolved_sampler(),
           "sampler_seed": cell.config.seed, "pruner": cell.config.pruner, "cost": cost,
           "trial_results": [{"number": t["number"], "values": t["values"], "val_acc": t["value"],
                              "state": t["state"], **({"val_acc_at_stop": t["stopped_at"]} if t["stopped_at"]
                                                      is not None else {}),
                              **({"test_acc": _test_acc(t)} if oracle else {})} for t in cell.trials]}
    if oracle:
        out["select"] = "oracle"
        done = [t for t in done if _test_acc(t) is not None]
    if not done:
        return out | {"selected": {}, "val_acc": None,
                      "rule": "no trial finished: nothing selected, so the cell's runs fail (SearchFailed)"}
    if oracle:
        best = max(done, key=lambda t: (_test_acc(t), -t["number"]))
        return out | {"selected": best["values"], "val_acc": best["value"], "test_acc": _test_acc(best),
                      "trial": best["number"], "rule": ORACLE_RULE}
    best = max(done, key=lambda t: (t["value"], -t["number"]))
    confidence = selection_confidence(cell.trials, best["number"], seed=cell.config.seed)
    return out | {"selected": best["values"], "val_acc": best["value"], "trial": best["number"],
                  "rule": SELECTION_RULE, **({"confidence": confidence} if confidence else {})}


def planned_trials(suite: Suite, specs: list[RunSpec], plans: dict | None = None) -> str:
    """One line on the search a suite runs before its runs; with `plans`
    (`plan_search`), how far it has got."""
    cells, _ = _cells(suite, specs)
    runs = sum(c.n_trials * len(c.config.seeds) * (c.config.folds or 1) for c in cells)
    head = (f"search: {runs} trial runs first ({len(cells)} cells; per cell, trials x tuning seeds"
            + (" x folds" if any(c.config.folds for c in cells) else "") + ": "
            + ", ".join(sorted({f"{c.n_trials} x {len(c.config.seeds)}"
                                + (f" x {c.config.folds or 1}" if any(c.config.folds for c in cells) else "")
                                for c in cells})) + ")")
    if plans is None:
        return head + "; the runs above then use each cell's selected values (their ids change)"
    done, selected = sum(p.trials_done for p in plans.values()), sum(p.selected for p in plans.values())
    if selected == len(plans):
        state = "every cell selected: the runs above are at the selected values"
    elif not selected:
        state = "no cell selected yet: the runs above get their values and ids after their cell's search"
    else:
        state = (f"{selected} of {len(plans)} cells selected: their runs above are at the selected values, "
                 "the others' get their ids after their cell's search")
    return f"{head}, {done} finished; {state}"


@dataclasses.dataclass
class CellPlan:
    """Where one searched cell stands, from the trial records alone (`plan_search`)."""

    cell: dict  # backbone, dataset, strategy, data labels
    trial_runs: int  # trials x tuning seeds
    trials_done: int  # of those, finished ok in the trials folder
    selection: dict | None  # the selection, once every trial is recorded

    @property
    def selected(self) -> bool:
        return self.selection is not None


def cell_key(cell: dict) -> tuple:
    """A run's (backbone, dataset, strategy, data) labels: its search's cell."""
    return tuple(cell[k] for k in ("backbone", "dataset", "strategy", "data"))


def plan_search(suite: Suite, specs: list[RunSpec], registry, trials,
                asked_ids: set[str] | None = None) -> tuple[list[RunSpec], dict[tuple, CellPlan]]:
    """Replay the searches of `specs` from the trial records in `trials` (a
    ResultsStore) without running anything: (the runs: a searched cell's at its
    selected configuration once every trial of the cell has a record, else as
    given; cell_key -> plan of each searched cell). A failed trial's record counts
    as the driver counted it (a failed trial); the next `ftbench run` retries it.
    The count of a cell's finished trials is exact up to its first missing trial
    (the later trials of a sampler that learns, such as TPE, depend on it). The ids
    of the trials asked for are added to `asked_ids` when given. For `validate`,
    `--dry-run`, `status` and `ftbench.results.freshness`."""
    asked: dict[tuple, int] = {}
    done: dict[tuple, int] = {}
    missing: set[tuple] = set()

    def read_trials(batch: list[RunSpec]):
        for spec in batch:
            key = cell_key(spec.cell)
            asked[key] = asked.get(key, 0) + 1
            if asked_ids is not None:
                asked_ids.add(spec.id)
            record = trials.read(spec.id)
            if record is None:
                missing.add(key)
                yield {"id": spec.id, "status": "missing"}
                continue
            done[key] = done.get(key, 0) + (record.get("status") == "ok")
            yield record

    final, selections = run_search(suite, specs, registry, read_trials)
    plans = {}
    for sel in selections:
        key = cell_key(sel["cell"])
        plans[key] = CellPlan(sel["cell"], asked.get(key, 0), done.get(key, 0), None if key in missing else sel)
    runs = [tuned if (plan := plans.get(cell_key(spec.cell))) is None or plan.selected else spec
            for spec, tuned in zip(specs, final)]
    return runs, plans


def run_search(suite: Suite, specs: list[RunSpec], registry,
               run_trials: Callable[[list[RunSpec]], Iterable[dict]],
               log: Callable[[str], None] = lambda msg: None) -> tuple[list[RunSpec], list[dict]]:
    """Search every searched cell of `specs`; return (the runs to run: searched cells'
    runs at their selected configuration plus the others unchanged, the selections).
    `run_trials` runs trial specs (through the executor) and yields their records."""
    cells, _ = _cells(suite, specs)
    if not cells:
        return specs, []
    rounds = max(c.n_trials for c in cells)
    log(f"search: {len(cells)} cells, up to {rounds} trials each x their tuning seeds")
    for c in cells:
        c.study = make_study(c.config)
    distributions = {id(c): _distributions(c.config) for c in cells}
    for number in range(rounds):
        active = [c for c in cells if number < c.n_trials]
        asked = []
        batch: list[RunSpec] = []
        for c in active:
            trial = c.study.ask(distributions[id(c)])
            values = dict(trial.params)
            trial_specs = _trial_specs(c, number, values, registry)
            asked.append((c, trial, values, [s.id for s in trial_specs]))
            batch += trial_specs
        by_id = {record["id"]: record for record in run_trials(batch)}
        held = [i for i, r in by_id.items() if r.get("status") == CLAIMED_ELSEWHERE]
        if held:
            raise SearchBusy(f"{len(held)} trial(s) of this search are being run by another driver (e.g. {held[0]}); "
                             "a search's next trials depend on them: run again when that driver is done")
        for c, trial, values, ids in asked:
            records = [by_id.get(i, {"id": i, "status": "missing"}) for i in ids]
            _tell(c, trial, values, records)
    selections, tuned = [], {}
    for c in cells:
        selection = selection_of(c) | {"cell": dict(zip(("backbone", "dataset", "strategy", "data"), c.key))}
        selections.append(selection)
        for spec in c.specs:
            train, strategy = with_values(spec, selection["selected"], registry)
            tuned[id(spec)] = TunedSpec(**(_base_fields(spec) | {"train": train, "strategy": strategy}),
                                        selection={k: v for k, v in selection.items() if k != "cell"})
    return [tuned.get(id(s), s) for s in specs], selections


@dataclasses.dataclass(frozen=True)
class RunnerUpPlan:
    """The runs `search.final_top: 2` adds (in RUNNER_UP_FOLDER), as far as the trial
    records tell: `runs` once every searched cell has its selection, else None;
    `at_most`, the final runs of the cells whose strategy asks for a runner-up."""

    runs: list[RunSpec] | None
    at_most: int

    def describe(self, folder, done: int | None = None) -> str:
        """In words, for the results folder `folder` (`done`: how many have finished)."""
        where = f"{folder}/{RUNNER_UP_FOLDER}"
        which = f"the cells whose P(selected) < {UNCERTAIN_BELOW:g}, again at their runner-up"
        if self.runs is None:
            return (f"runner-up runs (final_top: 2): up to {self.at_most}, in {where}; which ones is known once the "
                    f"search is finished ({which})")
        finished = "" if done is None else f", {done} finished"
        return (f"runner-up runs (final_top: 2): {len(self.runs)} of at most {self.at_most}, in {where} "
                f"({which}){finished}")


def runner_up_plan(suite: Suite, final: list[RunSpec], plans: dict, registry) -> RunnerUpPlan | None:
    """For `validate`, `--dry-run` and `status`: the runner-up runs of `plan_search`'s
    result (`final`, `plans`); None when no strategy has `final_top: 2`."""
    labels = {label for label, entry in zip(entry_labels(suite.strategies), suite.strategies)
              if (config := resolve_search(suite, entry)) is not None and config.final_top >= 2}
    if not labels:
        return None
    at_most = sum(1 for spec in final if spec.cell["strategy"] in labels)
    if not plans or not all(plan.selected for plan in plans.values()):
        return RunnerUpPlan(None, at_most)
    return RunnerUpPlan(runner_up_runs(suite, final, [plan.selection for plan in plans.values()], registry),
                        at_most)


def runner_up_runs(suite: Suite, final: list[RunSpec], selections: list[dict], registry) -> list[RunSpec]:
    """For `search.final_top: 2`: the final runs of each cell whose selection is
    uncertain (P(selected) below UNCERTAIN_BELOW), again at its runner-up's values,
    their `selection` saying so (`rank: 2`). They go to RUNNER_UP_FOLDER, apart from
    the suite's runs, so no table mixes them in."""
    configs = {label: resolve_search(suite, entry)
               for label, entry in zip(entry_labels(suite.strategies), suite.strategies)}
    out = []
    for sel in selections:
        config, conf = configs.get(sel["cell"]["strategy"]), sel.get("confidence") or {}
        runner, p = conf.get("runner_up"), conf.get("selected_p")
        if config is None or config.final_top < 2 or not runner or p is None or p >= UNCERTAIN_BELOW:
            continue
        for spec in final:
            if isinstance(spec, TunedSpec) and spec.cell == sel["cell"]:
                train, strategy = with_values(spec, runner["values"], registry)
                selection = {k: v for k, v in spec.selection.items() if k != "trial_results"}
                out.append(TunedSpec(**(_base_fields(spec) | {"train": train, "strategy": strategy}),
                                     selection=selection | {"rank": 2, "selected": runner["values"],
                                                            "val_acc": runner.get("val_acc"),
                                                            "trial": runner["trial"],
                                                            "first": {"selected": sel["selected"],
                                                                      "trial": sel.get("trial")}}))
    return out
