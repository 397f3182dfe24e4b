"""The regression gate: `ftbench baseline save` and `ftbench compare`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from ftbench import gate
from ftbench.gate import render as gate_render
from ftbench.results import provenance
from ftbench.cli.gate import baseline as baseline_group, compare_cmd
from ftbench.errors import UserInputError
from ftbench.results.store import ResultsStore

CPU = "x86_64 (2 threads)"
CELLS = [("test_resnet", "digits", "linear-probe", "5-shot"), ("test_resnet", "digits", "full-ft", "5-shot")]


def make_record(cell: tuple[str, ...], seed: int, acc: float, samples_per_s: float = 1000.0,
                device_name: str = CPU, status: str = "ok") -> dict:
    """A run record shaped as docs/records.md describes (only what the gate reads is realistic)."""
    backbone, dataset, strategy, data = cell
    run_id = hashlib.sha256(json.dumps([cell, seed]).encode()).hexdigest()[:16]
    ok = status == "ok"
    test = {"acc": acc, "balanced_acc": acc - 0.5, "top5": 99.0, "loss": 0.3, "n": 540}
    return {
        "format": "ftbench.run/1", "id": run_id, "suite": "gate-test", "status": status,
        "cell": {"backbone": backbone, "dataset": dataset, "strategy": strategy, "data": data},
        "seed": seed, "data_amount": {"kind": "shots", "value": 5, "n_train": 50},
        "config": {"seed": seed},
        "metrics": {"test": test, "val": None, "shifted": {}, "source": None} if ok else {},
        "timing": {"wall_s": 6.1, "train_s": 4.0, "eval_s": 1.1, "data_s": 0.3,
                   "samples_per_s": samples_per_s if ok else None},
        "budget": {"limits": {"epochs": 5}, "used": {"epochs": 5}, "stopped_by": "epochs"},
        "memory": {"cpu_peak_rss_mb": 800.0, "gpu_peak_mb": None}, "params": {"trainable": 10, "total": 100},
        "env": {"python": "3.11.7", "torch": "2.14.1", "timm": "1.0.20", "ftbench": "0.1.0", "plugins": {},
                "device": "cpu", "device_name": device_name,
                # made by the code installed now: `compare` refuses stale CURRENT records
                "code": {"ftbench": provenance.module_digest("ftbench")}, "code_scheme": provenance.CODE_SCHEME},
        "started_at": "2026-11-30T10:00:00+00:00", "finished_at": "2026-11-30T10:00:06+00:00",
        "error": None if ok else {"type": "RuntimeError", "message": "boom", "traceback": ""},
    }


def write_results(folder: Path, rng_seed: int, acc_mean: float = 90.0, acc_sd: float = 0.5, seeds: int = 5,
                  speed: float = 1000.0, device_name: str = CPU, cells: list = CELLS,
                  drop: dict | None = None) -> Path:
    """A results folder: per cell `seeds` runs with acc ~ N(acc_mean, acc_sd) and
    samples/s ~ N(speed, 1%); `drop` maps a cell to points subtracted from its accuracies."""
    rng = np.random.default_rng(rng_seed)
    store = ResultsStore(folder)
    for cell in cells:
        for seed in range(seeds):
            acc = float(rng.normal(acc_mean, acc_sd)) - (drop or {}).get(cell, 0.0)
            store.write(make_record(cell, seed, acc, float(rng.normal(speed, speed * 0.01)), device_name))
    return folder


def cli() -> click.Group:
    group = click.Group("ftbench")
    for command in (baseline_group, compare_cmd):
        group.add_command(command)
    return group


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli(), [str(a) for a in args], env=env)


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    write_results(tmp_path / "base", rng_seed=0)
    result = run("baseline", "save", tmp_path / "base", "-o", tmp_path / "baseline.json")
    assert result.exit_code == 0, result.output
    assert "2 cell(s), 10 ok run(s)" in result.output
    return tmp_path / "baseline.json"


def test_saved_baseline_has_per_seed_values_and_common_env(baseline: Path):
    data = json.loads(baseline.read_text())
    assert data["format"] == gate.BASELINE_FORMAT
    assert data["env"]["device_name"] == CPU and data["env"]["torch"] == "2.14.1"
    cell = data["cells"][0]
    assert cell["seeds"] == [0, 1, 2, 3, 4]
    assert len(cell["metrics"]["acc"]) == len(cell["metrics"]["balanced_acc"]) == len(cell["samples_per_s"]) == 5
    assert cell["device_name"] == CPU


def test_identical_results_pass(tmp_path: Path, baseline: Path):
    result = run("compare", baseline, tmp_path / "base")
    assert result.exit_code == 0, result.output
    assert "PASS: 2 cell(s), 0 regression(s), 0 missing" in result.output
    assert "Environment changed" not in result.output
    assert "ACC REGRESSION" not in result.output.split("Accuracy regression:")[0]


def test_planted_accuracy_drop_is_flagged(tmp_path: Path, baseline: Path):
    current = write_results(tmp_path / "cur", rng_seed=1, drop={CELLS[0]: 3.0})
    result = run("compare", baseline, current)
    assert result.exit_code == 1, result.output
    comparison = gate.compare(gate.load_side(baseline), gate.load_side(current), gate.Tolerances())
    flagged = {r.label: r for r in comparison.regressions}
    assert list(flagged) == ["/".join(CELLS[0])]
    row = flagged["/".join(CELLS[0])]
    assert row.verdicts == [gate.ACC_REGRESSION] and row.test == "welch" and row.p_value < 0.001
    assert -3.7 < row.delta < -2.3
    assert "FAIL: 2 cell(s), 1 regression(s)" in result.output


def test_drop_within_tolerance_is_not_flagged_even_if_significant(tmp_path: Path, baseline: Path):
    current = write_results(tmp_path / "cur", rng_seed=1, drop={CELLS[0]: 3.0})
    assert run("compare", baseline, current, "--acc-drop", "5").exit_code == 0


@pytest.mark.parametrize("rng_seed", range(1, 9))
def test_seed_noise_of_the_baselines_size_is_not_flagged(tmp_path: Path, baseline: Path, rng_seed: int):
    current = write_results(tmp_path / "cur", rng_seed=rng_seed)
    result = run("compare", baseline, current)
    assert result.exit_code == 0, result.output


def test_planted_slowdown_is_flagged(tmp_path: Path, baseline: Path):
    current = write_results(tmp_path / "cur", rng_seed=1, speed=700.0)
    result = run("compare", baseline, current)
    assert result.exit_code == 1, result.output
    comparison = gate.compare(gate.load_side(baseline), gate.load_side(current), gate.Tolerances())
    assert all(r.verdicts == [gate.SPEED_REGRESSION] for r in comparison.rows)
    assert all(0.65 < r.speed_ratio < 0.75 for r in comparison.rows)
    assert run("compare", baseline, current, "--speed-ratio", "0.6").exit_code == 0


def test_device_mismatch_skips_speed(tmp_path: Path, baseline: Path):
    current = write_results(tmp_path / "cur", rng_seed=1, speed=300.0, device_name="NVIDIA H200")
    result = run("compare", baseline, current)
    assert result.exit_code == 0, result.output
    assert f"speed not compared: device differs ({CPU} vs NVIDIA H200)" in result.output
    assert f"Environment changed: device_name {CPU} -> NVIDIA H200" in result.output


def test_missing_cells_are_reported_and_fail_only_when_asked(tmp_path: Path, baseline: Path):
    extra = ("test_vit", "digits", "full-ft", "all")
    current = write_results(tmp_path / "cur", rng_seed=1, cells=[CELLS[0], extra])
    result = run("compare", baseline, current)
    assert result.exit_code == 0, result.output
    comparison = gate.compare(gate.load_side(baseline), gate.load_side(current), gate.Tolerances())
    assert {r.label: r.missing_in for r in comparison.missing} == {
        "/".join(CELLS[1]): "current", "/".join(extra): "baseline"}
    assert "0 regression(s), 2 missing" in result.output
    assert run("compare", baseline, current, "--fail-on-missing").exit_code == 1


def test_failed_runs_make_a_cell_missing_and_are_noted(tmp_path: Path, baseline: Path):
    current = write_results(tmp_path / "cur", rng_seed=1, cells=[CELLS[0]])
    store = ResultsStore(current)
    for seed in range(3):
        store.write(make_record(CELLS[1], seed, 0.0, status="failed"))
    result = run("compare", baseline, current, "--fail-on-missing")
    assert result.exit_code == 1
    assert "3 run(s) failed or diverged in the current" in result.output


def test_single_seed_uses_the_drop_only_and_says_so(tmp_path: Path):
    write_results(tmp_path / "base", rng_seed=0, seeds=1)
    current = write_results(tmp_path / "cur", rng_seed=0, seeds=1, drop={CELLS[0]: 1.5})
    result = run("compare", tmp_path / "base", current)
    assert result.exit_code == 1, result.output
    assert "n<2, drop only" in result.output
    assert run("compare", tmp_path / "base", current, "--acc-drop", "2").exit_code == 0


def test_zero_variance_on_both_sides_still_decides():
    tol = gate.Tolerances()
    base = gate.make_baseline([make_record(CELLS[0], s, 90.0) for s in range(3)])
    worse = gate.make_baseline([make_record(CELLS[0], s, 88.0) for s in range(3)])
    assert gate.compare(base, base, tol).rows[0].p_value == 1.0
    row = gate.compare(base, worse, tol).rows[0]
    assert row.p_value == 0.0 and row.verdicts == [gate.ACC_REGRESSION]


def test_with_more_seeds_the_table_shows_the_matched_seeds_it_judged():
    """A baseline of 10 seeds against 3 current seeds equal to its first 3: the
    sequential rule judges the matched seeds, so the columns and delta show those (0.00),
    not the mean of all 10 baseline seeds against 3 (which here reads -5)."""
    accs = [80.0, 81.0, 79.0] + [86.0] * 7
    base = gate.make_baseline([make_record(CELLS[0], s, a) for s, a in enumerate(accs)])
    current = gate.make_baseline([make_record(CELLS[0], s, a) for s, a in enumerate(accs[:3])])
    tol = gate.load_tolerances(None, more_seeds={"min": 3, "max": 10, "step": 1})
    row = gate.compare(base, current, tol).rows[0]
    assert row.delta == 0.0 and row.seeded.n == 3 and not row.verdicts
    assert str(row.baseline) == "80.00±1.00 (3 of 10)" and str(row.current) == "80.00±1.00 (3)"
    table = gate_render.render_terminal(gate.compare(base, current, tol))
    assert "delta (matched seeds)" in table and "+0.00" in table and "(3 of 10)" in table


def test_github_format_writes_summary_and_annotations(tmp_path: Path, baseline: Path):
    current = write_results(tmp_path / "cur", rng_seed=1, cells=[CELLS[0]], drop={CELLS[0]: 3.0})
    summary = tmp_path / "summary.md"
    result = run("compare", baseline, current, "--format", "github", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1
    assert errors[0].startswith("::error title=ACC REGRESSION test_resnet/digits/linear-probe/5-shot::")
    assert "Welch one-sided p=" in errors[0]
    warnings = [line for line in result.output.splitlines() if line.startswith("::warning ")]
    assert len(warnings) == 1 and "full-ft/5-shot: missing in the current: no ok runs with test acc" in warnings[0]
    text = summary.read_text()
    assert text.startswith("## ftbench regression gate: FAIL")
    assert "| cell" in text and "ACC REGRESSION" in text


def test_github_format_without_summary_file_prints_markdown(tmp_path: Path, baseline: Path):
    result = run("compare", baseline, tmp_path / "base", "--format", "github", env={"GITHUB_STEP_SUMMARY": ""})
    assert result.exit_code == 0
    assert result.output.startswith("## ftbench regression gate: PASS")
    assert "::error" not in result.output


def test_annotation_text_is_escaped():
    assert gate_render._escape("a%b\nc") == "a%25b%0Ac"
    assert gate_render._escape("x: y, z", is_property=True) == "x%3A y%2C z"


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON"),
    ('{"format": "ftbench.run/1"}', "one run record"),
    ('{"format": "something/2", "cells": []}', "expected 'ftbench.baseline/1'"),
    ('{"format": "ftbench.baseline/1", "created_at": "x", "env": {}}', "cells: Field required"),
    ('{"format": "ftbench.baseline/1", "created_at": "x", "env": {}, "cells": [{"cell": {"backbone": "b"}, '
     '"seeds": [0], "metrics": {"acc": [1.0]}, "samples_per_s": [1.0]}]}', "cell labels lack dataset"),
    ('{"format": "ftbench.baseline/1", "created_at": "x", "env": {}, "cells": [{"cell": {"backbone": "b", '
     '"dataset": "d", "strategy": "s", "data": "all"}, "seeds": [0, 1], "metrics": {"acc": [1.0]}, '
     '"samples_per_s": [1.0, 2.0]}]}', "one value per seed"),
])
def test_malformed_baseline_exits_2_naming_file_and_problem(tmp_path: Path, content: str, problem: str):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = run("compare", bad, write_results(tmp_path / "cur", rng_seed=1))
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {bad}")
    assert problem in result.output


def test_empty_results_folder_is_bad_input(tmp_path: Path, baseline: Path):
    (tmp_path / "empty").mkdir()
    result = run("compare", baseline, tmp_path / "empty")
    assert result.exit_code == 2 and "no run records" in result.output
    result = run("baseline", "save", tmp_path / "empty", "-o", tmp_path / "b.json")
    assert result.exit_code == 2 and "no run records to save" in result.output


def test_baseline_of_only_failed_runs_is_refused(tmp_path: Path):
    store = ResultsStore(tmp_path / "failed")
    for seed in range(2):
        store.write(make_record(CELLS[0], seed, 0.0, status="diverged"))
    result = run("baseline", "save", tmp_path / "failed", "-o", tmp_path / "b.json")
    assert result.exit_code == 2 and "none of the 2 run records has status ok" in result.output
    assert not (tmp_path / "b.json").exists()


def test_config_file_sets_tolerances_and_flags_override(tmp_path: Path, baseline: Path):
    current = write_results(tmp_path / "cur", rng_seed=1, drop={CELLS[0]: 3.0})
    yaml_cfg = tmp_path / "gate.yaml"
    yaml_cfg.write_text("acc_drop: 5\nalpha: 0.01\n")
    assert run("compare", baseline, current, "--config", yaml_cfg).exit_code == 0
    assert run("compare", baseline, current, "--config", yaml_cfg, "--acc-drop", "1").exit_code == 1
    toml_cfg = tmp_path / "gate.toml"
    toml_cfg.write_text('metric = "balanced_acc"\nfail_on_missing = true\nspeed_ratio = 0.5\n')
    assert gate.load_tolerances(toml_cfg, alpha=0.1) == gate.Tolerances(
        metric="balanced_acc", fail_on_missing=True, speed_ratio=0.5, alpha=0.1)


@pytest.mark.parametrize("content, problem", [
    ("acc_dorp: 2\n", "unknown key(s) acc_dorp"),
    ("alpha: 2\n", "alpha must be between 0 and 1"),
    ("metric: top1\n", "metric 'top1' is not one of"),
    ("- 1\n", "must be a mapping"),
])
def test_bad_config_exits_2(tmp_path: Path, baseline: Path, content: str, problem: str):
    cfg = tmp_path / "gate.yaml"
    cfg.write_text(content)
    result = run("compare", baseline, tmp_path / "base", "--config", cfg)
    assert result.exit_code == 2, result.output
    assert f"Error: {cfg}: " in result.output and problem in result.output


def test_terminal_output_states_the_rule(tmp_path: Path, baseline: Path):
    out = run("compare", baseline, tmp_path / "base", "--alpha", "0.01").output
    assert "one-sided Welch t-test (current < baseline) gives p < 0.01" in out
    assert "p (Welch, 1-sided)" in out and "90." in out


def test_two_ok_runs_with_one_seed_in_a_cell_is_an_error():
    records = [make_record(CELLS[0], 0, 90.0), {**make_record(CELLS[0], 0, 91.0), "id": "other"}]
    with pytest.raises(UserInputError, match="two ok runs with one seed"):
        gate.make_baseline(records)
