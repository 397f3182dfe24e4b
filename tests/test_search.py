"""Hyperparameter search: schema, fair trial counts, seeded repeatability, selection
on validation only, resume of a killed search."""

import json

import pytest
import yaml
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.driver.suite_run import save_resolved_suite
from ftbench.errors import SuiteError, UserInputError
from ftbench.driver.search import TRIALS_FOLDER, run_search
from ftbench.results.store import RESOLVED_SUITE
from ftbench.results.records import load_records
from ftbench.suite import expand, parse_suite, resolve_search

BASE = """
name: tuned
backbones: [{name: toy-timm}]
datasets: [{name: toy}]
strategies: [{name: toy-full}, {name: toy-full, label: sgd, train: {optimizer: sgd}}, {name: lp-ft}]
seeds: [0]
budget: {steps: 3}
train: {batch_size: 16}
"""


def _fake_trials(calls):
    """Trial runner without training: val accuracy is a smooth function of lr."""
    def run(batch):
        for spec in batch:
            calls.append((spec.cell["strategy"], spec.trial["number"], spec.seed, spec.train.lr))
            acc = 100 - 10 * abs(__import__("math").log10(spec.train.lr) + 2) + spec.seed
            yield {"id": spec.id, "status": "ok", "metrics": {"val": {"acc": acc}, "curve": []},
                   "timing": {"train_s": 1.0, "wall_s": 2.0}}
    return run


def test_every_strategy_gets_the_same_number_of_trials(toy_registry):
    suite = parse_suite(BASE + "search: {trials: 5, seeds: [0, 1], space: {train.lr: {loguniform: [0.0001, 0.1]}}}",
                        registry=toy_registry)
    assert [resolve_search(suite, e).n_trials() for e in suite.strategies] == [5, 5, 5]
    calls = []
    final, selections = run_search(suite, expand(suite, toy_registry), toy_registry, _fake_trials(calls))
    per_strategy = {s: {(n, seed) for st, n, seed, _ in calls if st == s} for s in ("toy-full", "sgd", "lp-ft")}
    assert all(v == {(n, seed) for n in range(5) for seed in (0, 1)} for v in per_strategy.values())
    assert [sel["trials"] for sel in selections] == [5, 5, 5]
    assert all(spec.selection["tuning_seeds"] == [0, 1] for spec in final)


def test_a_seeded_search_repeats_exactly_and_the_seed_matters(toy_registry):
    def sampled(seed):
        suite = parse_suite(BASE + f"search: {{trials: 12, seed: {seed}, space: "
                                   "{train.lr: {loguniform: [0.0001, 0.1]}, train.weight_decay: {uniform: [0, 0.1]}}}",
                            registry=toy_registry)
        calls = []
        final, _ = run_search(suite, expand(suite, toy_registry), toy_registry, _fake_trials(calls))
        return calls, [spec.train.lr for spec in final]

    first = sampled(0)
    assert sampled(0) == first  # TPE past its random start-up trials, too
    assert sampled(1)[0] != first[0]
    # the selected lr is the best-scoring one (val acc peaks at lr 0.01)
    assert first[1][0] == min((c[3] for c in first[0] if c[0] == "toy-full"), key=lambda lr: abs(lr - 0.01))


def test_entry_search_overrides_and_merges_the_suite_wide_one(toy_registry):
    text = (BASE.replace("{name: lp-ft}", "{name: lp-ft, search: {trials: 2, space: {params.lp_fraction: "
                                          "{choice: [0.25, 0.5]}}}}")
            + "search: {trials: 3, space: {train.lr: {grid: [0.001, 0.01, 0.1]}}}")
    with pytest.raises(SuiteError, match=r"different tuning budgets \(toy-full 3 trials x 1 seed, sgd 3 trials x 1 "
                                         r"seed, lp-ft 2 trials x 1 seed\).*allow_unequal_budget: true"):
        parse_suite(text, registry=toy_registry)
    suite = parse_suite(text.replace("search: {trials: 3,", "search: {allow_unequal_budget: true, trials: 3,"),
                        registry=toy_registry)
    lp = resolve_search(suite, suite.strategies[2])
    assert lp.trials == 2 and set(lp.space) == {"train.lr", "params.lp_fraction"} and lp.resolved_sampler() == "tpe"
    assert resolve_search(suite, suite.strategies[0]).resolved_sampler() == "grid"


@pytest.mark.parametrize("search, message", [
    ("{trials: 2, space: {train.lr: {grid: [0.01, -1]}}}", "-1 is not a valid `train.lr`"),
    ("{trials: 2, space: {params.nope: {choice: [1]}}}", "has no parameter 'nope'"),
    ("{trials: 2, space: {train.lrr: {choice: [1]}}}", "`train:` has no key 'lrr'"),
    ("{trials: 2, space: {model.lr: {choice: [1]}}}", "search keys are `train.KEY`"),
    ("{trials: 2, space: {train.lr: {uniform: [0.1, 0.01]}}}", "needs low < high"),
    ("{trials: 2, space: {train.lr: {loguniform: [0, 0.1]}}}", "low must be > 0"),
    ("{trials: 2, space: {train.lr: {choice: [0.1], grid: [0.2]}}}", "give exactly one of"),
    ("{space: {train.lr: {loguniform: [0.001, 0.1]}}}", "set `trials:`"),
    ("{sampler: grid, space: {train.lr: {loguniform: [0.001, 0.1]}}}", "the grid sampler needs"),
    ("{trials: 2, pruner: hyperband, space: {train.lr: {choice: [0.1]}}}", "search.pruner"),
])
def test_bad_searches_are_reported_with_their_field(toy_registry, search, message):
    with pytest.raises(SuiteError) as exc:
        parse_suite(BASE + "search: " + search, registry=toy_registry)
    assert message in str(exc.value)


FLIPPED = """
name: flipped
backbones: [{name: toy-timm}]
datasets: [{name: toy-flipped, params: {n_per_class: 20}, shifts: {corruptions: [gaussian_noise]}}]
strategies: [{name: toy-full}]
seeds: [0]
budget: {steps: 12}
train: {batch_size: 16}
search: {space: {train.lr: {grid: [0.0000001, 0.01]}}}
"""


def invoke(*args):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", *args], obj={})


def test_selection_follows_validation_never_test_and_a_killed_search_resumes(tmp_path):
    suite_file, out = tmp_path / "flipped.yaml", tmp_path / "res"
    suite_file.write_text(FLIPPED)
    result = invoke("run", str(suite_file), "--results", str(out), "-q")
    assert result.exit_code == 0, result.output
    trials = load_records(out / TRIALS_FOLDER)
    assert len(trials) == 2
    for rec in trials:  # trials never evaluate test, shifted sets or the source task
        assert set(rec["metrics"]) >= {"val"} and not {"test", "shifted", "source"} & set(rec["metrics"])
    val = {rec["config"]["trial"]["params"]["train.lr"]: rec["metrics"]["val"]["acc"] for rec in trials}
    assert val[0.01] > val[0.0000001]
    [final] = load_records(out)
    assert final["config"]["train"]["lr"] == 0.01  # the val winner ...
    assert final["metrics"]["test"]["acc"] < 50  # ... which flipped test labels punish
    sel = final["selection"]
    assert sel["selected"] == {"train.lr": 0.01} and sel["trials"] == 2 and sel["tuning_seeds"] == [0]
    assert sel["rule"].startswith("best mean validation accuracy") and sel["cost"]["runs"] == 2

    # Kill mid-way: the second trial's record and the final run are lost.
    lost = next(p for p in (out / TRIALS_FOLDER).glob("*.json") if json.loads(p.read_text())["config"]["train"]["lr"] == 0.01)
    kept = next(p for p in (out / TRIALS_FOLDER).glob("*.json") if p != lost)
    kept_mtime = kept.stat().st_mtime_ns
    lost.unlink()
    (out / f"{final['id']}.json").unlink()
    again = invoke("run", str(suite_file), "--results", str(out), "-q")
    assert again.exit_code == 0, again.output
    assert kept.stat().st_mtime_ns == kept_mtime and lost.exists()  # only the missing trial ran
    [rerun] = load_records(out)
    assert rerun["id"] == final["id"] and rerun["selection"]["selected"] == sel["selected"]


def test_overrides_set_dotted_keys_and_validate_like_yaml(toy_registry):
    suite = parse_suite(BASE, registry=toy_registry,
                        overrides=("train.lr=0.01", "seeds=[0, 1]", "strategies.1.train.lr=0.2",
                                   "search.trials=2", "search.space.train.lr.choice=[0.1, 0.01]"))
    assert suite.train.lr == 0.01 and suite.seeds == [0, 1] and suite.strategies[1].train == {"optimizer": "sgd", "lr": 0.2}
    assert resolve_search(suite, suite.strategies[0]).space["train.lr"].choice == [0.1, 0.01]
    with pytest.raises(SuiteError) as exc:  # the same error as the same value in the file
        parse_suite(BASE, registry=toy_registry, overrides=("train.lr=-1",))
    with pytest.raises(SuiteError) as in_file:
        parse_suite(BASE.replace("batch_size: 16", "batch_size: 16, lr: -1"), registry=toy_registry)
    assert exc.value.problems[0].split(":", 1)[1] == in_file.value.problems[0].split(":", 1)[1]
    for bad, message in (("train.lr", "write KEY=VALUE"), ("strategies.7.lr=1", "a list of 3"),
                         ("name.x=1", "is a single value"), ("seeds=[0,", "not valid YAML")):
        with pytest.raises(UserInputError, match=message):
            parse_suite(BASE, registry=toy_registry, overrides=(bad,))


def test_run_takes_overrides_and_records_them_in_the_resolved_suite(tmp_path, toy_registry):
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(BASE)
    result = invoke("run", str(suite_file), "--results", str(tmp_path / "r"), "--dry-run", "-o", "seeds=[3,4]")
    assert result.exit_code == 0 and "6 runs (" in result.output, result.output
    assert "search:" not in result.output
    tuned = invoke("run", str(suite_file), "--results", str(tmp_path / "r"), "--dry-run",
                   "-o", "search={trials: 3, seeds: [0, 1], space: {train.lr: {choice: [0.1, 0.01]}}}")
    assert "search: 18 trial runs first (3 cells; per cell, trials x tuning seeds: 3 x 2)" in tuned.output
    save_resolved_suite(parse_suite(BASE, registry=toy_registry, overrides=("seeds=[3,4]",)), tmp_path)
    assert yaml.safe_load((tmp_path / RESOLVED_SUITE).read_text())["seeds"] == [3, 4]
    bad = invoke("run", str(suite_file), "--results", str(tmp_path / "r"), "-o", "budget.steps=0")
    assert bad.exit_code == 2 and "budget.steps" in bad.output


def test_the_documented_search_example_validates(toy_registry):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "suite.md").read_text()
    section = text.split("## Hyperparameter search (`search:`)", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    head = "name: doc\nbackbones: [{name: toy-timm}]\ndatasets: [{name: toy}]\nbudget: {steps: 2}\n"
    suite = parse_suite(head + example, registry=toy_registry)
    configs = [resolve_search(suite, e) for e in suite.strategies]
    assert configs[0].n_trials() == configs[1].n_trials() == 8 and configs[2] is None
    assert set(configs[1].space) == {"train.lr", "train.weight_decay", "params.k"}


@pytest.mark.parametrize("pruner", ["median", "successive-halving"])
def test_the_pruner_stops_a_trial_whose_curve_trails_the_earlier_ones(pruner):
    from ftbench.engine.trial import trial_pruner

    prior = [{"state": "complete", "value": 90.0 + i, "curve": {0: 80.0 + i, 1: 88.0 + i, 2: 90.0 + i}}
             for i in range(4)]
    trial = {"pruner": pruner, "prior": prior}
    weak, strong = trial_pruner(trial), trial_pruner(trial)
    assert [weak({"val_acc": 20.0}) for _ in range(2)][-1] is True  # successive halving's first rung: step 1
    assert strong({"val_acc": 95.0}) is False and strong({"val_acc": 96.0}) is False
    assert trial_pruner({"pruner": "none", "prior": prior}) is None
