"""Report tables over generated run records: golden output per format, incomplete
cells, markers, empty axes, the `report` command and the figures."""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import numpy as np
import scipy.stats as sps
import pytest
from click.testing import CliRunner

from tests.fixtures.report_records import make_record, make_records, write_records
from ftbench.report import render as rr
from ftbench import report as rp
from ftbench.cli.report import report as report_command
from ftbench.errors import UserInputError
from ftbench.results.records import load_records

GOLDEN = Path(__file__).parent / "fixtures" / "report"
# FTBENCH_UPDATE_GOLDENS=1 rewrites the golden files from the current output; review the diff.
UPDATE = os.environ.get("FTBENCH_UPDATE_GOLDENS") == "1"


def partial_records() -> list[dict]:
    """The fixture study with one diverged seed and one missing seed."""
    records = make_records()
    cell = lambda r: (r["cell"]["dataset"], r["cell"]["strategy"], r["cell"]["data"], r["seed"])  # noqa: E731
    records = [r for r in records if cell(r) != ("letters", "scratch", "all", 2)]
    i = next(i for i, r in enumerate(records) if cell(r) == ("digits", "full", "5-shot", 1))
    records[i] = make_record("digits", "full", 0, 1, np.random.default_rng(0), status="diverged")
    return records


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return write_records(partial_records(), tmp_path_factory.mktemp("results") / "fixture")


@pytest.fixture(scope="module")
def fixture_report(results) -> rp.Report:
    return rp.build_report(load_records(results))


@pytest.mark.parametrize("fmt", rr.FORMATS)
def test_render_matches_golden(fixture_report, fmt):
    text = rr.render(fixture_report, fmt)
    path = GOLDEN / f"golden.{fmt}"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def test_json_keeps_numbers_as_numbers(fixture_report):
    data = json.loads(rr.render(fixture_report, "json"))
    acc = next(t for t in data["tables"] if t["key"] == "accuracy")
    first = acc["rows"][0]
    assert first[:4] == ["resnet10t-glyphs", "digits", "5-shot", "full"]
    assert first[4] == 2 and isinstance(first[5]["mean"], float)
    assert first[5]["low"] < first[5]["mean"] < first[5]["high"]
    raw, holm = acc["rows"][1][8], acc["rows"][1][9]
    assert isinstance(raw, float) and 0 <= raw <= holm <= 1
    assert acc["rows"][1][6] == "0/3"  # failed seeds of all seeds


def test_every_table_states_seeds_interval_and_test(fixture_report):
    for table in fixture_report.tables:
        if table.empty or table.key in ("incomplete", "ranks"):
            continue
        notes = " ".join(table.notes)
        assert "seeds per" in notes and ("95% CI half-width" in notes or "[95% CI]" in notes), table.key
        assert "paired t-test" in notes, table.key
    acc = " ".join(fixture_report.table("accuracy").notes)
    assert "paired t-test vs full on matched seeds (over seeds only), raw and adjusted in the table's family" in acc
    assert "its 30 hypotheses (12 equivalence tests (±1), 18 pairs) are Holm-adjusted together" in acc
    assert "n = 2–3 seeds per cell (of 3 in the study); see Incomplete cells" in acc


def test_incomplete_cells_are_listed_with_reasons(fixture_report):
    rows = fixture_report.table("incomplete").rows
    assert rows == [
        ["resnet10t-glyphs", "digits", "5-shot", "full", "2/3",
         "seed 1 diverged (RuntimeError: loss is nan at step 12)"],
        ["resnet10t-glyphs", "letters", "all", "scratch", "2/3", "seed 2 missing"],
    ]
    acc = fixture_report.table("accuracy")
    n_by_cell = {tuple(r[:4]): r[4] for r in acc.rows}
    assert n_by_cell[("resnet10t-glyphs", "digits", "5-shot", "full")] == 2


def test_absent_strategy_is_an_incomplete_cell():
    records = [r for r in make_records(seeds=2, datasets=("digits",), data=(0, 2))
               if not (r["cell"]["strategy"] == "scratch" and r["cell"]["data"] == "all")]
    rows = rp.build_report(records).table("incomplete").rows
    assert rows == [["resnet10t-glyphs", "digits", "all", "scratch", "0/2", "no records"]]


def test_complete_study_says_so_in_one_line():
    report = rp.build_report(make_records(seeds=2, datasets=("digits",), data=(1,)))
    assert report.table("incomplete").empty == "none; every cell has every seed ok (seeds 0, 1)"
    assert report.table("accuracy").notes[0].startswith("n = 2 seeds per cell; fewer than 5 seeds")


def test_axes_without_data_say_so():
    records = make_records(seeds=2, datasets=("letters",), data=(1,))
    for rec in records:
        rec["metrics"]["source"] = None
    report = rp.build_report(records)
    text = rr.render(report, "terminal")
    assert "Forgetting (source task): no backbone with a source task in these runs" in text
    assert "Domain shift: no shifted test sets in these runs" in text
    assert "Data efficiency: every strategy ran at one data amount only" in text
    assert "Across tasks" not in text  # one task: no ranks


def _planted(effect: float, seeds: int = 5) -> list[dict]:
    """full vs a copy of it that is `effect` points better, sd 1 per seed."""
    rng = np.random.default_rng(11)
    records = make_records(seeds=seeds, datasets=("digits",), data=(1,), strategies=("full",))
    better = []
    for rec in records:
        twin = copy.deepcopy(rec)
        twin["cell"]["strategy"], twin["id"] = "better", rec["id"][::-1]
        twin["metrics"]["test"]["acc"] = rec["metrics"]["test"]["acc"] + effect + rng.normal(0, 1)
        better.append(twin)
    return records + better


def test_planted_effect_is_found_and_marked():
    report = rp.build_report(_planted(5.0))
    full, better = report.table("accuracy").rows
    assert better[5].mark == rp.BEST and full[5].mark == ""  # full differs significantly: no †
    assert better[7].mean > 3 and better[9].value < 0.05
    assert report.table("summary").rows[1][2] == "1/0/0"


def test_wilcoxon_and_bootstrap_options():
    report = rp.build_report(_planted(5.0), test="wilcoxon", interval="percentile")
    notes = " ".join(report.table("accuracy").notes)
    assert "Wilcoxon signed-rank test vs full" in notes and "percentile bootstrap" in notes
    again = rp.build_report(_planted(5.0), test="wilcoxon", interval="percentile")
    assert rr.render(report, "json") == rr.render(again, "json")  # seeded


def test_wilcoxon_with_too_few_seeds_says_it_cannot_be_significant():
    five = rp.build_report(_planted(5.0, seeds=5), test="wilcoxon")
    row = five.table("accuracy").rows[1]
    assert row[8].value == pytest.approx(sps.wilcoxon([1, 2, 3, 4, 5], [0] * 5).pvalue)  # 0.0625: the floor
    assert row[9].value >= row[8].value  # adjusted in the table's family
    assert any("with 5 pairs the Wilcoxon test cannot give p below 0.0625" in n
               for n in five.table("accuracy").notes)
    six = rp.build_report(_planted(5.0, seeds=6), test="wilcoxon")
    assert not any("cannot give p below" in n for n in six.table("accuracy").notes)
    assert not any("cannot give p below" in n for n in rp.build_report(_planted(5.0)).table("accuracy").notes)


def test_missing_baseline_is_explained():
    report = rp.build_report(_planted(1.0), baseline="lp-ft")
    assert any("no 'lp-ft' runs" in n for n in report.table("accuracy").notes)


def test_bad_options_are_user_errors():
    with pytest.raises(UserInputError, match="unknown interval"):
        rp.build_report(make_records(seeds=1), interval="normal")
    with pytest.raises(UserInputError, match="no run records"):
        rp.build_report([])
    with pytest.raises(UserInputError, match="unknown format 'docx'"):
        rr.render(rp.build_report(make_records(seeds=1)), "docx")


def test_any_tabulate_format_renders(fixture_report):
    text = rr.render(fixture_report, "rounded_outline")
    assert text.startswith("Primary comparisons (confirmatory): none declared") and "\nSummary per strategy\n╭" in text


# ------------------------------------------------------------------ the command


def test_cli_prints_the_tables(results, fixture_report):
    res = CliRunner().invoke(report_command, [str(results), "--format", "markdown"])
    assert res.exit_code == 0, res.output
    assert res.stdout == rr.render(fixture_report, "markdown")


def test_cli_writes_a_file(results, tmp_path):
    out = tmp_path / "report.csv"
    res = CliRunner().invoke(report_command, [str(results), "--format", "csv", "-o", str(out)])
    assert res.exit_code == 0
    assert out.read_text() == (GOLDEN / "golden.csv").read_text()


@pytest.mark.parametrize("args,message", [
    (["{missing}"], "is not a results folder"),
    (["{results}", "--format", "docx"], "unknown format 'docx'"),
    (["{empty}"], "no run records"),
])
def test_cli_bad_input_exits_2(results, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "nope", "results": results, "empty": tmp_path / "empty"}
    res = CliRunner().invoke(report_command, [a.format(**paths) for a in args])
    assert res.exit_code == 2
    assert res.output.startswith("Error: ") and message in res.output


def test_cli_help_lists_formats_and_an_example():
    res = CliRunner().invoke(report_command, ["--help"])
    assert res.exit_code == 0
    assert "terminal, markdown, github, latex, csv, json" in " ".join(res.output.split())
    assert "Example:" in res.output and "ftbench report results/quickstart" in res.output


# ------------------------------------------------------------------ figures


def test_cli_writes_plots(results, tmp_path):
    pytest.importorskip("matplotlib")
    res = CliRunner().invoke(report_command, [str(results), "--plots", str(tmp_path / "figs")])
    assert res.exit_code == 0
    assert f"wrote 6 figure(s) to {tmp_path / 'figs'}" in res.stderr
    paths = sorted((tmp_path / "figs").iterdir())
    assert [p.name for p in paths] == ["accuracy_vs_time.png", "critical_difference.png", "data_efficiency.png",
                                       "domain_shift.png", "forest.png", "forgetting_vs_accuracy.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_plots_without_matplotlib_say_how_to_install(monkeypatch, tmp_path):
    from ftbench.report.plots import write_plots

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    with pytest.raises(UserInputError, match=r"pip install ftbench\[plots\]"):
        write_plots(make_records(seeds=1), tmp_path)
