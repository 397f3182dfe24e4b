"""The report's selection confidence: P(selected) and the runner-up in the Selected
hyperparameters table, and the "selection uncertain" marker, with its note, on the
cell in every table that shows it (HTML too), at the report's threshold."""

import pytest

from ftbench import report as rp
from ftbench.errors import UserInputError
from ftbench.report.html import render_html
from ftbench.report.selection import UNCERTAIN
from tests.fixtures.report_records import make_records


def _with_confidence(records, uncertain=("linear-probe", "2-shot")):
    for rec in records:
        cell = rec["cell"]
        p = 0.55 if (cell["strategy"], cell["data"]) == uncertain else 0.97
        rec["selection"] = {
            "selected": {"train.lr": 0.01}, "val_acc": 80.0, "trial": 1, "trials": 2, "completed": 2, "pruned": 0,
            "failed": 0, "tuning_seeds": [0], "sampler": "grid", "sampler_seed": 0, "pruner": "none",
            "rule": "best mean validation accuracy", "cost": {"runs": 2, "train_s": 1.0, "wall_s": 1.0},
            "trial_results": [{"number": i, "values": {"train.lr": lr}, "val_acc": 80.0 - i, "state": "complete"}
                              for i, lr in enumerate((0.01, 0.03))],
            "confidence": {"p_selected": {"1": p, "0": round(1 - p, 4)}, "selected_p": p, "resamples": 2000,
                           "seed": 0, "candidates": 2, "pruned": 0,
                           "runner_up": {"trial": 0, "values": {"train.lr": 0.03}, "p": round(1 - p, 4)}}}
    return records


def _records():
    records = make_records(seeds=3, datasets=("digits",))
    data = sorted({r["cell"]["data"] for r in records})
    return _with_confidence(records, uncertain=("linear-probe", data[0])), data[0]


def test_an_uncertain_cell_is_marked_in_every_table_that_shows_it_and_a_certain_one_is_not():
    records, data = _records()
    report = rp.build_report(records, primary=[{"strategy": "linear-probe", "vs": "full"}])
    selected = report.table("selected")
    assert selected.headers[6:8] == ["P(selected)", "Runner-up"]
    for row in selected.rows:
        uncertain = (row[3], row[2]) == ("linear-probe", data)
        assert row[6].value == (0.55 if uncertain else 0.97) and (UNCERTAIN in row[6].text()) == uncertain
        assert row[7] == f"lr=0.03 (P {0.45 if uncertain else 0.03:.2f})"
    assert any("P(selected)" in n for n in selected.notes)
    accuracy = report.table("accuracy")
    marked = [r for r in accuracy.rows if UNCERTAIN in str(r[3])]
    assert [(r[3], r[2]) for r in marked] == [(f"linear-probe {UNCERTAIN}", data)]
    assert any(n.startswith(f"{UNCERTAIN} selection uncertain") and "linear-probe/" + data in n for n in accuracy.notes)
    summary = report.table("summary")
    assert [r[0] for r in summary.rows if UNCERTAIN in str(r[0])] == [f"linear-probe {UNCERTAIN}"]
    primary = report.table("primary")
    assert any(UNCERTAIN in str(r[3]) for r in primary.rows if r[2] == data)
    assert not any(UNCERTAIN in str(r[3]) for r in primary.rows if r[2] != data)
    assert report.options["selection_uncertain"] == 1
    page = render_html(report)
    assert f"linear-probe {UNCERTAIN}" in page and "selection uncertain" in page


def test_the_threshold_is_a_report_option():
    records, _ = _records()
    assert rp.build_report(records, selection_threshold=0.5).options["selection_uncertain"] == 0
    report = rp.build_report(records, selection_threshold=0.99)
    assert report.options["selection_uncertain"] == len(report.table("selected").rows)
    with pytest.raises(UserInputError, match="selection threshold"):
        rp.build_report(records, selection_threshold=1.5)


def test_records_without_confidence_say_n_a():
    records, _ = _records()
    for rec in records:
        del rec["selection"]["confidence"]
    report = rp.build_report(records)
    assert {r[6] for r in report.table("selected").rows} == {"n/a"}
    assert any("predate per-example validation" in n for n in report.table("selected").notes)
    assert report.options["selection_uncertain"] == 0
