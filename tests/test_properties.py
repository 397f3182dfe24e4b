"""Property tests (hypothesis): generated suites never make `ftbench validate` print a
traceback, generated record corruptions never crash report, compare or status, and
runs killed at random times end recorded exactly once, equal to an uninterrupted run."""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftbench.cli import cli
from ftbench.results.records import load_records
from tests.test_hardening import BASE, PLUGINS, ROOT, invoke, suite_file


def fast(examples: int):
    """Few examples, no deadline (the machine is shared): each example runs the CLI."""
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def registry():
    from ftbench.plugins import Registry, make_plugin_manager, use_registry

    reg = Registry(make_plugin_manager(extra=PLUGINS))
    yield reg
    use_registry(None)


def _invoke_with(registry, *args):
    """The CLI with one registry for every example (building one takes a second)."""
    return CliRunner().invoke(cli, list(args), obj={"plugins": PLUGINS, "registry": registry})


def _no_crash(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.output + "".join(__import__("traceback").format_exception(*result.exc_info))
    assert "Traceback" not in result.output, result.output


# ---------------------------------------------------------------- suites

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=8)
KEY_PATHS = [("name",), ("seeds",), ("seeds", 0), ("budget",), ("budget", "steps"), ("budget", "seconds"),
             ("budget", "epochs"), ("strategies",), ("strategies", 0), ("strategies", 0, "params"),
             ("strategies", 0, "train"), ("datasets", 0), ("datasets", 0, "params"), ("backbones", 0, "name"),
             ("data",), ("train",), ("train", "lr"), ("eval",), ("exclude",), ("executor",), ("pretrain",),
             ("device",), ("extra",)]


def _set(tree, path, value):
    """Put `value` at `path` in the suite, where that path still exists."""
    for key in path[:-1]:
        try:
            tree = tree[key]
        except (KeyError, IndexError, TypeError):
            return
    try:
        tree[path[-1]] = value
    except (IndexError, TypeError):
        pass


@fast(60)
@given(changes=st.lists(st.tuples(st.sampled_from(KEY_PATHS), values), max_size=4),
       raw=st.one_of(st.none(), st.text(max_size=60), st.binary(max_size=40)))
def test_validate_never_prints_a_traceback(registry, tmp_path_factory, changes, raw):
    path = tmp_path_factory.mktemp("suite") / "s.yaml"
    suite = copy.deepcopy(BASE)
    for where, value in changes:
        _set(suite, where, value)
    if raw is None:
        path.write_text(yaml.safe_dump(suite, allow_unicode=True))
    else:
        path.write_bytes(raw.encode() if isinstance(raw, str) else raw)
    result = _invoke_with(registry, "validate", str(path), "--results", str(path.parent / "r"))
    _no_crash(result)
    assert result.exit_code in (0, 2), result.output


# ---------------------------------------------------------------- records


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finished")
    path = suite_file(tmp, strategies=[{"name": "toy-full"}, {"name": "toy-full", "label": "b",
                                                              "train": {"lr": 0.01}}], seeds=[0, 1])
    assert invoke("run", str(path), "--results", str(tmp / "r"), "-q").exit_code == 0
    return tmp / "r"


def _paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _paths(v, prefix + (i,))


@fast(25)
@given(data=st.data())
def test_corrupted_records_never_crash_report_compare_or_status(registry, finished, tmp_path_factory, data):
    out = tmp_path_factory.mktemp("corrupt") / "r"
    shutil.copytree(finished, out)
    victims = sorted(out.glob("*.json"))
    for victim in data.draw(st.lists(st.sampled_from(victims), min_size=1, max_size=2, unique=True)):
        record = json.loads(victim.read_text())
        where = data.draw(st.sampled_from([p for p in _paths(record) if p]))
        value = data.draw(values)
        parent = record
        for key in where[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = value
        victim.write_text(json.dumps(record))
    for args in (["report", str(out)], ["compare", str(finished), str(out)], ["compare", str(out), str(finished)],
                 ["status", str(out)]):
        result = _invoke_with(registry, *args)
        _no_crash(result)


# ---------------------------------------------------------------- kill loop

KILL_SUITE = {**BASE, "strategies": [{"name": "toy-full"}, {"name": "toy-full", "label": "sgd",
                                                            "train": {"optimizer": "sgd", "lr": 0.05}}],
              "seeds": [0, 1, 2], "budget": {"steps": 6}}
# Each iteration starts a driver (and, with -j 2, two workers): seconds each on an idle
# 2-core machine. 10 iterations exceed the test-time budget; FTBENCH_KILL_ITERATIONS=10
# runs the full loop.
ITERATIONS = int(os.environ.get("FTBENCH_KILL_ITERATIONS", "4"))


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _metrics(folder: Path) -> dict:
    return {r["id"]: (r["status"], r["metrics"]["test"]["acc"], r["metrics"]["curve"][-1]["train_loss"])
            for r in load_records(folder)}


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds worker processes through Linux /proc")
def test_runs_killed_at_random_times_end_recorded_once_and_equal_to_an_uninterrupted_run(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(KILL_SUITE))
    assert invoke("run", str(path), "--results", str(tmp_path / "ref"), "-q").exit_code == 0
    reference = _metrics(tmp_path / "ref")
    out = tmp_path / "r"
    rng = random.Random(15)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    plugins = [a for p in PLUGINS for a in ("--plugin", p)]
    for i in range(ITERATIONS):
        pool = i % 2 == 1
        victim = "worker" if pool and i % 4 == 3 else "driver"
        cmd = [sys.executable, "-m", "ftbench", *plugins, "run", str(path), "--results", str(out), "-q"]
        proc = subprocess.Popen(cmd + (["-j", "2"] if pool else []), env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120  # wait until it works (a run is claimed), then a random moment more
            while not list(out.glob("*.claim")) and proc.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 1.5))
            workers = _children(proc.pid)
            if victim == "worker" and workers:
                os.kill(rng.choice(workers), signal.SIGKILL)
                proc.wait(timeout=120)  # the driver retries that run and goes on
            else:
                proc.kill()
                proc.wait()
                for w in workers:  # they end with their driver
                    deadline = time.time() + 5
                    while Path(f"/proc/{w}").exists() and Path(f"/proc/{w}/stat").read_text().split()[2] != "Z" \
                            and time.time() < deadline:
                        time.sleep(0.05)
                    assert time.time() < deadline, f"worker {w} outlived its driver"
        finally:
            proc.kill()
            proc.wait()
        for record in out.glob("*.json"):  # whatever is on disk is a whole record
            assert json.loads(record.read_text())["id"] == record.stem
    result = invoke("run", str(path), "--results", str(out), "-q")
    assert result.exit_code == 0, result.output
    # A process killed between writing its record and releasing its claim leaves a
    # stale claim (dead pid) on a finished run: harmless, nothing holds it.
    from ftbench.results.store import ResultsStore

    assert ResultsStore(out).claims() == {} and not list(out.glob(".*.tmp"))
    current = _metrics(out)
    assert current.keys() == reference.keys()
    for run_id, (status, acc, loss) in reference.items():
        assert current[run_id][0] == status == "ok"
        assert current[run_id][1] == pytest.approx(acc, abs=1e-6)
        assert current[run_id][2] == pytest.approx(loss, rel=1e-4)


def test_a_version_that_is_not_a_string_makes_the_record_bad_not_a_crash(registry, finished, tmp_path):
    """The example hypothesis found: env.python = [] reached the gate's set of versions
    (unhashable) once env became a model that lets unknown keys through."""
    out = tmp_path / "r"
    shutil.copytree(finished, out)
    victim = sorted(out.glob("*.json"))[0]
    record = json.loads(victim.read_text())
    record["env"]["python"] = []
    victim.write_text(json.dumps(record))
    for args in (["report", str(out)], ["compare", str(finished), str(out)], ["compare", str(out), str(finished)],
                 ["status", str(out)]):
        _no_crash(_invoke_with(registry, *args))
