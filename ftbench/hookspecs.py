"""Every hook ftbench calls, specs only. Implement them with `ftbench.hookimpl`.

Plugins arrive through the `ftbench` entry-point group (the built-in ones too) or
`--plugin module.path`. `docs/plugin_hooks.md` documents each hook; a test fails
when one is missing there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ftbench.components import Component

hookspec = pluggy.HookspecMarker("ftbench")

# ---------------------------------------------------------------- registration
# Called once when the plugin manager builds its registry (every CLI command that
# needs components). Each implementation returns the components it provides; all
# results are collected (not first-result). Two plugins returning one name is an
# error that names both providers.


@hookspec
def ftbench_register_backbones() -> list[Component]:
    """Return backbone components. Factory: `factory(params, *, num_classes, seed)`
    returning a `ftbench.components.Backbone`."""


@hookspec
def ftbench_register_datasets() -> list[Component]:
    """Return dataset components. Factory: `factory(params, *, seed)` returning a
    `ftbench.components.TaskData`."""


@hookspec
def ftbench_register_strategies() -> list[Component]:
    """Return strategy components. Factory: `factory(params)` returning a
    `ftbench.components.Strategy`."""


@hookspec
def ftbench_register_executors() -> list[Component]:
    """Return executor components. Factory: `factory(params)` returning an object
    with `map(run_one, payloads)` that yields finished records
    (`ftbench.components.Executor`; payloads are `ftbench.driver.worker.Payload`)."""


@hookspec
def ftbench_register_reporters() -> list[Component]:
    """Return reporter components (extra `ftbench report --format` choices).
    Factory: `factory(params)` returning a callable(report: dict) -> str."""


@hookspec
def ftbench_register_loggers() -> list[Component]:
    """Return logger components (experiment trackers a suite enables under
    `loggers:` or `ftbench run --logger NAME`). Factory: `factory(params, *, results)`
    (`results`: the suite's results folder, a `Path`) returning
    an object whose `@ftbench.hookimpl` methods implement lifecycle hooks; the driver
    registers it for the suite's duration only."""


# ---------------------------------------------------------------- lifecycle
# Called in the process that runs the work; every implementation is called and
# return values are ignored. Loggers and metric sinks listen here. With a process
# pool, run/epoch/evaluation hooks fire in the worker process.


@hookspec
def ftbench_suite_start(suite: Any, runs: list[Any]) -> None:
    """Called before the first run of `ftbench run`. `suite` is the validated
    `ftbench.suite.Suite`; `runs` the expanded `RunSpec`s still to run."""


@hookspec
def ftbench_suite_end(suite: Any, records: list[dict]) -> None:
    """Called after the last run; `records` are the records written this time."""


@hookspec
def ftbench_run_start(spec: Any) -> None:
    """Called when a run starts, with its `RunSpec`."""


@hookspec
def ftbench_run_end(spec: Any, record: dict) -> None:
    """Called after a run's record is written (status ok, failed or diverged)."""


@hookspec
def ftbench_run_collected(suite: Any, record: dict) -> None:
    """Called in the driver process when the executor hands back a finished run's
    record, whichever process or machine ran it."""


@hookspec
def ftbench_epoch_end(spec: Any, epoch: int, metrics: dict) -> None:
    """Called after each training epoch with that epoch's metrics (train loss,
    val accuracy when there is a val split, steps, samples, seconds)."""


@hookspec
def ftbench_evaluation(spec: Any, split: str, metrics: dict) -> None:
    """Called after each final evaluation: `split` is "test", "val",
    "shift:<name>", "source:before", "source:after" or "variant:<label>"."""
