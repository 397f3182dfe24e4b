"""The distributed executors: `ray` on a local Ray, `slurm` through submitit's local
cluster. They give the sequential executor's records, retry a run whose worker was
killed, and two drivers on one results folder never run a run twice.

This module is also a plugin, loaded by the workers (`tests.test_executors_dist`):
a strategy that kills its worker process once, and a listener that logs run starts.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time

import pytest
import yaml
from click.testing import CliRunner

import ftbench
from ftbench.cli import cli
from ftbench.components import Component, Params, Strategy
from ftbench.driver.worker import CLAIMED_ELSEWHERE, Payload, abandon_attempt, run_attempt, run_payload
from ftbench.driver.suite_run import run_suite
from ftbench.plugins import Registry, make_plugin_manager, use_registry
from ftbench.results.records import load_records
from ftbench.suite import expand, load_suite

PLUGINS = ("tests.toyplugin", "tests.test_executors_dist", "ftbench_ray", "ftbench_slurm")
STARTS_ENV = "FTBENCH_TEST_RUN_STARTS"  # file the listener appends run ids to

SUITE = {
    "name": "dist",
    "backbones": [{"name": "toy-timm"}],
    "datasets": [{"name": "toy"}],
    "strategies": [{"name": "toy-full"}, {"name": "toy-full", "label": "sgd", "train": {"optimizer": "sgd", "lr": 0.05}}],
    "seeds": [0, 1],
    "budget": {"steps": 3},
    "train": {"batch_size": 16},
}


# ---------------------------------------------------------------- the plugin side


class CrashOnceParams(Params):
    marker: str


class CrashOnce(Strategy):
    """Trains like toy-full, except that the first run to reach a training step
    with a fresh `marker` kills its process there (as the OOM killer would)."""

    def __init__(self, params: CrashOnceParams):
        self.marker, self.checked = params.marker, False

    def penalty(self, model, images, logits, labels):
        if not self.checked:
            self.checked = True
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return None
            os._exit(1)
        return None


@ftbench.hookimpl
def ftbench_register_strategies():
    return [Component("crash-once", CrashOnce, CrashOnceParams, "Kills its worker once (tests).")]


@ftbench.hookimpl
def ftbench_run_start(spec):
    path = os.environ.get(STARTS_ENV)
    if path:
        with open(path, "a") as fh:  # one short append per line: atomic enough for this log
            fh.write(spec.id + "\n")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def starts_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("starts") / "starts.txt"
    os.environ[STARTS_ENV] = str(path)  # before Ray starts: its workers inherit it
    yield path
    os.environ.pop(STARTS_ENV, None)


@pytest.fixture(scope="module")
def registry():
    reg = Registry(make_plugin_manager(extra=PLUGINS))
    yield reg
    use_registry(None)


@pytest.fixture(scope="module")
def local_ray(starts_log):
    """One local Ray for the module (starting one takes seconds), started the way
    the executor starts its own; the executor then uses it as it finds it."""
    ray = pytest.importorskip("ray")
    from ftbench_ray import RayExecutor, RayParams

    assert RayExecutor(RayParams())._connect(ray) and ray.is_initialized()
    yield ray
    ray.shutdown()


def _suite_file(tmp_path, **changes):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**SUITE, **changes}))
    return path


def _run(registry, tmp_path, results, **changes):
    suite = load_suite(_suite_file(tmp_path, **changes), registry)
    return run_suite(suite, registry, results, quiet=True, plugins=PLUGINS)


def _metrics(folder) -> dict:
    """(strategy's computation, seed) -> (test metrics, last train loss); crash-once
    trains exactly like toy-full."""
    out = {}
    for r in load_records(folder):
        assert r["status"] == "ok", r["error"]
        strategy = "toy-full" if r["cell"]["strategy"] == "crash-once" else r["cell"]["strategy"]
        out[(strategy, r["seed"])] = (r["metrics"]["test"], r["metrics"]["curve"][-1]["train_loss"])
    return out


@pytest.fixture(scope="module")
def sequential(registry, tmp_path_factory):
    """The reference: the suite run in this process, on one torch thread (conftest)."""
    tmp = tmp_path_factory.mktemp("seq")
    outcome = _run(registry, tmp, tmp / "res")
    assert len(outcome.records) == 4
    return _metrics(tmp / "res")


def _assert_same(metrics: dict, reference: dict) -> None:
    for key, (test, loss) in metrics.items():
        assert test["acc"] == pytest.approx(reference[key][0]["acc"], abs=1e-6), key
        assert loss == pytest.approx(reference[key][1], rel=1e-4), key


def _assert_clean(folder) -> None:
    """No claim, attempt note or temporary file left behind."""
    leftovers = [p.name for p in folder.iterdir() if p.suffix in (".claim", ".attempt", ".tmp")]
    assert leftovers == []


# ---------------------------------------------------------------- claims across nodes


def test_a_retry_on_another_node_takes_over_the_claim_its_dead_attempt_left(registry, tmp_path):
    suite = load_suite(_suite_file(tmp_path, strategies=SUITE["strategies"][:1], seeds=[0]), registry)
    spec = expand(suite, registry)[0]
    out = tmp_path / "res"
    out.mkdir()
    payload = Payload(spec, out, PLUGINS)
    claim, note = out / f"{spec.id}.claim", out / f".{spec.id}.tok.attempt"
    dead = json.dumps({"host": "node-7", "pid": 4242})
    claim.write_text(dead)
    use_registry(registry)
    assert run_payload(payload)["status"] == CLAIMED_ELSEWHERE  # another host's pid cannot be checked from here

    note.write_text(dead)  # ...but this submission's earlier attempt noted that it was the owner
    assert run_attempt(run_payload, payload, "tok")["status"] == "ok"
    _assert_clean(out)

    claim.write_text(json.dumps({"host": "node-8", "pid": 1}))  # someone else's claim is kept
    note.write_text(dead)
    abandon_attempt(payload, "tok")
    assert claim.exists() and not note.exists()
    claim.write_text(dead)
    note.write_text(dead)
    abandon_attempt(payload, "tok")
    assert not claim.exists()


# ---------------------------------------------------------------- ray


def test_ray_through_the_cli_matches_sequential(local_ray, sequential, tmp_path):
    path = _suite_file(tmp_path)
    out = tmp_path / "res"
    args = ["--plugin", "tests.toyplugin", "--plugin", "ftbench_ray", "run", str(path), "--executor", "ray",
            "--results", str(out), "-q"]
    result = CliRunner().invoke(cli, args, obj={})
    assert result.exit_code == 0, result.output
    assert "dist: 4 runs; 0 already finished, 4 ok, 0 failed" in result.output
    metrics = _metrics(out)
    assert metrics.keys() == sequential.keys()
    _assert_same(metrics, sequential)
    # the suite's `threads:` (default 1), not Ray's num_cpus, sets each run's threads: results match
    assert {(r["env"]["threads"], r["env"]["device_name"].endswith("cpu (1 threads)"))
            for r in load_records(out)} == {(1, True)}
    _assert_clean(out)
    assert local_ray.is_initialized()  # a Ray the executor did not start is left running


def test_ray_without_a_shared_folder_the_driver_claims_and_writes(local_ray, registry, sequential, tmp_path):
    out = tmp_path / "res"
    held = expand(load_suite(_suite_file(tmp_path), registry), registry)[0].id
    out.mkdir()
    (out / f"{held}.claim").write_text(f'{{"pid": {os.getppid()}, "host": "{os.uname().nodename}"}}')

    outcome = _run(registry, tmp_path, out, executor={"name": "ray", "params": {"shared_fs": False}})
    assert outcome.claimed_elsewhere == [held] and len(outcome.records) == 3
    assert not (out / f"{held}.json").exists()
    _assert_same(_metrics(out), sequential)
    (out / f"{held}.claim").unlink()
    _assert_clean(out)


def test_two_drivers_on_one_folder_never_run_a_run_twice(local_ray, registry, starts_log, tmp_path):
    """A Ray driver and a sequential driver start on the same suite and folder."""
    out = tmp_path / "res"
    starts_log.write_text("")
    outcomes = {}

    def drive(name: str, executor: str) -> None:  # runs long enough for the drivers to overlap
        outcomes[name] = _run(registry, tmp_path, out, executor={"name": executor}, budget={"steps": 40})

    ray_driver = threading.Thread(target=drive, args=("ray", "ray"))
    ray_driver.start()
    deadline = time.time() + 60
    while not (out / "suite.resolved.yaml").exists() and time.time() < deadline:
        time.sleep(0.01)  # the second driver starts once the first is submitting runs
    drive("sequential", "sequential")
    ray_driver.join(120)

    records = load_records(out)
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    starts = collections.Counter(starts_log.read_text().split())
    assert starts == {r["id"]: 1 for r in records}  # each run executed exactly once
    for outcome in outcomes.values():  # each driver saw every run: its record, or another driver's claim
        seen = {r["id"] for r in outcome.records} | set(outcome.claimed_elsewhere)
        assert seen == {r["id"] for r in records}
    _assert_clean(out)


def test_ray_retries_a_killed_worker_then_records_one_that_keeps_dying(local_ray, registry, sequential, tmp_path):
    crash = {"name": "crash-once", "params": {"marker": str(tmp_path / "crashed-a")}}
    out = tmp_path / "retried"
    outcome = _run(registry, tmp_path, out, strategies=[crash], seeds=[0],
                   executor={"name": "ray", "params": {"max_retries": 1}})
    assert (tmp_path / "crashed-a").exists()  # it did die once
    assert [r["status"] for r in outcome.records] == ["ok"]
    _assert_same(_metrics(out), sequential)
    _assert_clean(out)

    crash["params"]["marker"] = str(tmp_path / "crashed-b")
    out = tmp_path / "lost"
    outcome = _run(registry, tmp_path, out, strategies=[crash], seeds=[0],
                   executor={"name": "ray", "params": {"max_retries": 0}})
    [record] = outcome.records
    assert record["status"] == "failed" and record["error"]["type"] == "WorkerLost"
    assert "its Ray worker died 1 time(s)" in record["error"]["message"]
    assert load_records(out)[0]["status"] == "failed"
    _assert_clean(out)


# ---------------------------------------------------------------- slurm (submitit's local cluster)


def test_slurm_local_jobs_match_sequential_and_a_killed_job_is_resubmitted(registry, sequential, tmp_path):
    pytest.importorskip("submitit")
    crash = {"name": "crash-once", "params": {"marker": str(tmp_path / "crashed")}}
    out = tmp_path / "res"
    outcome = _run(registry, tmp_path, out, strategies=[SUITE["strategies"][0], crash], seeds=[0],
                   executor={"name": "slurm", "params": {"cluster": "local", "poll_s": 0.2, "retries": 1}})
    assert (tmp_path / "crashed").exists()
    assert len(outcome.records) == 2 and {r["status"] for r in outcome.records} == {"ok"}
    _assert_same(_metrics(out), sequential)
    assert len(list((out / ".submitit").glob("*_submitted.pkl"))) == 3  # 2 runs, one of them twice
    _assert_clean(out)
