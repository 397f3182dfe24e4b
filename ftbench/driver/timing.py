"""Timing repetitions for the sequential speed gate (`ftbench.gate.speed`).

One repetition is one fresh Python process (`python -m ftbench.driver.timing`) that
times, alternately, the calibration loop (`driver.calibrate`: plain PyTorch, no
ftbench code) and one run of each cell, A B A B ... A:

    cal, run(cell 1), cal, run(cell 2), cal, ..., run(cell m), cal

Each cell's measurement is log(run samples/s) minus the mean log speed of the two
calibrations around it: a busy machine slows both, a slower ftbench only the run.
A fresh process per repetition makes repetitions independent: a process's own luck
(where its memory landed, which core it started on) is drawn again each time
instead of shifting every repetition alike. A run is the cell's first seed, written
to a scratch folder that is then removed: timing keeps no records.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ftbench.driver.search import cell_key
from ftbench.errors import FtbenchError, UserInputError
from ftbench.suite.runs import RunSpec

REPEAT_MARK = "FTBENCH-TIMING "  # the line of a repetition's output that holds its JSON


@dataclass(frozen=True)
class Repetition:
    """One repetition: per cell (its labels), log(run / calibration) samples/s, and the
    machine it ran on (`speed_machine`)."""

    log_ratios: dict[tuple[str, ...], float]
    machine: str


def speed_machine(device: str, threads: int) -> str:
    """What a speed comparison must hold equal: the CPU model (or GPU name) and the
    thread count. The calibration loop cancels load, not another processor's mix of
    strengths, so repetitions from two machines are not compared."""
    from ftbench import fingerprint as fp_mod

    fp = fp_mod.fingerprint(device, threads)
    cpu = fp.get("cpu") or {}
    where = (fp.get("gpu") or {}).get("name") or "cpu"
    return f"{cpu.get('vendor') or '?'} {cpu.get('model') or '?'}, {where}, {threads} thread{'s' * (threads != 1)}"


def timing_specs(suite, registry, cells: Sequence[tuple[str, ...]] | None = None) -> list[RunSpec]:
    """One run per cell (its first seed), in the suite's order; only `cells` when given."""
    from ftbench.suite.expand import expand

    first: dict[tuple[str, ...], RunSpec] = {}
    for spec in expand(suite, registry):
        key = cell_key(spec.cell)
        if (cells is None or key in cells) and (key not in first or spec.seed < first[key].seed):
            first[key] = spec
    return list(first.values())


def time_once(specs: list[RunSpec], registry) -> Repetition:
    """One repetition in this process (module docstring): calibration and runs alternate."""
    import torch

    from ftbench.driver.calibrate import bare_loop_samples_per_s
    from ftbench.engine.environment import resolve_device
    from ftbench.engine.runner import execute
    from ftbench.results.store import ResultsStore

    threads = specs[0].threads
    device = str(resolve_device(specs[0].device))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # the loop runs with the runs' threads (execute sets them per run)
    cal = lambda: math.log(bare_loop_samples_per_s(device=device))  # noqa: E731
    out: dict[tuple[str, ...], float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="ftbench-timing-") as scratch:
            store = ResultsStore(Path(scratch))
            a = cal()
            for spec in specs:
                record = execute(spec, registry, store)
                if record.get("status") != "ok":
                    error = (record.get("error") or {}).get("message", "?")
                    raise FtbenchError(f"timing run {'/'.join(cell_key(spec.cell))} seed {spec.seed} "
                                       f"{record.get('status')}: {error}")
                torch.set_num_threads(threads)
                b = cal()
                speed = (record.get("timing") or {}).get("samples_per_s")
                if not speed or speed <= 0:
                    raise FtbenchError(f"timing run {'/'.join(cell_key(spec.cell))} recorded no samples/s")
                out[cell_key(spec.cell)] = math.log(speed) - (a + b) / 2
                a = b
    finally:
        torch.set_num_threads(before)
    return Repetition(out, speed_machine(device, threads))


def time_repetitions(suite_path: Path, reps: int, *, cells: Sequence[tuple[str, ...]] | None = None,
                     plugins: Sequence[str] = (), registry=None, fresh_process: bool = True,
                     log: Callable[[str], None] = lambda line: None) -> list[Repetition]:
    """`reps` repetitions of the suite file's cells (`cells` only, when given), each in
    a fresh process (module docstring) that loads the installed plugins plus `plugins`.
    `fresh_process=False` times in this process with `registry` (tests: cheap, but
    its repetitions share the process's luck)."""
    out = []
    for i in range(reps):
        if fresh_process:
            out.append(_in_child(suite_path, cells, plugins))
        else:
            from ftbench.suite.load import load_suite

            suite = load_suite(suite_path, registry)
            out.append(time_once(timing_specs(suite, registry, cells), registry))
        log(f"  timing repetition {i + 1}/{reps}, run/calibration samples/s: " + ", ".join(
            f"{'/'.join(k[2:])} {math.exp(v):.3g}" for k, v in out[-1].log_ratios.items()))
    return out


def _in_child(suite_path: Path, cells: Sequence[tuple[str, ...]] | None, plugins: Sequence[str]) -> Repetition:
    args = {"suite": str(suite_path), "cells": [list(c) for c in cells] if cells is not None else None,
            "plugins": list(plugins)}
    done = subprocess.run([sys.executable, "-m", "ftbench.driver.timing", json.dumps(args)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))})
    lines = [line for line in done.stdout.splitlines() if line.startswith(REPEAT_MARK)]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise FtbenchError(f"a timing repetition failed (exit {done.returncode}): {tail}")
    data = json.loads(lines[-1][len(REPEAT_MARK):])
    return Repetition({tuple(k.split("\t")): v for k, v in data["log_ratios"].items()}, data["machine"])


def _main(argv: list[str]) -> int:
    """The child process: one repetition, printed as one marked JSON line."""
    from ftbench import numerics
    from ftbench.plugins import Registry, make_plugin_manager, use_registry
    from ftbench.suite.load import load_suite

    args = json.loads(argv[0])
    registry = Registry(make_plugin_manager(extra=tuple(args["plugins"])))
    use_registry(registry)
    cells = [tuple(c) for c in args["cells"]] if args["cells"] is not None else None
    suite = load_suite(args["suite"], registry)
    numerics.apply(suite.numerics)  # before torch computes: the runs' numbers and speed are the suite's
    specs = timing_specs(suite, registry, cells)
    if not specs:
        raise UserInputError(f"{args['suite']}: no cell to time")
    rep = time_once(specs, registry)
    print(REPEAT_MARK + json.dumps({"log_ratios": {"\t".join(k): v for k, v in rep.log_ratios.items()},
                                    "machine": rep.machine}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
