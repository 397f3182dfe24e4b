"""The Python API: run a suite, load its records, get every report table as data,
compare against a baseline. The `ftbench` command is built on these functions, so
what a notebook gets is what the CLI prints.

    >>> from ftbench import api
    >>> outcome = api.run("suites/quickstart.yaml", jobs=2)       # doctest: +SKIP
    >>> study = api.load(outcome.results)                         # doctest: +SKIP
    >>> study.frame.query("metric == 'test.acc'")                 # doctest: +SKIP
    >>> report = study.report(baseline="full")                    # doctest: +SKIP
    >>> report["accuracy"].frame                                  # doctest: +SKIP
    >>> api.compare("results/baselines/ci-regression.json", "results/ci-regression").failed  # doctest: +SKIP
    >>> api.save_baseline("results/ci-regression", "baseline.json")  # doctest: +SKIP
    >>> api.reproduce("results/reference/quickstart").failed      # doctest: +SKIP

`Study` and `StudyReport` show as the HTML report in Jupyter (`_repr_html_`).
pandas (`pip install ftbench[pandas]`) is imported only when a DataFrame is asked
for; torch only by `run`. docs/python.md is a worked example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ftbench.errors import UserInputError

if TYPE_CHECKING:
    import pandas

    from ftbench.driver.suite_run import SuiteOutcome
    from ftbench.gate.compare import Comparison
    from ftbench.gate.reproduce import Reproduction
    from ftbench.plugins import Registry
    from ftbench.results.freshness import Freshness
    from ftbench.report.view import ReportTable, StudyReport
    from ftbench.suite.schema import Suite

__all__ = ["RunOutcome", "Study", "StudyReport", "ReportTable", "run", "load", "compare", "save_baseline",
           "reproduce", "load_suite", "with_loggers", "stale_lines", "RUN_COLUMNS"]

#: Columns of `Study.frame`: the report CSV's label columns and its `metric`/`value`
#: columns, with the run's seed, id and status between them.
RUN_COLUMNS: tuple[str, ...] = ("backbone", "dataset", "strategy", "data", "seed", "id", "status", "metric",
                                "value")


def __getattr__(name: str) -> Any:
    """`api.StudyReport` and `api.ReportTable` (ftbench.report.view), imported when first
    named: the report's statistics import scipy, which `import ftbench.api` does not."""
    if name in ("StudyReport", "ReportTable"):
        from ftbench.report import view

        return getattr(view, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _registry(registry: Registry | None, plugins: Sequence[str]) -> Registry:
    """`registry`, else the installed plugins plus `plugins`. Not made this process's
    registry: `run` leaves that to the driver, and loading or comparing changes nothing
    global."""
    from ftbench.plugins import Registry, make_plugin_manager

    return registry if registry is not None else Registry(make_plugin_manager(extra=tuple(plugins)))


def _override_args(overrides: Mapping[str, Any] | Iterable[str] | None) -> tuple[str, ...]:
    """`{"train.lr": 0.01}` or `["train.lr=0.01"]` as the CLI's `-o KEY=VALUE` strings."""
    if overrides is None:
        return ()
    if isinstance(overrides, Mapping):
        return tuple(f"{k}={json.dumps(v)}" for k, v in overrides.items())  # JSON is YAML flow syntax
    if isinstance(overrides, str):
        raise UserInputError(f"overrides must be a dict or a list of KEY=VALUE strings, not the string "
                             f"{overrides!r}; write [{overrides!r}]")
    return tuple(overrides)


def _only_labels(only: Mapping[str, Iterable[str] | str | int] | None) -> dict[str, set[str]]:
    """`{"strategy": ["lp-ft"], "seed": 0}` as the CLI's `--only` filters: label -> values as strings."""
    return {k: {str(v) for v in ([vs] if isinstance(vs, (str, int)) else vs)} for k, vs in (only or {}).items()}


# ------------------------------------------------------------------ run


def load_suite(suite_or_path: str | Path | Mapping[str, Any], *, overrides: Mapping[str, Any] | Iterable[str]
               | None = None, registry: Registry | None = None, plugins: Sequence[str] = (),
               environment: bool = True, device: str | None = None) -> Suite:
    """A validated suite from a YAML file's path or a dict of its keys, with
    `overrides` applied (`{"train.lr": 0.01}` or `["train.lr=0.01"]`), checked as
    `ftbench validate` checks it. Raises `ftbench.errors.SuiteError` listing every problem."""
    from ftbench.suite.load import load_suite as load_file, parse_suite

    registry = _registry(registry, plugins)
    args = _override_args(overrides)
    if isinstance(suite_or_path, Mapping):
        import yaml

        return parse_suite(yaml.safe_dump(dict(suite_or_path), sort_keys=False), "<dict>", registry, args,
                           environment=environment, device=device)
    return load_file(suite_or_path, registry, args, environment=environment, device=device)


@dataclass
class RunOutcome:
    """What `run` did: counts, the failed runs' records, where the records are."""

    suite: str
    results: Path
    planned: int
    skipped: int  # finished earlier (kept)
    ok: int
    failed: list[dict]  # records of runs that failed or diverged
    claimed_elsewhere: list[str]  # run ids held by another driver
    lost: list[str]  # ids an executor called done whose records are not in `results`
    stale: dict[str, str]  # finished runs kept although made by older code: id -> why
    search_failed: dict[str, str]  # searched cells where no trial finished: cell -> why
    raw: SuiteOutcome = field(repr=False)

    @property
    def succeeded(self) -> bool:
        """Every planned run is finished and ok (what `ftbench run` exits 0 for)."""
        return not (self.failed or self.claimed_elsewhere or self.search_failed or self.lost)

    def load(self) -> Study:
        """The results folder's records as a `Study`."""
        return load(self.results)


def run(suite_or_path: str | Path | Mapping[str, Any], results: str | Path | None = None,
        overrides: Mapping[str, Any] | Iterable[str] | None = None, jobs: int | None = None, *,
        executor: str | None = None, device: str | None = None, rerun: bool = False, rerun_stale: bool = False,
        only: Mapping[str, Iterable[str]] | None = None, quiet: bool = True, calibrate: bool = False,
        loggers: Sequence[str] = (), plugins: Sequence[str] = (), registry: Registry | None = None) -> RunOutcome:
    """Run every run of a suite not yet finished in `results` (default
    `results/<suite name>`), as `ftbench run` does: the same validation, claims,
    search and executors. `jobs` runs that many at once in a local process pool
    (`ftbench run -j`); without it, the suite's executor runs them (`executor`
    names another: `ftbench list executors`). `only` keeps the runs
    with these labels (`{"strategy": ["lp-ft"], "seed": ["0"]}`). `plugins` are
    importable modules loaded as plugins (`ftbench --plugin`). Failed runs do not
    raise: see `RunOutcome.failed`. A bad suite raises `ftbench.errors.SuiteError`.
    On Ctrl-C the KeyboardInterrupt propagates with `.results` set to the folder."""
    from ftbench.driver.suite_run import run_suite

    registry = _registry(registry, plugins)
    suite = load_suite(suite_or_path, overrides=overrides, registry=registry, device=device)
    suite = with_loggers(suite, loggers, registry)
    folder = Path(results) if results is not None else Path("results") / suite.name
    params = {}
    if jobs:
        executor = executor or "pool"
        params["workers"] = jobs
    subset = _only_labels(only)
    try:
        out = run_suite(suite, registry, folder, executor_name=executor, executor_params=params or None,
                        rerun=rerun, quiet=quiet, plugins=tuple(plugins), device=device, rerun_stale=rerun_stale,
                        only=subset or None, calibrate=calibrate)
    except KeyboardInterrupt as exc:
        exc.results = folder  # what the CLI says is kept
        raise
    return RunOutcome(suite.name, folder, out.planned, out.skipped, len(out.records) - len(out.failed),
                      out.failed, out.claimed_elsewhere, out.lost, out.stale, out.search_failed, out)


def with_loggers(suite: Suite, names: Sequence[str], registry: Registry) -> Suite:
    """`suite` plus the logger components `names` it does not enable already (default params)."""
    from ftbench.suite.schema import ComponentRef

    for name in names:
        registry.get("logger", name)
    have = {ref.name for ref in suite.loggers}
    extra = [ComponentRef(name=n) for n in dict.fromkeys(names) if n not in have]
    return suite.model_copy(update={"loggers": [*suite.loggers, *extra]}) if extra else suite


# ------------------------------------------------------------------ load


def _metric_rows(rec: dict) -> Iterable[tuple[str, float]]:
    """(metric, value) for every number a record measured: `test.acc`, `val.loss`,
    `shifted.<set>.acc`, `source.before.acc`, `time_to_target.seconds`,
    `timing.train_s`, `n_train`."""
    metrics = rec.get("metrics") or {}
    for split in ("test", "val"):
        for key, value in (metrics.get(split) or {}).items():
            if key not in ("n", "correct"):
                yield f"{split}.{key}", value
    for name, values in (metrics.get("shifted") or {}).items():
        for key, value in (values or {}).items():
            if key != "n":
                yield f"shifted.{name}.{key}", value
    for when in ("before", "after"):
        for key, value in ((metrics.get("source") or {}).get(when) or {}).items():
            if key != "n":
                yield f"source.{when}.{key}", value
    ttt = metrics.get("time_to_target") or {}
    if ttt.get("reached"):
        yield "time_to_target.seconds", ttt.get("seconds")
    for key, value in (rec.get("timing") or {}).items():
        yield f"timing.{key}", value
    if (n := (rec.get("data_amount") or {}).get("n_train")) is not None:
        yield "n_train", n


class Study:
    """A results folder's run records, read once (`load`).

    `records`: every valid record; `bad`: files skipped as invalid (path, why);
    `stale`: finished runs made by other code than installed (id -> why);
    `orphaned`: records their suite no longer plans; `fingerprints`: the machine
    fingerprints the ok runs ran on (id -> count); `frame`: the tidy DataFrame."""

    def __init__(self, results: str | Path, *, registry: Registry | None = None, plugins: Sequence[str] = ()):
        from ftbench.driver.plan import check_folder
        from ftbench.results.records import load_records

        self.results = Path(results)
        self.records = load_records(self.results, quiet=True)
        self._registry = lambda: _registry(registry, plugins)
        self.freshness: Freshness = check_folder(self.results, self._registry, self.records)

    def __repr__(self) -> str:
        return (f"Study({str(self.results)!r}: {len(self.records)} records, {self.n_failed} failed, "
                f"{len(self.stale)} stale, {len(self.bad)} bad)")

    @property
    def bad(self) -> list[tuple[Path, str]]:
        return list(self.records.skipped)

    @property
    def stale(self) -> dict[str, str]:
        return dict(self.freshness.stale)

    @property
    def orphaned(self) -> list[str]:
        return list(self.freshness.orphaned)

    @property
    def n_failed(self) -> int:
        return sum(r.get("status") != "ok" for r in self.records)

    @property
    def warnings(self) -> list[str]:
        """What `ftbench report` warns about this folder: stale, orphaned, invalid records."""
        lines = self.freshness.lines()
        if note := self.records.skipped_note():
            lines.insert(0, note)
        return lines

    @property
    def fingerprints(self) -> dict[str, int]:
        """Machine fingerprint id -> number of ok runs made on it (`ftbench reproduce` compares them)."""
        out: dict[str, int] = {}
        for rec in self.records:
            if rec.get("status") == "ok":
                fp = ((rec.get("env") or {}).get("fingerprint") or {}).get("id") or "unknown"
                out[fp] = out.get(fp, 0) + 1
        return out

    @cached_property
    def frame(self) -> pandas.DataFrame:
        """One row per run and metric, columns `RUN_COLUMNS` (as the report's CSV names
        its labels, metric and value). Failed runs are rows too (status != "ok")."""
        from ftbench.report.view import pandas_module

        pd = pandas_module()
        rows = []
        for rec in self.records:
            cell = rec.get("cell") or {}
            head = (*(str(cell.get(k, "")) for k in ("backbone", "dataset", "strategy", "data")), rec.get("seed"),
                    rec.get("id"), rec.get("status"))
            rows += [(*head, metric, float(value)) for metric, value in _metric_rows(rec)
                     if isinstance(value, (int, float)) and not isinstance(value, bool)]
        return pd.DataFrame(rows, columns=list(RUN_COLUMNS))

    def suite_yaml(self) -> str | None:
        """The suite's resolved config as saved beside the records (None without one)."""
        from ftbench.results.store import RESOLVED_SUITE

        path = self.results / RESOLVED_SUITE
        return path.read_text() if path.exists() else None

    def _saved_suite(self) -> dict | None:
        """The saved suite as a mapping (None without one, or when it is not one)."""
        import yaml

        text = self.suite_yaml()
        try:
            raw = yaml.safe_load(text) if text else None
        except yaml.YAMLError as exc:
            raise UserInputError(f"cannot read the saved suite of {self.results}: {exc}; rerun `ftbench run` "
                                 "to rewrite it") from exc
        return raw if isinstance(raw, dict) else None

    def primary(self) -> list[dict]:
        """The suite's declared primary comparisons (`primary:`), from its saved config."""
        primary = (self._saved_suite() or {}).get("primary")
        return primary if isinstance(primary, list) else []

    def runner_up(self) -> list[dict]:
        """The runs at uncertain cells' runner-up values (`search.final_top: 2`), if any."""
        from ftbench.results.records import load_records
        from ftbench.results.selection import RUNNER_UP_FOLDER

        folder = self.results / RUNNER_UP_FOLDER
        return list(load_records(folder, quiet=True)) if folder.is_dir() else []

    def plan(self) -> dict | None:
        """An adaptive study's plan (`plan.json`, ftbench.driver.adaptive), when the
        saved suite has adaptive seeds; a plan left from an earlier suite is ignored."""
        import json

        from ftbench.driver.adaptive import PLAN_FILE

        path = self.results / PLAN_FILE
        if not (isinstance((self._saved_suite() or {}).get("seeds"), dict) and path.exists()):
            return None
        try:
            plan = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserInputError(f"cannot read {path}: {exc}; rerun `ftbench run` to rewrite it") from exc
        return plan if isinstance(plan, dict) else None

    def report(self, *, baseline: str = "full", scratch: str = "scratch", interval: str = "t",
               test: str = "ttest", alpha: float = 0.05, metric: str = "acc", margin: float = 1.0,
               test_set: str = "include", selection_threshold: float | None = None) -> StudyReport:
        """Every table of `ftbench report` over these records, with the same options
        (`selection_threshold`: below it a searched cell's P(selected) is "selection
        uncertain"; default 0.8)."""
        from ftbench.report import build_report
        from ftbench.report.view import StudyReport
        from ftbench.results.provenance import report_notes

        built = build_report(list(self.records), baseline=baseline, scratch=scratch, interval=interval, test=test,
                             alpha=alpha, metric=metric, margin=margin, test_set=test_set, primary=self.primary(),
                             plan=self.plan(), runner_up=self.runner_up(),
                             **({} if selection_threshold is None else {"selection_threshold": selection_threshold}))
        built.table("summary").notes.extend(report_notes(self.records))  # hardware-dependent, near chance
        return StudyReport(built, self.suite_yaml(), f"ftbench report: {self.results.name}")

    def _repr_html_(self) -> str:
        return self.report()._repr_html_()


def load(results: str | Path, *, registry: Registry | None = None, plugins: Sequence[str] = ()) -> Study:
    """Read a results folder (as written by `run` or `ftbench run`) into a `Study`.
    Invalid record files are skipped and counted in `Study.bad`, never raised."""
    return Study(results, registry=registry, plugins=plugins)


# ------------------------------------------------------------------ compare


def compare(baseline: str | Path, current: str | Path, config: str | Path | None = None, *,
            allow_stale: bool = False, registry: Registry | Callable[[], Registry] | None = None,
            plugins: Sequence[str] = (), max_seeds: int | None = None,
            log: Callable[[str], None] = lambda line: None, **tolerances: Any) -> Comparison:
    """The regression gate's verdict on `current` against `baseline` (each a baseline
    file or a results folder), as `ftbench compare` judges it: `config` is its
    tolerance file, `tolerances` override it (acc_drop, alpha, speed_ratio, metric,
    fail_on_missing). `.failed` is the gate's answer; `ftbench.gate.render_terminal`
    prints it. A current folder with stale or orphaned records raises
    `UserInputError` unless `allow_stale` (then `warnings` on the result name them).
    `registry` (a Registry, or a callable that returns one) is built only when needed.
    With `max_seeds` (or `more_seeds:` in `config`) accuracy is judged sequentially on
    matched seeds, and the ambiguous cells of a `current` results folder get their
    next seeds, run there (`log` says how many), before the verdict (docs/ci.md).
    With `speed_reps:` in `config`, speed is judged on timing repetitions of the
    installed code (fresh processes that load the installed plugins plus `plugins`)
    against the baseline file's (`ftbench.gate.timed`)."""
    from ftbench import gate
    from ftbench.gate.extend import add_seeds, with_max_seeds
    from ftbench.gate.timed import gate_speed

    limits = gate.load_tolerances(config, **tolerances)
    if max_seeds is not None:
        limits = with_max_seeds(limits, max_seeds)
    lazy = registry if callable(registry) else (lambda: _registry(registry, plugins))  # built only if needed
    warnings = stale_lines(Path(current), lazy, allow_stale) if Path(current).is_dir() else []
    base = gate.load_side(baseline)
    comparison = gate.compare(base, gate.load_side(current), limits)
    if limits.more_seeds is not None and Path(current).is_dir():
        comparison = add_seeds(base, Path(current), limits, comparison, lazy(), log)
    if limits.speed_reps is not None:
        if not Path(current).is_dir():
            raise UserInputError("speed_reps times the installed code on CURRENT's suite: pass CURRENT as a "
                                 "results folder, not a baseline file")
        comparison = gate_speed(base, Path(current), limits, comparison, plugins=plugins, log=log)
    comparison.warnings = warnings
    return comparison


def save_baseline(results: str | Path, output: str | Path, *, speed_reps: int | None = None,
                  plugins: Sequence[str] = (), log: Callable[[str], None] = lambda line: None) -> dict:
    """Save the ok runs of the results folder `results` as a baseline file for
    `compare` at `output`, as `ftbench baseline save` does, and return what it wrote.
    With `speed_reps`, also that many timing repetitions of its cells with the
    installed code (fresh processes that load the installed plugins plus `plugins`;
    `log` says each), for a gate with `speed_reps:` (docs/ci.md)."""
    from ftbench import gate
    from ftbench.driver.calibrate import read_calibration
    from ftbench.results.records import load_records

    results = Path(results)
    if not results.is_dir():
        raise UserInputError(f"{results} is not a results folder; pass the folder `ftbench run` wrote")
    if speed_reps is not None and speed_reps < 2:
        raise UserInputError(f"speed_reps {speed_reps}: time at least 2 repetitions (10 is a good start)")
    records = load_records(results)
    speed = None
    if speed_reps:
        from ftbench.gate.speed import baseline_speed
        from ftbench.gate.timed import time_baseline

        log(f"timing {speed_reps} repetitions of {results}'s cells")
        speed = baseline_speed(time_baseline(results, speed_reps, plugins=plugins, log=log))
    return gate.save_baseline(records, output, read_calibration(results), speed)


# ------------------------------------------------------------------ reproduce


def reproduce(reference: str | Path, results: str | Path = "results/reproduce", *, seeds: Sequence[int] | None = None,
              only: Mapping[str, Iterable[str]] | None = None, margin: float | None = None, alpha: float = 0.05,
              jobs: int | None = None, resume: bool = False, quiet: bool = True, registry: Registry | None = None,
              plugins: Sequence[str] = ()) -> Reproduction:
    """Rerun the results folder `reference` into the fresh folder `results` and judge
    selection and training apart, as `ftbench reproduce` does: every seed equal where
    both share one machine fingerprint, no significant drop and means equivalent
    within a margin (TOST at `alpha`; `margin` points, else derived per cell)
    elsewhere. `seeds` and `only` (`{"strategy": ["full"]}`) rerun a subset; `jobs`
    runs that many at once. `.failed` is the verdict;
    `ftbench.gate.reproduce.render(reproduction)` prints it as the CLI does."""
    from ftbench.gate.reproduce import reproduce as rerun

    options: dict[str, Any] = {"quiet": quiet, "plugins": tuple(plugins)}
    if jobs:
        options.update(executor_name="pool", executor_params={"workers": jobs})
    subset = _only_labels(only)
    return rerun(Path(reference), Path(results), _registry(registry, plugins),
                 seeds=list(seeds) if seeds is not None else None, only=subset, margin=margin, alpha=alpha,
                 resume=resume, **options)


def stale_lines(current: Path, registry, allow: bool) -> list[str]:
    """What is not today's run of its suite in the folder `current`, a line each (empty
    when all is current); raises UserInputError for such records unless `allow`."""
    from ftbench.driver.plan import check_folder
    from ftbench.results.store import RESOLVED_SUITE

    fresh = check_folder(current, registry)
    out = []
    if fresh.planned is None and (current / RESOLVED_SUITE).exists():  # a suite, but not expandable here
        out.append(f"{current}: orphaned records cannot be told apart: {fresh.unknown}")
    lines = fresh.lines()
    if lines and not allow:
        raise UserInputError(f"CURRENT {current} holds records that are not today's runs of its suite, so a PASS "
                             "would not be about the code installed: " + "; ".join(lines)
                             + ". Rerun them, or pass --allow-stale to compare them anyway")
    return out + [f"{line} (compared anyway: --allow-stale)" for line in lines]
