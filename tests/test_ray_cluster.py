"""A real two-node Ray cluster, started the way a user starts one (`ray start --head`,
then `ray start --address` for a second raylet), from another folder than the
driver's: a relative `--results` folder must still receive every record, in the
driver's folder. Tests that start Ray inside the driver (`ray.init()`) cannot see
this: their workers inherit the driver's working directory.

The cluster is this test's own: its own ports and temporary folder, stopped by
killing the process groups it started (never `ray stop`, which stops every Ray on
the machine).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.results.records import load_records

pytestmark = pytest.mark.slow

SUITE = {
    "name": "cluster",
    "backbones": [{"name": "timm", "params": {"model": "test_resnet", "pretrained": "none", "input_size": 16}}],
    "datasets": [{"name": "digits"}],
    "strategies": [{"name": "full"}],
    "seeds": [0, 1],
    "data": [{"shots": 5}],
    "budget": {"steps": 3},
    "train": {"batch_size": 16},
    "eval": {"curve": False},
    "threads": 1,
    "device": "cpu",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_ports() -> list[str]:
    """Ports a raylet's agents would otherwise take from fixed defaults, which a second
    raylet on this machine (or another user's Ray) would collide with."""
    return [f"--{name}={_free_port()}" for name in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                                     "metrics-export-port", "runtime-env-agent-port")]


def _started(log: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while "Ray runtime started" not in log.read_text():
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"`ray start` did not start ({log}):\n{log.read_text()[-3000:]}")
        time.sleep(0.25)


@contextlib.contextmanager
def two_node_cluster(folder: Path, env: dict[str, str]):
    """(GCS address) of a head and a worker raylet started with `ray start --block`
    from `folder`; both process groups are killed on the way out."""
    ray = str(Path(sys.executable).parent / "ray")
    temp = tempfile.mkdtemp(prefix="ftr", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    common = ["--block", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats", "--include-log-monitor=false"]
    head_cmd = [ray, "start", "--head", f"--port={port}", f"--ray-client-server-port={_free_port()}",
                "--include-dashboard=false", f"--dashboard-port={_free_port()}", f"--temp-dir={temp}",
                *common, *_node_ports()]
    worker_cmd = [ray, "start", f"--address=127.0.0.1:{port}", *common, *_node_ports()]
    started: list[subprocess.Popen] = []
    try:
        for name, cmd in (("head", head_cmd), ("worker", worker_cmd)):
            log = folder / f"{name}.log"
            with open(log, "w") as out:
                started.append(subprocess.Popen(cmd, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                                                start_new_session=True))
            _started(log, started[-1])
        yield f"127.0.0.1:{port}"
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its raylet, GCS, agents and workers
            process.wait()
        subprocess.run(["rm", "-rf", temp], check=False)


def _alive_nodes(address: str) -> int:
    import ray

    ray.init(address=address, logging_level="WARNING")
    try:
        deadline = time.time() + 60
        while len(alive := [n for n in ray.nodes() if n["Alive"]]) < 2 and time.time() < deadline:
            time.sleep(0.2)
        return len(alive)
    finally:
        ray.shutdown()


def test_a_relative_results_folder_gets_every_record_from_a_two_node_cluster(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    nodes, driver = tmp_path / "nodes", tmp_path / "driver"
    nodes.mkdir()
    driver.mkdir()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # Ray 2.5x: `ray start` clusters ask for a token by default
    with two_node_cluster(nodes, dict(os.environ)) as address:
        assert _alive_nodes(address) == 2
        suite = {**SUITE, "executor": {"name": "ray", "params": {"address": address}}}
        (driver / "suite.yaml").write_text(yaml.safe_dump(suite))
        monkeypatch.chdir(driver)
        result = CliRunner().invoke(cli, ["run", "suite.yaml", "--results", "r", "-q"], obj={})
    assert result.exit_code == 0, result.output
    assert "cluster: 2 runs; 0 already finished, 2 ok" in result.output
    records = load_records(driver / "r")
    assert sorted(r["seed"] for r in records) == [0, 1] and {r["status"] for r in records} == {"ok"}
    assert not (nodes / "r").exists()  # nothing landed where the raylets were started
