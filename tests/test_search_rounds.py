"""A search's rounds: the trials' own curve points, one worker pool for every round,
trials held by another driver, and --rerun-stale over trial records."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

from click.testing import CliRunner

from ftbench.driver import trials as trial_rounds
from ftbench.cli import cli
from ftbench.driver.search import TRIALS_FOLDER, run_search
from ftbench.results.store import ResultsStore
from ftbench.results.records import load_records
from ftbench.suite import expand, parse_suite

SUITE = """
name: rounds
backbones: [{name: toy-timm}]
datasets: [{name: toy, params: {n_per_class: 20}}]
strategies: [{name: toy-full}]
seeds: [0]
budget: {steps: 8}
train: {batch_size: 16}
eval: {curve_points: 2}
executor: {name: sequential}
search: {pruner: median, space: {train.lr: {grid: [0.001, 0.01, 0.1]}}}
"""


def invoke(*args):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", *args], obj={})


def test_prune_points_set_the_trials_curve_and_leave_the_final_runs_curve_alone(toy_registry):
    suite = parse_suite(SUITE.replace("pruner: median,", "pruner: median, prune_points: 6,"), registry=toy_registry)
    seen = []

    def trials(batch):
        for spec in batch:
            seen.append((spec.eval.curve, spec.eval.curve_points))
            yield {"id": spec.id, "status": "ok", "metrics": {"val": {"acc": 50.0}, "curve": []}}

    final, _ = run_search(suite, expand(suite, toy_registry), toy_registry, trials)
    assert seen == [(True, 6)] * 3
    assert [spec.eval.curve_points for spec in final] == [2]
    # Without the key, trials keep eval.curve_points: ids of earlier searches do not change.
    plain = parse_suite(SUITE, registry=toy_registry)
    seen.clear()
    run_search(plain, expand(plain, toy_registry), toy_registry, trials)
    assert seen == [(True, 2)] * 3


def _pid(payload) -> dict:
    return {"pid": os.getpid()}


class _Spec:
    threads = 1
    id = "pid-probe"


def _payloads(tmp_path, n: int = 4) -> list:
    from ftbench.driver.worker import Payload

    return [Payload(_Spec(), tmp_path)] * n


def test_a_pool_keeps_its_workers_for_the_next_map_until_closed(tmp_path):
    from ftbench_executors import Pool, PoolParams

    pool = Pool(PoolParams(workers=2))
    first = {r["pid"] for r in pool.map(_pid, _payloads(tmp_path))}
    second = {r["pid"] for r in pool.map(_pid, _payloads(tmp_path))}
    assert second == first and os.getpid() not in first  # a search's rounds share the workers
    pool.close()
    deadline = time.time() + 10
    while time.time() < deadline and any(_running(pid) for pid in first):
        time.sleep(0.1)
    assert not any(_running(pid) for pid in first)


def _proc_state(pid: int) -> str | None:
    """The process's state letter in /proc (Z: zombie), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _running(pid: int) -> bool:
    return _proc_state(pid) not in (None, "Z")


def _finished_search(tmp_path):
    """(suite file, results folder, trials folder) of SUITE run to the end."""
    suite_file, out = tmp_path / "rounds.yaml", tmp_path / "res"
    suite_file.write_text(SUITE)
    assert invoke("run", str(suite_file), "--results", str(out), "-q").exit_code == 0
    return suite_file, out, out / TRIALS_FOLDER


def _lose_a_trial(out, index: int):
    """Delete the index-th trial record and the final runs (a search killed mid-way);
    return the trial's path and its record's text."""
    path = sorted((out / TRIALS_FOLDER).glob("*.json"))[index]
    text = path.read_text()
    path.unlink()
    for final in out.glob("*.json"):
        final.unlink()
    return path, text


def _hold(trials_dir, run_id: str, pid: int):
    """Write the claim another driver (process `pid` of this host) holds on `run_id`."""
    claim = ResultsStore(trials_dir).claim_path(run_id)
    claim.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "since": time.time()}))
    return claim


def test_a_trial_held_by_another_driver_is_waited_for_then_run_when_that_driver_dies(tmp_path, monkeypatch):
    monkeypatch.setattr(trial_rounds, "HELD_POLL_S", 0.1)
    suite_file, out, trials_dir = _finished_search(tmp_path)
    _, lost = _lose_a_trial(out, 1)
    # "Another driver": a live process of this host holds the lost trial's claim.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = _hold(trials_dir, json.loads(lost)["id"], other.pid)
        threading.Timer(1.5, lambda: (other.kill(), other.wait())).start()  # dies, reaped
        t0 = time.time()
        result = invoke("run", str(suite_file), "--results", str(out))
        waited = time.time() - t0
    finally:
        other.kill()
        other.wait()
    assert result.exit_code == 0, result.output
    assert "waiting for 1 trial(s) that another driver is running" in result.output
    assert waited >= 1.5  # it waited for the holder, then ran the trial itself
    assert len(load_records(trials_dir)) == 3 and len(load_records(out)) == 1
    assert not claim.exists()


def test_a_held_trial_whose_record_appears_is_used_not_rerun(tmp_path, monkeypatch):
    monkeypatch.setattr(trial_rounds, "HELD_POLL_S", 0.1)
    suite_file, out, trials_dir = _finished_search(tmp_path)
    path, saved = _lose_a_trial(out, 0)
    claim = _hold(trials_dir, json.loads(saved)["id"], os.getpid())

    def finish():  # the other driver writes its record, then releases the claim
        path.write_text(saved)
        claim.unlink()
    threading.Timer(1.0, finish).start()
    result = invoke("run", str(suite_file), "--results", str(out))
    assert result.exit_code == 0, result.output
    assert "waiting for 1 trial(s)" in result.output
    assert path.read_text() == saved  # its record, not a rerun here


def test_rerun_stale_reruns_trials_from_older_code(tmp_path):
    suite_file, out, trials_dir = _finished_search(tmp_path)
    old, current = sorted(trials_dir.glob("*.json"))[:2]
    record = json.loads(old.read_text())
    record["env"]["code"] = {m: "0" * len(d) for m, d in record["env"]["code"].items()}
    old.write_text(json.dumps(record))
    current_text = current.read_text()
    plain = invoke("run", str(suite_file), "--results", str(out), "-q")
    assert plain.exit_code == 0
    assert json.loads(old.read_text())["env"]["code"] == record["env"]["code"]  # plain run: kept, and said
    assert "warning: 1 search trials reused although stale (1 code changed: ftbench" in plain.output, plain.output
    status = invoke("status", str(out))
    assert "1 of 3 search trials are stale (1 code changed: ftbench" in status.output, status.output
    result = invoke("run", str(suite_file), "--results", str(out), "--rerun-stale")
    assert result.exit_code == 0, result.output
    assert "stale trials (older code or another thread count) are run again" in result.output
    assert json.loads(old.read_text())["env"]["code"] != record["env"]["code"]  # rerun with today's code
    assert current.read_text() == current_text  # a current trial is not rerun


def test_a_claim_held_by_a_zombie_process_is_stale(tmp_path):
    from ftbench.results.claims import claim_is_stale

    other = subprocess.Popen([sys.executable, "-c", "pass"])
    while _proc_state(other.pid) != "Z":  # exited, not reaped: kill(pid, 0) still succeeds
        time.sleep(0.05)
    try:
        assert claim_is_stale(_hold(tmp_path, "run", other.pid))
    finally:
        other.wait()
    assert not claim_is_stale(_hold(tmp_path, "run", os.getpid()))
