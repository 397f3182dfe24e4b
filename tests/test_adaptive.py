"""Adaptive seeds (`seeds: {min, max, step, until: decided}`): the suite key, the
plan replayed from records (`ftbench.driver.adaptive`), the driver and the report.
The error rates of the sequential tests themselves: tests/test_sequential.py."""

import json
import random
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.driver.adaptive import PLAN_FILE, replay
from ftbench.errors import SuiteError
from ftbench.results.records import load_records
from ftbench.suite import expand, parse_suite

BASE = """
name: demo
backbones:
  - name: toy-timm
datasets:
  - name: toy
strategies:
  - {name: toy-full, label: full}
  - {name: toy-full, label: worse, params: {lr_scale: 0.5}}
  - {name: toy-full, label: same, params: {lr_scale: 0.7}}
budget: {steps: 2}
"""


def problems(text):
    with pytest.raises(SuiteError) as info:
        parse_suite(textwrap.dedent(text), "s.yaml", None)
    return info.value.problems


def test_adaptive_seeds_parse_and_expand_to_max_seeds_in_order():
    suite = parse_suite(BASE + "seeds: {min: 3, max: 6, step: 2, until: decided, start: 10}\n", "s.yaml", None)
    assert suite.adaptive.min == 3 and suite.seed_list == [10, 11, 12, 13, 14, 15]
    assert sorted({s.seed for s in expand(suite)}) == suite.seed_list
    fixed = parse_suite(BASE + "seeds: [0, 1]\n", "s.yaml", None)
    assert fixed.adaptive is None and fixed.seed_list == [0, 1]


def test_adaptive_seeds_problems_name_the_key_and_line():
    assert problems(BASE + "seeds: {min: 5, max: 3}\n") == [
        "seeds (line 12): Value error, max (3) must be at least min (5)"]
    found = problems(BASE + "seeds: {min: 3, max: 10, stp: 2}\n")
    assert len(found) == 1 and found[0].startswith("seeds.stp (line 12): unknown key 'stp'; did you mean 'step'?")
    assert problems(BASE + "seeds: {min: 1, max: 4}\n")[0].startswith("seeds.min (line 12): Input should be "
                                                                      "greater than or equal to 2")
    assert problems(BASE + "seeds: {min: 3, max: 4, until: forever}\n")[0].startswith("seeds.until (line 12)")
    assert problems(BASE + "seeds: []\n")[0].startswith("seeds (line 12): List should have at least 1 item")
    found = problems(BASE + "seeds: {min: 3, max: 4, baseline: ful}\n")
    assert found == ["seeds.baseline (line 12): adaptive seeds compare each strategy with the baseline 'ful', which "
                     "is no strategy of this suite (labels: full, worse, same); set `seeds: {..., baseline: LABEL}` "
                     "or declare `primary:` comparisons"]


# ---------------------------------------------------------------- the plan, from fake records

EFFECT = {"full": 0.0, "worse": -10.0, "same": 0.0}


def fake_records(suite, noise=1.0, effect=EFFECT, seed=0):
    """One ok record per run: test accuracy on a 0.1-point grid (n = 1000 examples),
    each strategy's planted effect plus a seed effect shared by the task's cells
    (cancelling in the paired difference) plus independent noise."""
    rng = np.random.default_rng(seed)
    shared = {s: rng.normal(0, 3) for s in suite.seed_list}
    out = {}
    for spec in expand(suite):
        acc = 70 + shared[spec.seed] + effect[spec.labels[2]] + rng.normal(0, noise)
        out[spec.id] = {"status": "ok", "metrics": {"test": {"acc": round(acc, 1), "n": 1000}}}
    return out


def run_plan(suite, records, order=None, stop_after=None):
    """The driver's loop without training: replay, 'run' the pending runs (their
    records appear), repeat. `order` shuffles each look's runs (another executor or
    -j); `stop_after` interrupts after that many runs (a killed study)."""
    specs, have, ran = expand(suite), {}, 0
    while True:
        plan = replay(suite, specs, have.get)
        if plan.done:
            return plan
        todo = list(plan.pending)
        if order is not None:
            order.shuffle(todo)
        for spec in todo:
            if stop_after is not None and ran == stop_after:
                return have
            have[spec.id] = records[spec.id]
            ran += 1


def test_a_planted_clear_effect_stops_at_min_and_an_aa_cell_never_differs():
    suite = parse_suite(BASE + "seeds: {min: 5, max: 10, step: 1}\n", "s.yaml", None)
    plan = run_plan(suite, fake_records(suite, noise=0.5))
    by = {(c["strategy"], c["vs"]): c for c in plan.to_json()["comparisons"]}
    assert by["worse", "full"]["verdict"] == "different" and by["worse", "full"]["decided_at"] == 5
    assert plan.needed["toy-timm", "toy", "worse", "all"] == 5  # decided at the first look
    aa = by["same", "full"]
    assert aa["verdict"] != "different"
    assert aa["verdict"] == "equivalent" or plan.needed["toy-timm", "toy", "same", "all"] == 10
    # the baseline runs as long as any comparison of its task needs it
    assert plan.needed["toy-timm", "toy", "full", "all"] == plan.needed["toy-timm", "toy", "same", "all"]


def test_a_noisy_aa_cell_runs_to_max_undecided():
    suite = parse_suite(BASE + "seeds: {min: 3, max: 7, step: 2}\n", "s.yaml", None)
    plan = run_plan(suite, fake_records(suite, noise=4.0, seed=1))
    row = next(c for c in plan.to_json()["comparisons"] if c["strategy"] == "same")
    assert row["verdict"] == "undecided" and row["decided_at"] is None and row["n"] == 7
    assert plan.needed["toy-timm", "toy", "same", "all"] == 7


def test_futility_stops_a_noisy_aa_cell_early_and_the_report_says_so():
    """The noisy A/A cell above, with `futility: 0.1`: its predictive power falls below
    0.1 before max, so it stops there, undecided, with fewer seeds; the plan and the
    report's Adaptive seeds table say where and at what power."""
    from ftbench.report.adaptive import adaptive_table

    suite = parse_suite(BASE + "seeds: {min: 3, max: 7, step: 2}\n", "s.yaml", None)
    records = fake_records(suite, noise=4.0, seed=1)
    futile = parse_suite(BASE + "seeds: {min: 3, max: 7, step: 2, futility: 0.1}\n", "s.yaml", None)
    plan = run_plan(futile, records)
    data = plan.to_json()
    row = next(c for c in data["comparisons"] if c["strategy"] == "same")
    assert row["verdict"] == "undecided" and row["futile"] and row["power"] < 0.1 and row["futile_at"] in (3, 5)
    assert plan.needed["toy-timm", "toy", "same", "all"] == row["futile_at"] < 7
    assert data["settings"]["futility"] == 0.1
    assert data["runs"]["planned"] < run_plan(suite, records).to_json()["runs"]["planned"]
    table = adaptive_table(data)
    assert f"undecided, futile at {row['futile_at']} (power {row['power']:.2f})" in str(table.rows)
    assert any(n.startswith("futility 0.1:") for n in table.notes)
    assert problems(BASE + "seeds: {min: 3, max: 7, futility: 1.5}\n")[0].startswith("seeds.futility (line 12)")


def test_a_planted_3_point_effect_is_detected_with_fewer_runs_than_the_fixed_design():
    """Over 40 simulated studies (3 points, noise sd 1 per cell): the adaptive design
    finds the effect as often as the fixed one (max seeds, one look), with
    fewer runs. (The power of the tests alone: tests/test_sequential.py.)"""
    effect = {"full": 0.0, "worse": -3.0, "same": -3.0}
    suite = parse_suite(BASE + "seeds: {min: 3, max: 10, step: 2}\n", "s.yaml", None)
    fixed_suite = parse_suite(BASE + "seeds: {min: 10, max: 10}\n", "s.yaml", None)
    found, found_fixed, runs = 0, 0, 0
    for rep in range(40):
        records = fake_records(suite, noise=1.0, effect=effect, seed=100 + rep)
        plan = run_plan(suite, records).to_json()
        fixed = run_plan(fixed_suite, records).to_json()
        found += sum(c["verdict"] == "different" for c in plan["comparisons"])
        found_fixed += sum(c["verdict"] == "different" for c in fixed["comparisons"])
        runs += plan["runs"]["planned"]
        assert fixed["runs"]["planned"] == 30
    assert found == found_fixed == 80  # 2 comparisons x 40 studies
    assert runs < 0.8 * 40 * 30  # measured: 72% of the fixed design's runs


def test_the_path_is_the_same_after_an_interruption_and_in_any_run_order():
    suite = parse_suite(BASE + "seeds: {min: 3, max: 9, step: 2}\n", "s.yaml", None)
    records = fake_records(suite, noise=2.0, seed=7)
    straight = run_plan(suite, records).to_json()
    shuffled = run_plan(suite, records, order=random.Random(3)).to_json()
    partial = run_plan(suite, records, stop_after=11)  # killed mid-way through look 2
    assert isinstance(partial, dict) and len(partial) == 11
    resumed = replay(suite, expand(suite), partial.get)
    assert not resumed.done and resumed.history  # it resumes at the look it reached, not from scratch
    have = dict(partial)
    while not (plan := replay(suite, expand(suite), have.get)).done:
        have.update({s.id: records[s.id] for s in plan.pending})
    assert straight == shuffled == plan.to_json()
    assert straight["complete"] and len(straight["history"]) >= 2


def test_primary_comparisons_are_the_family_and_other_cells_run_min():
    suite = parse_suite(BASE + "seeds: {min: 3, max: 8, step: 1}\nprimary: [{strategy: same, vs: full}]\n",
                        "s.yaml", None)
    plan = run_plan(suite, fake_records(suite, noise=4.0, seed=1))
    assert [(c["strategy"], c["vs"]) for c in plan.to_json()["comparisons"]] == [("same", "full")]
    assert plan.needed["toy-timm", "toy", "worse", "all"] == 3


def test_a_failed_run_counts_as_run_and_gives_no_pair():
    suite = parse_suite(BASE + "seeds: {min: 3, max: 5, step: 1}\n", "s.yaml", None)
    records = fake_records(suite, noise=4.0, seed=1)
    first_worse = next(s for s in expand(suite) if s.labels[2] == "worse" and s.seed == 0)
    records[first_worse.id] = {"status": "failed"}
    plan = run_plan(suite, records)
    first = {c["strategy"]: c for c in plan.to_json()["history"][0]["comparisons"]}
    assert first["worse"]["n"] == 2 and first["same"]["n"] == 3


# ---------------------------------------------------------------- end to end, toy plugin

SUITE = """
name: adaptive
backbones: [{name: toy-timm}]
datasets: [{name: toy}]
strategies: [{name: toy-full, label: full}, {name: toy-full, label: sgd, train: {optimizer: sgd, lr: 0.05}}]
seeds: {min: 2, max: 4, step: 1}
budget: {steps: 3}
train: {batch_size: 16}
"""



def invoke(*args):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", *args], obj={})


@pytest.mark.slow
def test_run_resume_report_and_status_follow_the_plan(tmp_path):
    path, out = tmp_path / "s.yaml", tmp_path / "res"
    path.write_text(SUITE)
    result = invoke("run", str(path), "--results", str(out), "-q")
    assert result.exit_code == 0, result.output
    plan = json.loads((out / PLAN_FILE).read_text())
    records = load_records(out)
    assert plan["complete"] and len(records) == plan["runs"]["planned"] <= plan["runs"]["max"] == 8
    assert {c["seeds"] for c in plan["cells"]} <= {2, 3, 4}
    again = invoke("run", str(path), "--results", str(out), "-q")  # resume: nothing to do, the same plan
    assert again.exit_code == 0, again.output
    assert json.loads((out / PLAN_FILE).read_text()) == plan and len(load_records(out)) == len(records)
    rerun = invoke("run", str(path), "--results", str(out), "-q", "--rerun")  # afresh: the same path
    assert rerun.exit_code == 0, rerun.output
    assert json.loads((out / PLAN_FILE).read_text()) == plan
    report = invoke("report", str(out))
    assert report.exit_code == 0, report.output
    assert "Adaptive seeds" in report.output and f"{plan['runs']['planned']} of 8 ran" in report.output
    assert "Incomplete cells: none" in report.output
    status = invoke("status", str(out))
    assert status.exit_code == 0 and "missing" not in status.output.lower(), status.output
