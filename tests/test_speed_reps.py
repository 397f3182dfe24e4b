"""The sequential speed gate (`speed_reps:`; ftbench.gate.speed): timing repetitions
of the real engine, a baseline file that keeps them, and a verdict taken look by
look that times only the cells still undecided. The error rates are simulated in
tests/test_sequential.py; benchmarks/gate_under_load.py measures them for real."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ftbench import api
from ftbench.cli import cli
from ftbench.driver import timing
from ftbench.errors import UserInputError
from ftbench.gate import SPEED_REGRESSION, load_tolerances, render_terminal
from ftbench.gate.speed import SpeedReps, baseline_speed, judge_speed
from ftbench.gate.timed import SPEED_FILE

ROOT = Path(__file__).resolve().parents[1]
SUITE = """
name: speed
backbones: [{name: toy-timm}]
datasets: [{name: toy}]
strategies: [{name: toy-full, label: full}, {name: toy-full, label: sgd, train: {optimizer: sgd, lr: 0.05}}]
seeds: [0, 1]
budget: {steps: 3}
train: {batch_size: 16}
"""
KEYS = [("toy-timm", "toy", "full", "all"), ("toy-timm", "toy", "sgd", "all")]


def invoke(*args):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", *args], obj={})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "s.yaml").write_text(SUITE)
    result = invoke("run", str(tmp_path / "s.yaml"), "--results", str(tmp_path / "r"), "-q")
    assert result.exit_code == 0, result.output
    return tmp_path / "r"


def test_judge_speed_verdicts_and_bad_config():
    plan = SpeedReps(4, 8, 2)
    base = [0.0, 0.02, -0.02, 0.01, -0.01]
    assert judge_speed([0.01, -0.01, 0.0, 0.02], base, 0.75, 0.05, plan).verdict == "not slower"
    slow = [math.log(0.5) + e for e in (0.01, -0.01, 0.0, 0.02)]
    j = judge_speed(slow, base, 0.75, 0.05, plan)
    assert j.verdict == "slower" and j.high < 0.75 and abs(j.ratio - 0.5) < 0.02 and not j.last
    noisy = [0.3, -0.5, 0.2, -0.6]
    assert judge_speed(noisy, base, 0.75, 0.05, plan).verdict == "undecided"
    # more cells: each at alpha / m, so a wider interval
    assert judge_speed(slow, base, 0.75, 0.05, plan, m=3).low < j.low
    for bad in ({"min": 1}, {"max": "x"}, [4, 8], {"min": 4, "top": 9}):
        with pytest.raises(UserInputError, match="speed_reps"):
            load_tolerances(speed_reps=bad)
    assert load_tolerances(speed_reps={"min": 4, "max": 8, "step": 2}).speed_reps.looks == (4, 6, 8)


def _fake_reps(per_call: dict, machine: str = "cpu X", calls: list | None = None):
    """A stand-in for `time_repetitions`: y per cell from `per_call[cell strategy]`,
    a function of the repetition's index, recording which cells each call timed."""
    count = {"n": 0}

    def fake(suite_path, reps, *, cells=None, **kwargs):
        if calls is not None:
            calls.append((reps, sorted(k[2] for k in cells)))
        out = []
        for _ in range(reps):
            i = count["n"]
            count["n"] += 1
            out.append(timing.Repetition({k: per_call[k[2]](i) for k in cells}, machine))
        return out
    return fake


def _baseline_with_reps(folder: Path, tmp_path: Path, machine: str = "cpu X") -> Path:
    saved = invoke("baseline", "save", str(folder), "-o", str(tmp_path / "b.json"))
    assert saved.exit_code == 0, saved.output
    data = json.loads((tmp_path / "b.json").read_text())
    rng = np.random.default_rng(0)
    reps = [timing.Repetition({k: float(rng.normal(0, 0.05)) for k in KEYS}, machine) for _ in range(8)]
    data["speed"] = baseline_speed(reps)
    (tmp_path / "b.json").write_text(json.dumps(data))
    return tmp_path / "b.json"


def test_compare_judges_undecided_cells_again_and_flags_the_slower_one(folder, tmp_path, monkeypatch):
    """'full' is unchanged (decided "not slower" at the first look); 'sgd' is 1.6x
    slower but noisy, so it is judged again at the next looks until its interval lies
    below the threshold: a SPEED REGRESSION, exit 1. Every repetition times both cells
    (the conditions of the baseline's), but 'full' keeps the 4 it was decided on;
    speed.json says what was judged."""
    base = _baseline_with_reps(folder, tmp_path)
    noise = [0.04, -0.03, 0.05, -0.05, 0.3, -0.3, 0.02, -0.02, 0.01, -0.01, 0.0, 0.03]
    calls: list = []
    monkeypatch.setattr(timing, "time_repetitions", _fake_reps(
        {"full": lambda i: noise[i % 4] / 2, "sgd": lambda i: math.log(1 / 1.6) + noise[i % len(noise)]},
        calls=calls))
    (tmp_path / "gate.yaml").write_text("speed_ratio: 0.75\nspeed_reps: {min: 4, max: 12, step: 2}\n")
    result = invoke("compare", str(base), str(folder), "--config", str(tmp_path / "gate.yaml"))
    assert result.exit_code == 1, result.output
    assert calls[0] == (4, ["full", "sgd"]) and all(cells == ["full", "sgd"] for _, cells in calls) and len(calls) > 1
    rows = {line.split()[0].split("/")[2]: line for line in result.output.splitlines() if line.startswith("toy-timm/")}
    assert "n=4" in rows["full"] and SPEED_REGRESSION not in rows["full"]
    assert SPEED_REGRESSION in rows["sgd"]
    assert "O'Brien-Fleming looks at 4, 6, 8, 10, 12 repetitions" in result.output
    saved = json.loads((folder / SPEED_FILE).read_text())
    assert {c["cell"]["strategy"]: c["verdict"] for c in saved["cells"]} == {"full": "not slower", "sgd": "slower"}
    assert {c["cell"]["strategy"]: len(c["log_ratios"]) for c in saved["cells"]}["full"] == 4
    assert [c["n_baseline"] for c in saved["cells"]] == [8, 8]  # the baseline's repetitions


def test_undecided_at_max_passes_with_a_note_and_another_machine_is_not_gated(folder, tmp_path, monkeypatch):
    base = _baseline_with_reps(folder, tmp_path)
    wild = lambda i: math.log(0.75) + (0.4 if i % 2 else -0.4)  # noqa: E731 - right at the threshold, noisy
    monkeypatch.setattr(timing, "time_repetitions", _fake_reps({"full": wild, "sgd": wild}))
    comparison = api.compare(base, folder, None, plugins=["tests.toyplugin"],
                             speed_reps={"min": 4, "max": 6, "step": 2}, speed_ratio=0.75)
    assert not comparison.failed
    assert all(r.speed_seq.verdict == "undecided" and r.speed_seq.n == 6 for r in comparison.rows)
    assert "speed undecided at max 6 repetitions" in render_terminal(comparison)
    monkeypatch.setattr(timing, "time_repetitions", _fake_reps({"full": lambda i: -2.0, "sgd": lambda i: -2.0},
                                                               machine="cpu Y"))
    comparison = api.compare(base, folder, None, plugins=["tests.toyplugin"],
                             speed_reps={"min": 4, "max": 6, "step": 2}, speed_ratio=0.75)
    assert not comparison.failed and all(r.speed_seq is None for r in comparison.rows)
    assert "speed not gated: the baseline was timed on cpu X, this is cpu Y" in render_terminal(comparison)


def test_speed_reps_needs_a_baseline_with_repetitions_and_a_results_folder(folder, tmp_path):
    saved = invoke("baseline", "save", str(folder), "-o", str(tmp_path / "b.json"))
    assert saved.exit_code == 0
    (tmp_path / "gate.yaml").write_text("speed_reps: {min: 2, max: 4, step: 1}\n")
    result = invoke("compare", str(tmp_path / "b.json"), str(folder), "--config", str(tmp_path / "gate.yaml"))
    assert result.exit_code == 2 and "--speed-reps 10" in result.output and "Traceback" not in result.output
    result = invoke("compare", str(tmp_path / "b.json"), str(tmp_path / "b.json"), "--config",
                    str(tmp_path / "gate.yaml"))
    assert result.exit_code == 2 and "pass CURRENT as a results folder" in result.output


def test_a_repetition_times_the_real_engine_between_calibrations(folder):
    """In this process (cheap): each cell's y is log(run / calibration loop samples/s)."""
    from ftbench.plugins import Registry, make_plugin_manager

    registry = Registry(make_plugin_manager(extra=("tests.toyplugin",)))
    reps = timing.time_repetitions(folder / "suite.resolved.yaml", 2, registry=registry, fresh_process=False)
    assert [sorted(r.log_ratios) for r in reps] == [KEYS, KEYS]
    assert all(math.isfinite(y) for r in reps for y in r.log_ratios.values())
    assert "1 thread" in reps[0].machine
    assert not list(folder.glob("*.json.tmp"))  # timing keeps no records in the folder


@pytest.mark.slow
def test_baseline_save_times_fresh_processes(folder, tmp_path):
    """`ftbench baseline save --speed-reps 2`: two child processes (`python -m
    ftbench.driver.timing`), each timing both cells; the file keeps them."""
    done = subprocess.run([sys.executable, "-m", "ftbench", "--plugin", "tests.toyplugin", "baseline", "save",
                           str(folder), "-o", str(tmp_path / "b.json"), "--speed-reps", "2"], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "2 timing repetitions" in done.stdout
    speed = json.loads((tmp_path / "b.json").read_text())["speed"]
    assert [len(c["log_ratios"]) for c in speed["cells"]] == [2, 2]
    assert "thread" in speed["machine"]
