"""`select: oracle`: the same trials, also scored on test and selected by mean test
accuracy, labelled ORACLE in records, report and `validate`; never the default, and
validation searches keep their trial and run ids."""

import pytest

from ftbench import report as rp
from ftbench.report.render import render
from ftbench.driver.search import ORACLE_RULE, SELECTION_RULE, TRIALS_FOLDER, run_search
from ftbench.results.records import load_records
from ftbench.suite import expand, parse_suite, resolve_search
from tests.test_search import BASE, FLIPPED, invoke

SEARCH = "search: {trials: 4, space: {train.lr: {grid: [0.0001, 0.001, 0.01, 0.1]}}"


def _disagreeing_trials(calls):
    """Trials without training whose val and test disagree: val peaks at lr 0.01,
    test at lr 0.0001."""
    def run(batch):
        for spec in batch:
            calls.append(spec)
            lr = spec.train.lr
            yield {"id": spec.id, "status": "ok", "timing": {"train_s": 1.0, "wall_s": 1.0},
                   "metrics": {"val": {"acc": 90 - abs(lr - 0.01) * 100}, "test": {"acc": 90 - lr * 100},
                               "curve": []}}
    return run


def _search(toy_registry, select: str = ""):
    suite = parse_suite(BASE + SEARCH + (f", select: {select}" if select else "") + "}", registry=toy_registry)
    calls = []
    final, selections = run_search(suite, expand(suite, toy_registry), toy_registry, _disagreeing_trials(calls))
    return suite, calls, final, selections


def test_validation_is_the_default_and_keeps_trial_and_run_ids(toy_registry):
    suite, calls, final, selections = _search(toy_registry)
    assert {resolve_search(suite, e).select for e in suite.strategies} == {"validation"}
    assert all("select" not in spec.config()["trial"] for spec in calls)  # ids as before `select` existed
    assert all("select" not in spec.config() for spec in final)
    assert {sel["rule"] for sel in selections} == {SELECTION_RULE} and not any("select" in s for s in selections)
    assert {spec.train.lr for spec in final} == {0.01}  # the val winner
    _, explicit, explicit_final, _ = _search(toy_registry, "validation")
    assert [s.id for s in explicit] == [s.id for s in calls]
    assert [s.id for s in explicit_final] == [s.id for s in final]


def test_oracle_trains_the_same_trials_and_selects_by_test(toy_registry):
    _, val_calls, val_final, _ = _search(toy_registry)
    _, calls, final, selections = _search(toy_registry, "oracle")
    assert [(s.cell, s.train.lr, s.seed) for s in calls] == [(s.cell, s.train.lr, s.seed) for s in val_calls]
    assert all(s.config()["trial"]["select"] == "oracle" for s in calls)
    assert not {s.id for s in calls} & {s.id for s in val_calls}
    assert {spec.train.lr for spec in final} == {0.0001}  # the test winner
    assert all(spec.config()["select"] == "oracle" for spec in final)
    assert not {s.id for s in final} & {s.id for s in val_final}
    sel = selections[0]
    assert sel["select"] == "oracle" and sel["rule"] == ORACLE_RULE and sel["rule"].startswith("ORACLE: best mean TEST")
    assert sel["test_acc"] == pytest.approx(90 - 0.0001 * 100)
    tested = {t["values"]["train.lr"]: t["test_acc"] for t in sel["trial_results"]}
    assert tested == pytest.approx({lr: 90 - lr * 100 for lr in (0.0001, 0.001, 0.01, 0.1)})


def test_an_oracle_run_scores_trials_on_test_and_every_output_says_oracle(tmp_path):
    suite_file, out = tmp_path / "flipped.yaml", tmp_path / "res"
    suite_file.write_text(FLIPPED.replace("search: {", "search: {select: oracle, "))
    checked = invoke("validate", str(suite_file), "--results", str(out))
    assert checked.exit_code == 0, checked.output
    assert "warning: toy-full select hyperparameters on TEST accuracy (`select: oracle`)" in checked.stderr
    (tmp_path / "plain.yaml").write_text(FLIPPED)
    plain = invoke("validate", str(tmp_path / "plain.yaml"), "--results", str(out))
    assert plain.exit_code == 0 and "TEST" not in plain.output, plain.output

    result = invoke("run", str(suite_file), "--results", str(out), "-q")
    assert result.exit_code == 0, result.output
    trials = load_records(out / TRIALS_FOLDER)
    assert len(trials) == 2
    for rec in trials:  # the test split only: never shifted sets or the source task
        assert {"val", "test"} <= set(rec["metrics"]) and not {"shifted", "source"} & set(rec["metrics"])
        assert rec["config"]["trial"]["select"] == "oracle"
    test = {rec["config"]["trial"]["params"]["train.lr"]: rec["metrics"]["test"]["acc"] for rec in trials}
    val = {rec["config"]["trial"]["params"]["train.lr"]: rec["metrics"]["val"]["acc"] for rec in trials}
    assert val[0.01] > val[0.0000001] and test[0.01] < test[0.0000001]  # flipped test labels: they disagree
    [final] = load_records(out)
    assert final["config"]["train"]["lr"] == 0.0000001  # the test winner, not the val one
    sel = final["selection"]
    assert sel["select"] == "oracle" and sel["rule"] == ORACLE_RULE and sel["test_acc"] == test[0.0000001]

    report = rp.build_report([final])
    accuracy, summary, selected = report.table("accuracy"), report.table("summary"), report.table("selected")
    assert "ORACLE" in accuracy.title and accuracy.notes[0].startswith("WARNING: ORACLE selection: 1 of 1 cells")
    assert summary.notes[0] == accuracy.notes[0]
    assert selected.rows[0][4].startswith("ORACLE (test ") and "lr=1e-07" in selected.rows[0][4]
    assert selected.notes[0].startswith("ORACLE rows were selected on the TEST split")
    assert "WARNING: ORACLE selection" in render(report, "markdown")
    planned = invoke("run", str(suite_file), "--results", str(out), "--dry-run")
    assert "ORACLE (test): train.lr=1e-07" in planned.output and final["id"] in planned.output


def test_a_validation_report_carries_no_oracle_label(tmp_path):
    from tests.fixtures.report_records import make_records
    from tests.test_report_tuning import _tuned

    report = rp.build_report(_tuned(make_records(seeds=2, datasets=("digits",), data=(0,))))
    text = render(report, "markdown")
    assert "ORACLE" not in text and "WARNING" not in text
