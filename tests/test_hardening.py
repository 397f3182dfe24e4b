"""Crashes, signals and bad input (issue 15): the pool executor, the store and the
parser never lose work and never print a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.store import ResultsStore, load_records

ROOT = Path(__file__).parents[1]
PLUGINS = ("tests.toyplugin", "tests.hardplugin")
BASE = {"name": "hard", "backbones": [{"name": "toy-timm"}], "datasets": [{"name": "toy"}],
        "strategies": [{"name": "toy-full"}], "seeds": [0], "budget": {"steps": 2}, "train": {"batch_size": 16}}


def invoke(*args):
    plugins = [a for p in PLUGINS for a in ("--plugin", p)]
    return CliRunner().invoke(cli, [*plugins, *args], obj={})


def suite_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}))
    return path


def _cli_process(*args, env=None) -> subprocess.Popen:
    plugins = [a for p in PLUGINS for a in ("--plugin", p)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "ftbench", *plugins, *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# ---------------------------------------------------------------- 1, 3, 4: the pool executor


def test_a_dying_worker_fails_only_its_own_run_and_the_queue_goes_on(tmp_path):
    path = suite_file(tmp_path, strategies=[{"name": "die"}, {"name": "toy-full"}], seeds=[0, 1])
    result = invoke("run", str(path), "--results", str(tmp_path / "r"), "-q", "-j", "2")
    assert result.exit_code == 1, result.output
    records = load_records(tmp_path / "r")
    assert len(records) == 4
    by_status = {}
    for r in records:
        by_status.setdefault((r["cell"]["strategy"], r["status"]), []).append(r)
    assert {k: len(v) for k, v in by_status.items()} == {("toy-full", "ok"): 2, ("die", "failed"): 2}
    for r in by_status[("die", "failed")]:  # one retry (the default), then failed
        assert r["error"]["type"] == "WorkerLost" and "died 2 time(s)" in r["error"]["message"]
    assert not list((tmp_path / "r").glob("*.claim"))


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_pool_stops_now_releases_claims_and_leaves_no_worker(tmp_path, signum, code):
    pids = tmp_path / "pids"
    pids.mkdir()
    path = suite_file(tmp_path, strategies=[{"name": "sleep", "params": {"seconds": 60}}], seeds=[0, 1, 2, 3])
    proc = _cli_process("run", str(path), "--results", str(tmp_path / "r"), "-q", "-j", "2",
                        env={"FTBENCH_TEST_PIDS": str(pids)})
    try:
        assert _wait_for(lambda: len(list(pids.iterdir())) == 2, 120), proc.communicate(timeout=5)
        workers = [int(p.name) for p in pids.iterdir()]
        t0 = time.time()
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == code, out
        assert time.time() - t0 < 10 and "Traceback" not in out
        assert ("terminated" if signum == signal.SIGTERM else "interrupted") + ": finished runs are kept" in out
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 5)
        assert not list((tmp_path / "r").glob("*.claim")) and not list((tmp_path / "r").glob("*.json"))
    finally:
        proc.kill()


def test_workers_exit_when_their_driver_is_killed(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    path = suite_file(tmp_path, strategies=[{"name": "sleep", "params": {"seconds": 60}}], seeds=[0, 1])
    proc = _cli_process("run", str(path), "--results", str(tmp_path / "r"), "-q", "-j", "2",
                        env={"FTBENCH_TEST_PIDS": str(pids)})
    try:
        assert _wait_for(lambda: len(list(pids.iterdir())) == 2, 120), proc.communicate(timeout=5)
        workers = [int(p.name) for p in pids.iterdir()]
        proc.kill()
        proc.wait()
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 5)
    finally:
        proc.kill()
