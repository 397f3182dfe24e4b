"""End to end through the CLI: records, resume, repeatability, failures, exit codes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.results.records import decode_correct
from ftbench.results.store import ResultsStore
from ftbench.results.records import load_records
from ftbench.suite import DEFAULT_THREADS

SUITE = """
name: grid
backbones: [{name: toy-timm}, {name: toy-timm, label: effnet, params: {model: test_efficientnet}}]
datasets: [{name: toy}, {name: toy, label: toy4, params: {classes: 4, n_per_class: 12}}]
strategies: [{name: toy-full}, {name: toy-full, label: sgd, train: {optimizer: sgd, lr: 0.05}}]
seeds: [0, 1]
budget: {steps: 4}
train: {batch_size: 16}
"""


def invoke(*args):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", *args], obj={})


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(SUITE)
    return path


def _metrics(folder):
    return {r["id"]: (r["metrics"]["test"], r["metrics"]["curve"][-1]["train_loss"]) for r in load_records(folder)}


def test_suite_writes_one_record_per_run_and_resumes(suite_file, tmp_path):
    out = tmp_path / "res"
    result = invoke("run", str(suite_file), "--results", str(out), "-q")
    assert result.exit_code == 0, result.output
    records = load_records(out)
    assert len(records) == 16 and {r["status"] for r in records} == {"ok"}
    rec = records[0]
    assert rec["budget"]["stopped_by"] == "steps" and rec["budget"]["used"]["steps"] == 4
    assert rec["params"]["trainable"] == rec["params"]["total"] > 0
    assert rec["timing"]["samples_per_s"] > 0 and rec["env"]["torch"]
    test = rec["metrics"]["test"]  # per-example correctness, for McNemar in the report
    assert decode_correct(test["correct"], test["n"]).mean() * 100 == pytest.approx(test["acc"])
    assert rec["memory"]["cpu_peak_scope"] == ("run" if os.path.exists("/proc/self/clear_refs") else "process")
    assert (out / "suite.resolved.yaml").exists()
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}

    again = invoke("run", str(suite_file), "--results", str(out))
    assert again.exit_code == 0
    assert "16 runs; 16 already finished, 0 ok" in again.output
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")} == before  # nothing ran


def test_same_suite_twice_gives_identical_metrics(suite_file, tmp_path):
    for name in ("a", "b"):
        assert invoke("run", str(suite_file), "--results", str(tmp_path / name), "-q").exit_code == 0
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")


def _results(folder):
    """Every metric of every record, less wall-clock times: what must not depend on
    the executor."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "seconds" not in k}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return {r["id"]: strip(r["metrics"]) for r in load_records(folder)}


def test_pool_executor_matches_sequential_bitwise(tmp_path):
    path = tmp_path / "grid.yaml"  # one thread per run, so two workers fit two cores
    path.write_text(SUITE + "threads: 1\n")
    torch.set_num_threads(2)  # the driver's own setting must not matter: each run sets the suite's
    try:
        assert invoke("run", str(path), "--results", str(tmp_path / "seq"), "-q").exit_code == 0
        assert torch.get_num_threads() == 2  # restored after each in-process run
        result = invoke("run", str(path), "--results", str(tmp_path / "pool"), "-q", "-j", "2")
    finally:
        torch.set_num_threads(1)
    assert result.exit_code == 0, result.output
    seq, pool = _results(tmp_path / "seq"), _results(tmp_path / "pool")
    assert len(seq) == 16 and seq == pool  # every loss, accuracy and curve point, exactly
    records = load_records(tmp_path / "seq") + load_records(tmp_path / "pool")
    assert {(r["env"]["threads"], r["env"]["device_name"].endswith("(1 threads)")) for r in records} == {(1, True)}
    assert DEFAULT_THREADS == 1  # documented in docs/suite.md


def test_killed_run_resumes_without_losing_records(suite_file, tmp_path):
    out = tmp_path / "res"
    slow = suite_file.read_text().replace("{steps: 4}", "{steps: 12}")
    suite_file.write_text(slow)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "ftbench", "--plugin", "tests.toyplugin", "run", str(suite_file),
                             "--results", str(out), "-q"], env=env, cwd=Path(__file__).parents[1],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(out.glob("*.json"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name for p in out.glob("*.json")}
    assert 3 <= len(finished) < 16
    for path in out.glob("*.json"):  # every file on disk is a whole record
        assert json.loads(path.read_text())["status"] == "ok"
    first_mtimes = {n: (out / n).stat().st_mtime_ns for n in finished}

    result = invoke("run", str(suite_file), "--results", str(out), "-q")
    assert result.exit_code == 0, result.output
    assert f"{len(finished)} already finished, {16 - len(finished)} ok" in result.output
    assert len(load_records(out)) == 16
    assert {n: (out / n).stat().st_mtime_ns for n in finished} == first_mtimes  # not redone
    assert not list(out.glob("*.claim")) and not list(out.glob(".*.tmp"))


def test_failing_plugin_does_not_stop_the_others(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SUITE.replace("name: toy-full, label: sgd, train: {optimizer: sgd, lr: 0.05}",
                                  "name: toy-nan, label: nan")  # one `name` per entry: duplicate keys are errors
                    .replace("strategies: [{name: toy-full},", "strategies: [{name: toy-full}, {name: toy-raise},"))
    result = invoke("run", str(path), "--results", str(tmp_path / "r"), "-q")
    assert result.exit_code == 1
    records = load_records(tmp_path / "r")
    by_status = {}
    for r in records:
        by_status.setdefault(r["status"], set()).add(r["cell"]["strategy"])
    # fail fast: after two runs of toy-raise failed the same way, its other runs are skipped, not run
    assert by_status == {"ok": {"toy-full"}, "failed": {"toy-raise"}, "skipped": {"toy-raise"}, "diverged": {"nan"}}
    raised = [r for r in records if r["cell"]["strategy"] == "toy-raise"]
    assert sum(r["status"] == "failed" for r in raised) == 2
    assert all("toy-raise" in r["error"]["message"] for r in raised if r["status"] == "skipped")
    failed = next(r for r in records if r["status"] == "failed")
    assert failed["error"]["type"] == "RuntimeError" and "always fails" in failed["error"]["traceback"]
    assert "failed: " in result.output and "RuntimeError: this strategy always fails" in result.output


def test_a_run_claimed_by_another_live_driver_is_left_alone(suite_file, tmp_path):
    out = tmp_path / "res"
    dry = invoke("run", str(suite_file), "--results", str(out), "--dry-run")
    first_id = dry.output.splitlines()[2].split()[0]
    out.mkdir()
    (out / f"{first_id}.claim").write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))
    result = invoke("run", str(suite_file), "--results", str(out), "-q")
    assert result.exit_code == 1 and "1 held by another driver" in result.output  # not all done: not a pass
    assert f"claim file {out / first_id}.claim" in result.output
    assert not (out / f"{first_id}.json").exists() and len(load_records(out)) == 15
    ResultsStore(out).release(first_id)


def test_stale_claim_of_a_dead_process_is_taken_over(tmp_path):
    store = ResultsStore(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp_path.joinpath("abc.claim").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    assert store.claim("abc") and not ResultsStore(tmp_path).claim("abc")


def test_exit_codes_and_dry_run(suite_file, tmp_path):
    dry = invoke("run", str(suite_file), "--dry-run", "--results", str(tmp_path / "r"))
    assert dry.exit_code == 0 and "16 runs (0 finished, 16 to run)" in dry.output
    assert "total at most: 64 steps" in dry.output
    assert not (tmp_path / "r").exists()
    bad = invoke("run", str(tmp_path / "missing.yaml"))
    assert bad.exit_code == 2 and "Error: cannot read suite" in bad.output
    suite_file.write_text(SUITE.replace("toy-full}", "toy-fulll}"))
    invalid = invoke("validate", str(suite_file))
    assert invalid.exit_code == 2 and "did you mean 'toy-full'" in invalid.output
    assert "Traceback" not in invalid.output


def test_list_shows_providers_and_parameters():
    result = invoke("list", "datasets")
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if line.startswith("toy "))
    assert "toyplugin" in line and "Generated bands" in line and "n_per_class=24" in line


def test_duplicate_component_names_both_providers():
    import types

    import ftbench
    from ftbench.components import Component
    from ftbench.errors import PluginError
    from ftbench.plugins import Registry, make_plugin_manager

    clash = types.ModuleType("clash")
    clash.ftbench_register_datasets = ftbench.hookimpl(lambda: [Component("toy", lambda p, seed: None)])
    pm = make_plugin_manager(load_entrypoints=False, extra=("tests.toyplugin",))
    pm.register(clash, name="clash")
    with pytest.raises(PluginError, match="two plugins register the dataset 'toy': .* and "):
        Registry(pm)


def test_unimportable_plugin_is_a_clear_error():
    result = CliRunner().invoke(cli, ["--plugin", "no_such_module", "list"], obj={})
    assert result.exit_code == 2 and "--plugin no_such_module: cannot import it" in result.output


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_peak_memory_is_reset_for_each_run():
    from ftbench.engine.environment import peak_rss_mb, reset_peak_rss

    assert reset_peak_rss()
    block = bytearray(300 * 2**20)  # 300 MB, touched
    block[::4096] = b"x" * len(block[::4096])
    high, scope = peak_rss_mb(True)
    del block
    assert reset_peak_rss()
    after, _ = peak_rss_mb(True)
    assert scope == "run" and high - after > 250
    assert peak_rss_mb(False)[1] == "process"
