"""Search protocols: trials record per-example validation correctness, the final
runs carry the selection's confidence, and `search.folds: k` cross-validates each
trial over the cell's labelled budget (k fits per tuning seed, folds partition it)."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.components import ImageSet
from ftbench.driver.search import TRIALS_FOLDER, planned_trials
from ftbench.engine.trial import fold_split
from ftbench.errors import DataError
from ftbench.results.records import decode_correct, load_records
from ftbench.suite import expand, parse_suite

SUITE = """
name: folds
backbones: [{name: toy-timm}]
datasets: [{name: toy-flipped, params: {n_per_class: 20}}]
strategies: [{name: toy-full}]
seeds: [0]
data: [{shots: 3}]
budget: {steps: 6}
train: {batch_size: 16}
search: {seeds: [0, 1], space: {train.lr: {grid: [0.0000001, 0.01]}}}
"""


def _images(labels):
    labels = torch.tensor(labels)
    return ImageSet(torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone(),
                    labels)


def test_folds_partition_the_held_out_examples_and_keep_every_class_in_training():
    data = _images([0] * 2 + [1] * 5 + [2] * 1 + [3] * 3)
    held = []
    for fold in range(3):
        train, val = fold_split(data, 3, fold, seed=4)
        ids = sorted(val.images[:, 0, 0, 0].tolist())
        held += ids
        assert set(ids).isdisjoint(train.images[:, 0, 0, 0].tolist()) and len(train) + len(val) == len(data)
        assert set(train.labels.tolist()) == {0, 1, 2, 3}  # two or more: one is always kept; one: never held out
    assert sorted(held) == [i for i in range(len(data)) if i != 7]  # the single class-2 example is never held out
    assert fold_split(data, 3, 1, seed=4)[1].labels.tolist() == fold_split(data, 3, 1, seed=4)[1].labels.tolist()
    with pytest.raises(DataError, match="search.folds"):
        fold_split(_images([0, 1, 2]), 2, 0, seed=0)


def invoke(*args):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", *args], obj={})


@pytest.mark.parametrize("folds", [None, 3])
def test_trials_keep_validation_bits_and_the_selection_its_confidence(tmp_path, folds, toy_registry):
    text = SUITE.replace("search: {", f"search: {{folds: {folds}, ") if folds else SUITE
    suite_file, out = tmp_path / "s.yaml", tmp_path / "res"
    suite_file.write_text(text)
    suite = parse_suite(text, registry=toy_registry)
    k = folds or 1
    assert planned_trials(suite, expand(suite, toy_registry)).startswith(f"search: {2 * 2 * k} trial runs")
    result = invoke("run", str(suite_file), "--results", str(out), "-q")
    assert result.exit_code == 0, result.output
    trials = load_records(out / TRIALS_FOLDER)
    assert len(trials) == 2 * 2 * k and len({t["id"] for t in trials}) == len(trials)
    for rec in trials:
        val = rec["metrics"]["val"]
        bits = decode_correct(val["correct"], val["n"])
        assert bits.mean() * 100 == pytest.approx(val["acc"])
    if folds:  # per trial and seed, the folds validate every labelled example once (3 shots x classes)
        for seed in (0, 1):
            per_trial = {}
            for rec in trials:
                if rec["seed"] == seed:
                    per_trial.setdefault(rec["config"]["trial"]["params"]["train.lr"], []).append(rec)
            for recs in per_trial.values():
                assert sorted(r["config"]["trial"]["fold"] for r in recs) == [0, 1, 2]
                assert sum(r["metrics"]["val"]["n"] for r in recs) == recs[0]["data_amount"]["n_classes"] * 3
    [final] = load_records(out)
    sel = final["selection"]
    conf = sel["confidence"]
    assert set(conf["p_selected"]) == {"0", "1"} and sum(conf["p_selected"].values()) == pytest.approx(1, abs=1e-3)
    assert conf["selected_p"] == conf["p_selected"][str(sel["trial"])] and conf["runner_up"]["trial"] != sel["trial"]
    assert sel.get("folds") == folds
    # the selected trial's score is the mean over seeds and folds of the trial runs' validation accuracy
    mine = [r["metrics"]["val"]["acc"] for r in trials if r["config"]["trial"]["params"] == sel["selected"]]
    assert sel["val_acc"] == pytest.approx(np.mean(mine))


TIED = """
name: tied
backbones: [{name: toy-timm}]
datasets: [{name: toy, params: {n_per_class: 20}}]
strategies: [{name: toy-full, label: base, train: {optimizer: sgd}, search: {enabled: false}}, {name: toy-full, label: tuned}]
seeds: [0, 1]
data: [{shots: 4}]
budget: {steps: 4}
train: {batch_size: 16, lr: 0.05}
search: {final_top: 2, space: {train.lr: {grid: [0.0000001, 0.0000002]}}}
"""


def test_final_top_two_runs_an_uncertain_cell_at_its_runner_up_and_the_report_compares_verdicts(tmp_path):
    # Two learning rates too small to move the model: the same predictions, a coin flip of a selection.
    suite_file, out = tmp_path / "tied.yaml", tmp_path / "res"
    suite_file.write_text(TIED)
    before = invoke("run", str(suite_file), "--results", str(out), "--dry-run")
    assert before.exit_code == 0, before.output
    assert "runner-up runs (final_top: 2): up to 2, in " in before.output  # tuned's 2 seeds; known after the search
    result = invoke("run", str(suite_file), "--results", str(out), "-q")
    assert result.exit_code == 0, result.output
    finals = [r for r in load_records(out) if r["cell"]["strategy"] == "tuned"]
    conf = finals[0]["selection"]["confidence"]
    first = finals[0]["selection"]["selected"]["train.lr"]
    other = ({1e-7, 2e-7} - {first}).pop()
    assert conf["selected_p"] == pytest.approx(0.5) and conf["runner_up"]["values"] == {"train.lr": other}
    second = load_records(out / "runner-up")
    assert len(second) == 2 and {r["config"]["train"]["lr"] for r in second} == {other}
    assert all(r["selection"]["rank"] == 2 and r["selection"]["first"]["selected"] == {"train.lr": first}
               for r in second)
    for command in (["status", str(out)], ["validate", str(suite_file), "--results", str(out)]):
        shown = invoke(*command)
        assert shown.exit_code == 0, shown.output
        assert "runner-up runs (final_top: 2): 2 of at most 2, in " in shown.output, command
    line = next(x for x in shown.output.splitlines() if x.startswith("runner-up runs"))
    assert line.endswith("again at their runner-up), 2 finished")  # validate counts the finished ones
    line = next(x for x in invoke("status", str(out)).output.splitlines() if x.startswith("runner-up runs"))
    assert line.endswith("again at their runner-up): 2 ok")  # status counts them by state
    report = invoke("report", str(out), "--baseline", "base", "--format", "markdown")
    assert report.exit_code == 0, report.output
    section = report.output.split("Verdict at the runner-up", 1)[1]
    assert "lr=1e-07" in section and "lr=2e-07" in section and " yes |" in section
    assert "§ selection uncertain" in report.output


def test_folds_count_in_the_fair_tuning_budget(toy_registry):
    from ftbench.errors import SuiteError

    text = SUITE.replace("strategies: [{name: toy-full}]",
                         "strategies: [{name: toy-full}, {name: toy-full, label: cv, train: {optimizer: sgd}, "
                         "search: {folds: 2}}]")
    with pytest.raises(SuiteError, match=r"toy-full 2 trials x 2 seeds, cv 2 trials x 2 seeds x 2 folds"):
        parse_suite(text, registry=toy_registry)


def test_a_folds_pruner_compares_each_fold_with_the_same_fold_of_earlier_trials(toy_registry):
    from ftbench.driver.search import run_search

    suite = parse_suite(SUITE.replace("search: {", "search: {folds: 2, pruner: median, seeds: [0], ")
                        .replace("seeds: [0, 1], ", ""), registry=toy_registry)
    priors = {}

    def run(batch):  # fold 1 is the harder fold: its curve sits 30 points lower
        for spec in batch:
            fold = spec.trial["fold"]
            priors[(spec.trial["number"], fold)] = spec.trial["prior"]
            acc = 80.0 - 30 * fold
            yield {"id": spec.id, "status": "ok", "seed": spec.seed, "config": spec.config(),
                   "metrics": {"val": {"acc": acc}, "curve": [{"val_acc": acc - 10}, {"val_acc": acc}]}}

    run_search(suite, expand(suite, toy_registry), toy_registry, run)
    assert [p["curve"] for p in priors[(1, 0)]] == [{0: 70.0, 1: 80.0}]
    assert [p["curve"] for p in priors[(1, 1)]] == [{0: 40.0, 1: 50.0}]
