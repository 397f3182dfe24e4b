"""The report's statistics stay honest at small n (issue 13): one test per point, on
generated records, checked against scipy and statsmodels."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from statsmodels.stats.power import TTestPower

from ftbench.report import render as rr
from ftbench import stats
from ftbench import report as rp
from ftbench.errors import UserInputError
from ftbench.results.records import encode_correct
from tests.fixtures.report_records import make_records


def _twin(records: list[dict], strategy: str, shift: list[float] | float, seeds: list[int] | None = None) -> list[dict]:
    """Copies of the `full` records as `strategy`, test accuracy moved by `shift` (per seed)."""
    out = []
    for rec in records:
        if rec["cell"]["strategy"] != "full" or (seeds is not None and rec["seed"] not in seeds):
            continue
        twin = copy.deepcopy(rec)
        twin["cell"]["strategy"], twin["id"] = strategy, rec["id"][::-1] + strategy
        delta = shift[rec["seed"]] if isinstance(shift, list) else shift
        twin["metrics"]["test"]["acc"] = rec["metrics"]["test"]["acc"] + delta
        out.append(twin)
    return out


def _one_task(seeds: int = 2) -> list[dict]:
    return make_records(seeds=seeds, datasets=("digits",), data=(1,), strategies=("full",))


def _row(report: rp.Report, key: str, strategy: str) -> list:
    return next(r for r in report.table(key).rows if strategy in r[:4])


def test_point1_constant_differences_print_no_infinity_and_no_tiny_p():
    base = _one_task(seeds=2)
    report = rp.build_report(base + _twin(base, "worse", -8.9))
    row = _row(report, "accuracy", "worse")
    assert row[8].value == 0.5 and row[9].value == 0.5  # exact sign-flip p with 2 pairs, not < 0.001
    assert math.isnan(row[10].mean)  # no g_z without variance
    text = rr.render(report, "terminal")
    assert "inf" not in text and "<0.001" not in text
    assert report.table("summary").rows[1][2] == "0/1/0"  # not counted as a loss


def test_point2_untestable_cells_get_their_own_mark_and_keep_off_the_best():
    base = _one_task(seeds=3)
    lucky = _twin(base, "lucky", 20.0, seeds=[0])  # one seed, far above: no test can place it
    report = rp.build_report(base + _twin(base, "worse", [-5.0, -5.2, -4.9]) + lucky)
    acc = {r[3]: r[5] for r in report.table("accuracy").rows}
    assert acc["lucky"].mark == rp.UNTESTED and acc["full"].mark == rp.BEST and acc["worse"].mark == ""
    assert "? not testable" in " ".join(report.table("accuracy").notes)


def test_point3_marker_family_wise_error_is_documented():
    report = rp.build_report(_one_task(seeds=3) + _twin(_one_task(seeds=3), "same", [0.1, -0.2, 0.05]))
    note = next(n for n in report.table("accuracy").notes if n.startswith("* best"))
    assert "not shown worse than any other" in note and "in the table's family" in note
    family = next(n for n in report.table("accuracy").notes if n.startswith("multiplicity"))
    assert "one family per table" in family and "at most α = 0.05" in family


def test_point4_iqm_normalises_per_task_and_weighs_tasks_equally():
    records = make_records(seeds=3, datasets=("digits", "letters"), data=(1,))
    copies = []  # digits run three more seeds that repeat its first three exactly
    for rec in records:
        if rec["cell"]["dataset"] == "digits":
            twin = copy.deepcopy(rec)
            twin["seed"], twin["id"] = rec["seed"] + 3, rec["id"] + "-again"
            copies.append(twin)
    a, b = rp.build_report(records), rp.build_report(records + copies)
    iqm = lambda rep: {r[0]: r[2] for r in rep.table("ranks").rows}  # noqa: E731
    # the same distribution per task, so with equal task weights the IQM is the same; pooled
    # runs would have let the task with more seeds count double
    assert {s: e.mean for s, e in iqm(a).items()} == pytest.approx({s: e.mean for s, e in iqm(b).items()})
    assert all(0 <= e.mean <= 100 for e in iqm(a).values())
    assert "fixed reference scores, chance (100 / the task's classes) = 0" in " ".join(a.table("ranks").notes)


def test_point5_asymmetric_intervals_print_as_brackets_and_json_keeps_n():
    report = rp.build_report(make_records(seeds=3, datasets=("digits", "letters"), data=(1,)))
    ranks = report.table("ranks")
    assert any("[" in r[2].text() for r in ranks.rows)
    data = json.loads(rr.render(report, "json"))
    rows = next(t for t in data["tables"] if t["key"] == "ranks")["rows"]
    assert all(r[2]["n"] == 6 for r in rows) and rows[1][3]["n"] == 6
    times = [e for r in report.table("time").rows for e in r[5:9] if isinstance(e, rp.Est) and e.n > 1]
    assert all(e.low > 0 for e in times)


def test_point5_timing_interval_never_goes_below_zero():
    records = _one_task(seeds=3)
    for rec, t in zip(records, (0.05, 0.06, 3.0)):  # one slow outlier: a t interval would cross zero
        rec["timing"]["train_s"] = t
    est = _row(rp.build_report(records), "time", "full")[6]
    assert est.low > 0 and est.text().count("[") == 1


def test_point6_no_zero_width_interval_from_one_seed():
    records = make_records(seeds=1, datasets=("digits", "letters"), data=(1,))
    report = rp.build_report(records, interval="percentile")
    text = rr.render(report, "terminal")
    assert "± 0.0" not in text and "[" not in text.split("Across tasks")[1].split("\n")[3]
    small = rp.build_report(make_records(seeds=3, datasets=("digits",), data=(1,)), interval="percentile")
    assert "fewer than 20 seeds use Student-t" in " ".join(small.table("accuracy").notes)


def test_point7_friedman_with_few_tasks_says_how_and_flags_nested_tasks():
    report = rp.build_report(make_records(seeds=2, datasets=("digits",), data=(0, 1, 2)))
    notes = " ".join(report.table("ranks").notes)
    assert "exact permutation" in notes or "permutation, 9999 resamples" in notes
    assert "Iman-Davenport F" in notes
    assert "the 3 tasks are 1 backbone/dataset pair at several data amounts" in notes


def test_point8_effective_robustness_does_not_move_when_a_strategy_is_added():
    records = make_records(seeds=3, datasets=("digits",), data=(0, 1, 2))
    before = rp.build_report(records)
    extra = _twin(records, "new", 4.0)
    for rec in extra:
        for m in rec["metrics"]["shifted"].values():
            m["acc"] += 10.0
    after = rp.build_report(records + extra)
    er = lambda rep: {(r[2], r[3], r[4]): r[9].mean for r in rep.table("shift").rows}  # noqa: E731
    old, new = er(before), er(after)
    assert all(new[k] == pytest.approx(v) for k, v in old.items())
    assert {k[2] for k in new} == {"blur@2", "gaussian_noise@3"}  # one row per shift type, never averaged
    assert "logit" in " ".join(after.table("shift").notes)
    assert after.table("summary").headers[5:7] == ["ER blur@2", "ER gaussian_noise@3"]


def test_point9_forgetting_of_scratch_is_not_applicable():
    report = rp.build_report(make_records(seeds=2, datasets=("digits",), data=(1,)))
    assert _row(report, "forgetting", "scratch")[5:] == ["n/a"] * 4
    drop = {r[0]: r[-1] for r in report.table("summary").rows}
    assert math.isnan(drop["scratch"].mean) and drop["linear-probe"].mark == rp.BEST


def test_point10_failures_are_an_outcome_of_the_cell():
    records = make_records(seeds=5, datasets=("digits",), data=(1,), strategies=("full",))
    for rec in records[:2]:
        rec["status"], rec["metrics"] = "diverged", {}
    row = _row(rp.build_report(records), "accuracy", "full")
    assert row[4] == 3 and row[6] == "2/5 (2 diverged)"


def test_point11_power_note_matches_statsmodels():
    base = _one_task(seeds=4)
    shift = [1.0, 2.5, 0.2, 1.7]
    report = rp.build_report(base + _twin(base, "other", shift))
    note = next(n for n in report.table("accuracy").notes if n.startswith("power"))
    sd = float(np.std(shift, ddof=1))
    m = 2  # the table's family: the pair (other, full) and its equivalence test
    mde = TTestPower().solve_power(nobs=4, alpha=0.05 / m, power=0.8) * sd
    need = math.ceil(TTestPower().solve_power(effect_size=1 / sd, alpha=0.05 / m, power=0.8))
    assert f"finds a Δ of {mde:.1f} points 80% of the time; a 1-point Δ needs {need} seeds" in note
    assert "fewer than 5 seeds" in report.table("accuracy").notes[0]


def test_point12_matches_scratch_is_a_test_not_a_comparison_of_means():
    records = make_records(seeds=4, datasets=("digits",), data=(0, 1, 2), strategies=("full", "scratch"))
    rng = np.random.default_rng(0)
    for rec in records:  # full at 20 shots is 0.1 below scratch at full data, with little noise
        key = (rec["cell"]["strategy"], rec["cell"]["data"])
        if key in {("full", "20-shot"), ("scratch", "all")}:
            rec["metrics"]["test"]["acc"] = (97.4 if key[0] == "full" else 97.5) + rng.normal(0, 0.1)
        elif key == ("full", "5-shot"):
            rec["metrics"]["test"]["acc"] = 80.0 + rng.normal(0, 0.1)
    row = next(r for r in rp.build_report(records).table("data").rows if r[2] == "full")
    assert row[-1] == "20-shot (n=200)"  # 97.4 vs 97.5: within the 1-point margin, not "never"


def test_point13_tost_hedges_wilson_and_mcnemar():
    base = _one_task(seeds=4)
    rng = np.random.default_rng(5)
    n = 540
    for rec in base:
        rec["metrics"]["test"]["correct"] = encode_correct(rng.random(n) < 0.9)
    close = _twin(base, "close", [0.05, -0.1, 0.02, 0.04])
    for rec in close:
        rec["metrics"]["test"]["correct"] = encode_correct(rng.random(n) < 0.5)  # disagrees with full a lot
    report = rp.build_report(base + close)
    acc = report.table("accuracy")
    row = _row(report, "accuracy", "close")
    assert acc.headers[8:] == ["p", "p (adj.)", "g_z", "p ≈ (±1)", "p ≈ (adj.)", "pairs", "McNemar",
                               "Wilson (1 run)"]
    seeds_only = _row(rp.build_report(base + close, test_set="ignore"), "accuracy", "close")
    assert seeds_only[11].value < 0.05  # TOST over seeds: equivalent within 1 point on this test set
    # with the test set sampled too, 540 examples on which the two disagree half the time cannot show it
    assert row[11].value > seeds_only[11].value
    assert row[14] == "4/4"
    assert "[" in row[10].text()  # Hedges' g_z with its interval
    assert row[15].low < row[5].mean < row[15].high  # the row's own Wilson interval
    assert any(n.startswith("Wilson (1 run)") for n in acc.notes)
    assert any(n.startswith("multiplicity") for n in acc.notes)
    wider = rp.build_report(base + close, margin=0.01, test_set="ignore")
    assert _row(wider, "accuracy", "close")[11].value > 0.05  # a tighter margin is not backed


def test_margin_must_be_positive():
    with pytest.raises(UserInputError, match="equivalence margin must be a positive number"):
        rp.build_report(_one_task(), margin=0)


def test_latex_output_is_ascii_for_pdflatex():
    records = make_records(seeds=2, datasets=("digits", "letters"), data=(0, 2))
    text = rr.render(rp.build_report(records, interval="percentile"), "latex")
    assert [c for c in text if ord(c) > 127] == []


# ------------------------------------------------------------------ issue 24: audit, round two


def _one_example_behind(seeds: int, n_test: int = 540) -> list[dict]:
    """'worse' gets exactly one more test example wrong than 'full' on every seed; float32 x 100 like a record."""
    recs = []
    for strategy, lost in (("full", 0), ("worse", 1)):
        for s in range(seeds):
            k = n_test - 3 - s - lost
            rec = copy.deepcopy(_one_task(1)[0])
            rec["cell"]["strategy"], rec["seed"], rec["id"] = strategy, s, f"{strategy}-{s}"
            rec["metrics"]["test"] |= {"acc": float(np.float32(k / n_test) * np.float32(100)), "n": n_test}
            recs.append(rec)
    return recs


@pytest.mark.parametrize("seeds", [2, 3, 5])
def test_one_example_behind_on_every_seed_gives_the_exact_sign_flip_p(seeds):
    recs = _one_example_behind(seeds)
    diffs = [r["metrics"]["test"]["acc"] for r in recs[seeds:]]
    assert np.ptp(np.subtract(diffs, [r["metrics"]["test"]["acc"] for r in recs[:seeds]])) > 0  # float32 noise
    report = rp.build_report(recs)  # no crash (g_z's root-finding raised at 3+ pairs)
    row = _row(report, "accuracy", "worse")
    assert row[8].value == pytest.approx(2 / 2 ** seeds)
    assert row[7].agree and "all seeds equal" in row[7].text()
    assert math.isnan(row[10].mean)  # no g_z without variance
    assert "<0.001" not in rr.render(report, "terminal")


def _degenerate_studies() -> dict[str, list[dict]]:
    base = make_records(seeds=3, datasets=("digits",), data=(0, 2))
    same = copy.deepcopy(base)
    for rec in same:  # every strategy and seed identical: no variance anywhere
        rec["metrics"]["test"]["acc"] = 90.0
        rec["metrics"]["shifted"] = {"noise": {"acc": 80.0, "n": 540}}
        rec["metrics"]["source"]["after"]["acc"] = 99.1
        rec["timing"] = {"wall_s": 2.0, "train_s": 1.0, "samples_per_s": 100.0}
    zero = copy.deepcopy(base)
    for rec in zero:  # zero times, 0% and 100% accuracy, a NaN metric
        rec["timing"] = {"wall_s": 0.0, "train_s": 0.0, "samples_per_s": 0.0}
        rec["metrics"]["test"]["acc"] = 100.0 if rec["seed"] else 0.0
        rec["metrics"]["source"]["after"]["acc"] = float("nan")
    one = make_records(seeds=1, datasets=("digits",), data=(0, 1, 2))
    return {"identical": same, "extremes": zero, "one seed": one, "one example behind": _one_example_behind(3)}


@pytest.mark.parametrize("name", ["identical", "extremes", "one seed", "one example behind"])
def test_degenerate_inputs_never_fail_a_table(name):
    records = _degenerate_studies()[name]
    report = rp.build_report(records, primary=[{"strategy": "scratch", "vs": "full"}])
    for table in report.tables:
        assert not (table.empty or "").startswith("could not be computed"), (table.key, table.empty)
    for fmt in rr.FORMATS:
        text = rr.render(report, fmt)
        assert "± 0.0 " not in text and "± 0.0\n" not in text and "nan" not in text.replace("nan)", "")


def test_json_keeps_rank_markers_and_rounds_p_by_significant_digits():
    report = rp.build_report(make_records(seeds=3, datasets=("digits", "letters"), data=(1,)))
    report.table("accuracy").rows[1][8].value = 1.8e-6
    data = json.loads(rr.render(report, "json"))
    ranks = next(t for t in data["tables"] if t["key"] == "ranks")
    assert {r[1]["mark"] for r in ranks["rows"]} & {rp.BEST}
    acc = next(t for t in data["tables"] if t["key"] == "accuracy")
    assert acc["rows"][1][8] == 1.8e-6


def test_effective_robustness_is_na_without_a_usable_reference_line():
    records = make_records(seeds=3, datasets=("digits",), data=(2,), strategies=("full", "linear-probe"))
    report = rp.build_report(records)  # 3 reference runs of one strategy
    rows = report.table("shift").rows
    assert all(r[9] == "n/a" for r in rows)
    assert any("effective robustness n/a: 3 reference runs, fewer than 6" in n for n in report.table("shift").notes)
    full = rp.build_report(make_records(seeds=3, datasets=("digits",), data=(0, 1, 2)))
    er = [r[9] for r in full.table("shift").rows]
    assert all(isinstance(e, rp.Est) for e in er)
    seeds_only = [stats.summarize(list(e.by_seed.values())) for e in er]
    assert all(e.high - e.low > s.high - s.low for e, s in zip(er, seeds_only))  # the fit's uncertainty is in


def test_two_level_intervals_come_from_per_example_bits_and_the_note_says_so():
    rng = np.random.default_rng(1)
    recs = _one_task(seeds=4)
    difficulty = rng.beta(2, 0.3, 540)  # examples differ: some hard for every seed, most easy
    for rec in recs:
        bits = rng.random(540) < difficulty
        rec["metrics"]["test"] |= {"correct": encode_correct(bits), "acc": bits.mean() * 100}
    est = _row(rp.build_report(recs), "accuracy", "full")[5]
    level = stats.two_level(np.stack([rp.correct_bits(r) for r in recs]))
    assert (est.low, est.high) == pytest.approx(stats.t_interval(est.mean, level.var, level.df))
    notes = " ".join(rp.build_report(recs).table("accuracy").notes)
    assert "two-level: over seeds and the test set's examples" in notes
    ignored = _row(rp.build_report(recs, test_set="ignore"), "accuracy", "full")[5]
    assert ignored.high - ignored.low < est.high - est.low


def test_primary_comparisons_come_first_with_their_own_family():
    base = _one_task(seeds=5)
    records = base + _twin(base, "lp-ft", [-3.1, -2.8, -3.3, -2.9, -3.0])
    report = rp.build_report(records, primary=[{"strategy": "lp-ft", "vs": "full"}])
    first = report.tables[0]
    assert first.key == "primary" and first.rows[0][3:5] == ["lp-ft", "full"]
    assert first.rows[0][-1] == "worse than full"
    assert "2 tests of this table" in " ".join(first.notes)
    assert "exploratory" in " ".join(report.table("accuracy").notes)
    with pytest.raises(UserInputError, match="must name a `strategy`"):
        rp.build_report(records, primary=[{"strategy": "lp-ft"}])
