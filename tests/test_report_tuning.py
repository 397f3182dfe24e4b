"""The tuning tables of a report: selected values, sensitivity (checked against
numpy/scipy), tuning cost, and nothing for a suite without a search."""

import numpy as np
import pytest
import scipy.stats as sps

from ftbench import report as rp
from ftbench.report.render import render
from tests.fixtures.report_records import make_records

TRIALS = {"full": [80.0, 85.0, 91.0, 90.5, 60.0], "linear-probe": [70.0, 70.5, 71.0, 70.8, 69.9]}


def _tuned(records: list[dict]) -> list[dict]:
    for rec in records:
        accs = TRIALS.get(rec["cell"]["strategy"], [50.0, 55.0])
        lrs = [10.0 ** -(i + 1) for i in range(len(accs))]
        best = int(np.argmax(accs))
        rec["selection"] = {
            "selected": {"train.lr": lrs[best]}, "val_acc": accs[best], "trial": best, "trials": len(accs),
            "completed": len(accs), "pruned": 0, "failed": 0, "tuning_seeds": [0], "sampler": "grid",
            "sampler_seed": 0, "pruner": "none", "rule": "best mean validation accuracy over the tuning seeds",
            "cost": {"runs": len(accs), "train_s": 10.0 * len(accs), "wall_s": 12.0 * len(accs)},
            "trial_results": [{"number": i, "values": {"train.lr": lr}, "val_acc": a, "state": "complete"}
                              for i, (lr, a) in enumerate(zip(lrs, accs))]}
        if rec["cell"]["strategy"] == "full":  # the weakest trial was pruned: it does not count
            rec["selection"]["trial_results"][-1] |= {"state": "pruned", "val_acc": None, "val_acc_at_stop": 60.0}
    return records


def test_a_report_without_search_has_no_tuning_tables():
    keys = {t.key for t in rp.build_report(make_records(seeds=2)).tables}
    assert not keys & {"selected", "sensitivity", "tuning_cost"}


def test_tuning_tables_show_selection_sensitivity_and_cost():
    records = _tuned(make_records(seeds=3, datasets=("digits",)))
    report = rp.build_report(records)
    selected = report.table("selected")
    full_rows = [r for r in selected.rows if r[3] == "full"]
    assert len(full_rows) == 3 and full_rows[0][4] == "lr=0.001" and full_rows[0][5].value == 91.0
    assert any("never on test" in n for n in selected.notes)

    sens = {r[0]: r for r in report.table("sensitivity").rows}
    x = np.array(TRIALS["full"][:-1])  # completed trials only: the pruned 60.0 stopped early
    assert sens["full"][3].value == pytest.approx(x.max() - np.median(x))
    assert sens["full"][4].value == pytest.approx(np.subtract(*np.percentile(x, [75, 25])))
    assert sens["full"][4].value == pytest.approx(sps.iqr(x))
    assert sens["full"][5].value == pytest.approx(50.0)  # 91.0 and 90.5 of 4 are within 1 point
    assert sens["full"][2] == "4"
    assert any("completed trials only" in n for n in report.table("sensitivity").notes)
    assert sens["linear-probe"][3].value < sens["full"][3].value  # the flat one is less sensitive

    cost = report.table("tuning_cost")
    row = next(r for r in cost.rows if r[3] == "full")
    finals = [rec["timing"]["train_s"] for rec in records
              if rec["cell"]["strategy"] == "full" and rec["cell"]["data"] == row[2]]
    assert row[4] == 5 and row[5].value == 50.0
    assert row[8].value == pytest.approx(np.mean(finals) + 50.0 / len(finals))
    assert "Selected hyperparameters" in render(report, "markdown")


def test_val_acc_vs_lr_figure():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from ftbench.report.tuning import val_acc_vs_lr

    report = rp.build_report(_tuned(make_records(seeds=2, datasets=("digits",), data=(0,))))
    fig = Figure()
    assert val_acc_vs_lr(report, fig, {}) and len(fig.axes) == 3  # one panel per strategy
