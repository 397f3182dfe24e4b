"""Reproducibility: code digests and stale records, run subsets, hardware-dependent
budgets, pretraining that learns nothing, and README's generated report block."""

import importlib.util
import types
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftbench.results import provenance
from ftbench.cli import cli
from ftbench.results.records import load_records

PLUGIN = '''
import ftbench
from ftbench.components import Component, Params, Strategy


@ftbench.hookimpl
def ftbench_register_strategies():
    return [Component("edited", lambda p: Strategy(), Params, "A strategy whose code a test edits.")]
'''

SUITE = """
name: stale
backbones: [{name: toy-timm}]
datasets: [{name: toy, params: {n_per_class: 8}}]
strategies: [{name: toy-full}, {name: edited}]
seeds: [0]
budget: {steps: 2}
train: {batch_size: 16}
threads: 1
"""


def invoke(*args):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "--plugin", "stale_plugin", *args], obj={})


def _mtimes(folder):
    return {r["cell"]["strategy"]: (folder / f"{r['id']}.json").stat().st_mtime_ns for r in load_records(folder)}


def test_edited_plugin_makes_its_records_stale_and_only_those_rerun(tmp_path, monkeypatch):
    (tmp_path / "stale_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite, out = tmp_path / "stale.yaml", tmp_path / "res"
    suite.write_text(SUITE)
    provenance.module_digest.cache_clear()
    assert invoke("run", str(suite), "--results", str(out), "-q").exit_code == 0
    code = {r["cell"]["strategy"]: r["env"]["code"] for r in load_records(out)}
    assert set(code["edited"]) == {"ftbench", "ftbench.testing", "stale_plugin"}  # the toys live in the core
    assert code["edited"]["stale_plugin"].startswith("sha256:") and code["edited"]["ftbench"].startswith("sha256:")
    assert "stale          0" in invoke("status", str(out)).output

    (tmp_path / "stale_plugin.py").write_text(PLUGIN + "# edited\n")
    provenance.module_digest.cache_clear()  # a new process would read the code afresh
    status = invoke("status", str(out))
    assert "1 of 2 finished runs are stale (1 code changed: stale_plugin)" in status.output, status.output
    stale_line = next(line for line in status.output.splitlines() if "are stale" in line)
    assert f"warning: {stale_line}" in invoke("report", str(out)).output  # status and report agree
    before = _mtimes(out)
    again = invoke("run", str(suite), "--results", str(out), "-q")
    assert "2 runs; 2 already finished (1 of them stale), 0 ok" in again.output  # stale records are kept ...
    assert (f"warning: 1 of 2 finished runs are stale (1 code changed: stale_plugin), kept as finished; "
            f"`ftbench run {suite} --results {out} --rerun-stale` reruns them") in again.output  # ... said, even -q
    rerun = invoke("run", str(suite), "--results", str(out), "-q", "--rerun-stale")
    assert "2 runs; 1 already finished, 1 ok" in rerun.output, rerun.output  # ... until asked
    assert "are stale" not in rerun.output.split("Records:")[1]
    after = _mtimes(out)
    assert after["toy-full"] == before["toy-full"] and after["edited"] != before["edited"]
    assert "stale          0" in invoke("status", str(out)).output

    subset = invoke("run", str(suite), "--results", str(out), "-q", "--only", "strategy=toy-full", "--rerun")
    assert "1 runs; 0 already finished, 1 ok" in subset.output, subset.output
    assert _mtimes(out)["edited"] == after["edited"] != _mtimes(out)["toy-full"]
    bad = invoke("run", str(suite), "--results", str(out), "--only", "strategy=nope")
    assert bad.exit_code == 2 and "--only strategy=nope matches no run of the suite (strategy labels: edited, " \
                                  "toy-full)" in bad.output
    assert invoke("run", str(suite), "--only", "colour=red").exit_code == 2


def test_report_notes_hardware_dependent_and_near_chance_sources():
    base = {"status": "ok", "id": "a", "env": {"code": {"ftbench": provenance.module_digest("ftbench")},
                                               "code_scheme": provenance.CODE_SCHEME},
            "config": {"backbone": {"params": {"pretrained": "ftbench:abc"}}},
            "metrics": {"source": {"before": {"acc": 40.0}, "classes": 26}}}
    assert provenance.report_notes([base]) == []
    timed = {**base, "id": "b", "hardware_dependent": True}
    chance = {**base, "id": "c", "metrics": {"source": {"before": {"acc": 5.0}, "classes": 26}}}
    old = {**base, "id": "d", "env": {"code": {"ftbench": "sha256:0"}}}
    notes = provenance.report_notes([base, timed, chance, old])
    assert notes == ["1 records are hardware-dependent (a `seconds` budget stopped or could stop them, in the run "
                     "or its pretraining): their numbers change with the machine's speed and load",
                     "source task near chance (its pretraining learned little; forgetting and transfer numbers "
                     "mean little): ftbench:abc (5.0% on 26 classes)"]


PRETRAIN_SUITE = """
name: chance
pretrain:
  tiny:
    backbone: {name: timm, params: {model: test_resnet, input_size: 32}}
    dataset: {name: glyphs, params: {n_train: 104, n_test: 104}}
    train: {batch_size: 8}
    budget: {steps: 1, seconds: 600}
backbones: [{name: timm, params: {model: test_resnet, pretrained: "pretrain:tiny"}}]
datasets: [{name: digits, params: {}}]
strategies: [{name: linear-probe}]
data: [{shots: 1}]
budget: {steps: 1}
eval: {source_max: 104, curve: false}
threads: 1
"""


def test_pretraining_at_chance_fails_and_is_not_cached(tmp_path):
    from ftbench.engine import checkpoints
    from ftbench.plugins import default_registry
    from ftbench.suite import load_suite, pretrain_key

    path = tmp_path / "chance.yaml"
    path.write_text(PRETRAIN_SUITE)
    key = pretrain_key(load_suite(path, default_registry()).pretrain["tiny"], default_registry())
    failed = CliRunner().invoke(cli, ["pretrain", str(path)], obj={})
    assert failed.exit_code == 1
    assert "Error: pretrain tiny: source test accuracy" in failed.output
    assert "is below 7.7% (chance is 3.8% on 26 classes) after 1 steps" in failed.output
    assert checkpoints.checkpoint_status(key) == "missing"

    accepting = PRETRAIN_SUITE.replace("seconds: 600}", "seconds: 600}\n    min_source_acc: 0")
    path.write_text(accepting)
    assert pretrain_key(load_suite(path, default_registry()).pretrain["tiny"], default_registry()) == key
    results = tmp_path / "res"
    run = CliRunner().invoke(cli, ["run", str(path), "--results", str(results), "-q"], obj={})
    assert run.exit_code == 0, run.output
    (record,) = load_records(results)
    assert record["hardware_dependent"] is True  # its backbone's pretraining had a seconds budget
    assert record["metrics"]["source"]["classes"] == 26
    notes = provenance.report_notes([record])
    assert len(notes) == 2 and notes[1].startswith("source task near chance") and f"ftbench:{key}" in notes[1]

    path.write_text(PRETRAIN_SUITE)  # the default threshold again: the cached checkpoint is refused too
    reused = CliRunner().invoke(cli, ["pretrain", str(path)], obj={})
    assert reused.exit_code == 1 and f"the cached checkpoint {key}" in reused.output


ROOT = Path(__file__).parents[1]


def _readme_tool():
    spec = importlib.util.spec_from_file_location("readme_report", ROOT / "tools" / "readme_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_block_is_what_the_report_command_prints(tmp_path):
    tool = _readme_tool()
    suite, ref = tmp_path / "ref.yaml", tmp_path / "ref"
    suite.write_text(SUITE.replace("name: stale", "name: ref").replace("{name: edited}", "{name: toy-nan}")
                     .replace("seeds: [0]", "seeds: [0, 1]"))
    run = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "run", str(suite), "--results", str(ref), "-q"],
                             obj={})
    assert len(load_records(ref)) == 4, run.output
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{tool.BEGIN}\npasted numbers\n{tool.END}\noutro\n")
    args = ["--results", str(ref), "--readme", str(readme)]
    assert tool.main([*args, "--check"]) == 1  # out of date
    assert tool.main(args) == 0
    report = CliRunner().invoke(cli, ["report", str(ref), "--format", "markdown"], obj={})
    assert report.exit_code == 0 and "Summary" in report.stdout
    assert readme.read_text() == f"intro\n{tool.BEGIN}\n{report.stdout.strip()}\n{tool.END}\noutro\n"
    assert tool.main([*args, "--check"]) == 0
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="README must hold one block"):
        tool.main(args)


def test_readme_report_block_matches_the_committed_reference_records():
    tool = _readme_tool()
    if not any(tool.REFERENCE.glob("*.json")):
        pytest.skip("no reference records committed yet: `make reference` writes them and README's block")
    assert tool.main(["--check"]) == 0, "README's report block is stale: run `make readme`"


def test_seed_tolerance_compares_each_seed_with_the_reference():
    from ftbench.gate import SEED_MISMATCH, Tolerances, compare

    def side(accs):
        cell = {"backbone": "b", "dataset": "d", "strategy": "s", "data": "all"}
        return {"env": {}, "cells": [{"cell": cell, "seeds": list(range(len(accs))), "metrics": {"acc": accs},
                                      "samples_per_s": [None] * len(accs), "device_name": None, "not_ok": 0}]}

    exact = Tolerances(seed_tolerance=0, acc_drop=0, fail_on_missing=True)
    assert not compare(side([90.0, 92.5]), side([90.0, 92.5]), exact).failed
    moved = compare(side([90.0, 92.5]), side([92.5, 90.0]), exact)  # same mean, other seeds
    assert moved.failed and moved.rows[0].verdicts == [SEED_MISMATCH]
    assert "2 seed(s) beyond 0 points: seed 0: 90 -> 92.5; seed 1: 92.5 -> 90" in moved.rows[0].notes
    assert not compare(side([90.0, 92.5]), side([92.5, 90.0]), Tolerances()).failed  # means only
    short = compare(side([90.0, 92.5]), side([90.0]), exact)
    assert short.failed and "seed(s) 1 of the baseline missing in the current" in short.rows[0].notes
    with pytest.raises(Exception, match="seed_tolerance must be a number of points >= 0"):
        Tolerances(seed_tolerance=-1)


def test_pool_warns_when_workers_threads_exceed_the_cpus_and_changes_nothing(monkeypatch):
    import ftbench_executors

    class Spec:
        threads = 2

    monkeypatch.setattr(ftbench_executors.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(ftbench_executors, "_gpu_count", lambda: 0)
    payloads = [types.SimpleNamespace(spec=Spec()) for _ in range(3)]
    with pytest.warns(UserWarning, match=r"2 workers x 2 threads per run .* exceed this machine's 2 CPUs: runs will "
                                         r"be slower, not different; use -j 1"):
        ftbench_executors._warn_oversubscribed(payloads, 2)
    Spec.threads = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ftbench_executors._warn_oversubscribed(payloads, 2)
