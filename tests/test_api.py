"""ftbench.api: a light import, the Study's DataFrame against the report it feeds,
every table as data, the gate's verdict, the notebook repr."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftbench import api
from ftbench.report.core import Est
from ftbench.report.html import is_self_contained
from tests.fixtures.report_records import make_records, write_records

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference" / "quickstart"
CELL = ["backbone", "dataset", "strategy", "data"]



def test_importing_the_api_imports_no_pandas_torch_or_scipy():
    probe = "import sys, ftbench.api; print(sorted(m for m in ('pandas', 'torch', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("pandas")
    return api.load(REFERENCE)


def test_reference_frame_means_equal_the_reports_accuracy(reference):
    frame = reference.frame
    assert list(frame.columns) == list(api.RUN_COLUMNS)
    ok = frame[(frame.status == "ok") & (frame.metric == "test.acc")]
    means = ok.groupby(CELL).value.mean()
    table = reference.report().report.table("accuracy")
    col = table.headers.index("Acc (%)")
    plain = lambda label: label.removesuffix(" §")  # noqa: E731  (selection uncertain: a display mark)
    shown = {(r[0], r[1], plain(r[3]), r[2]): r[col].mean for r in table.rows}  # data comes before strategy
    assert len(shown) == len(means) >= 10
    for key, mean in means.items():
        assert shown[key] == pytest.approx(mean, rel=1e-12, abs=1e-9), key
    # the long form of the same table says the same
    long = reference.report()["accuracy"].frame
    acc = long[long.metric == "Acc (%)"].set_index(CELL).value
    for key, mean in means.items():
        assert acc[key] == pytest.approx(mean, abs=1e-5)


def test_the_study_counts_what_the_folder_holds(reference):
    assert len(reference.records) == sum(1 for _ in REFERENCE.glob("*.json"))
    assert reference.bad == [] and sum(reference.fingerprints.values()) == len(reference.records) - reference.n_failed
    assert "records" in repr(reference)


def test_bad_records_are_counted_not_raised(tmp_path):
    folder = write_records(make_records(seeds=2, datasets=("digits",), data=(0,)), tmp_path / "r")
    (folder / "0123456789abcdef.json").write_text("{not json")
    study = api.load(folder)
    assert len(study.bad) == 1 and study.bad[0][0].name == "0123456789abcdef.json"
    assert any("skipped as invalid" in line for line in study.warnings)


def test_every_table_is_data_and_text(tmp_path):
    pytest.importorskip("pandas")
    folder = write_records(make_records(), tmp_path / "r")
    report = api.load(folder).report(interval="bca")
    csv_columns = ["metric", "value", "low", "high", "n", "interval", "test", "mark", "text"]
    for key, table in report.tables.items():
        assert table.title in table.markdown and table.title in table.text and f'id="{key}"' in table.html
        if table.table.empty:
            assert table.frame.empty
            continue
        frame, wide = table.frame, table.wide
        assert list(frame.columns[-len(csv_columns):]) == csv_columns
        assert list(wide.columns) == table.table.headers and len(wide) == len(table.table.rows)
    accuracy = report["accuracy"]
    row = next(r for r in accuracy.table.rows if isinstance(r[5], Est) and math.isfinite(r[5].low))
    first = accuracy.frame[accuracy.frame.metric == "Acc (%)"].iloc[0]
    assert (first.value, first.low, first.high, first.interval) == (
        pytest.approx(row[5].mean, abs=1e-5), pytest.approx(row[5].low, abs=1e-5),
        pytest.approx(row[5].high, abs=1e-5), "bca")
    assert report.options["interval"] == "bca" and report.markdown == report.render("markdown")
    with pytest.raises(KeyError, match="no table 'nope'"):
        report["nope"]


def test_the_notebook_repr_is_the_self_contained_page(tmp_path):
    import html

    folder = write_records(make_records(seeds=2, datasets=("digits",), data=(0,)), tmp_path / "r")
    study = api.load(folder)
    frame = study._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and is_self_contained(html.unescape(frame))
    assert html.unescape(frame.split('srcdoc="', 1)[1].split('" title=', 1)[0]) == study.report().html


def test_compare_gives_the_gates_verdict(tmp_path):
    from ftbench import gate
    from ftbench.errors import UserInputError

    records = make_records(seeds=3, datasets=("digits",), data=(0,))
    folder = write_records(records, tmp_path / "cur")
    gate.save_baseline(records, tmp_path / "base.json")
    with pytest.raises(UserInputError, match="not today's runs"):  # fixture records carry no code digest
        api.compare(tmp_path / "base.json", folder)
    same = api.compare(tmp_path / "base.json", folder, allow_stale=True)
    assert not same.failed and any("stale" in w and "--allow-stale" in w for w in same.warnings)
    lower = [{**r, "metrics": {**r["metrics"], "test": {**r["metrics"]["test"], "acc": r["metrics"]["test"]["acc"] - 20}}}
             for r in records]
    gate.save_baseline(lower, tmp_path / "low.json")
    assert api.compare(tmp_path / "base.json", tmp_path / "low.json").failed
    assert not api.compare(tmp_path / "base.json", tmp_path / "low.json", acc_drop=50).failed
    with pytest.raises(UserInputError, match="overrides must be a dict"):
        api.load_suite(ROOT / "suites" / "quickstart.yaml", overrides="seeds=[0]")


def test_the_cli_prints_what_the_api_returns(tmp_path):
    """`ftbench report` and `ftbench compare` are the API's objects, rendered."""
    from click.testing import CliRunner

    from ftbench import gate
    from ftbench.cli import cli

    records = make_records(seeds=3, datasets=("digits",), data=(0,))
    folder = write_records(records, tmp_path / "cur")
    for fmt in ("markdown", "csv", "json"):
        out = CliRunner().invoke(cli, ["report", str(folder), "--all", "--format", fmt, "--interval", "bca"], obj={})
        assert out.exit_code == 0 and out.stdout == api.load(folder).report(interval="bca").render(fmt)
    gate.save_baseline(records, tmp_path / "base.json")
    out = CliRunner().invoke(cli, ["compare", str(tmp_path / "base.json"), str(folder), "--allow-stale",
                                   "--acc-drop", "0.5"], obj={})
    verdict = api.compare(tmp_path / "base.json", folder, allow_stale=True, acc_drop=0.5)
    assert out.exit_code == 0 and out.stdout == gate.render_terminal(verdict) + "\n"
    assert all(f"warning: {w}" in out.stderr for w in verdict.warnings) and verdict.warnings


def test_save_baseline_writes_what_the_cli_writes_and_refuses_bad_input(tmp_path):
    import json

    from click.testing import CliRunner

    from ftbench.cli import cli
    from ftbench.errors import UserInputError

    folder = write_records(make_records(seeds=3, datasets=("digits",), data=(0,)), tmp_path / "cur")
    data = api.save_baseline(folder, tmp_path / "api.json")
    assert json.loads((tmp_path / "api.json").read_text()) == data and data["cells"]
    out = CliRunner().invoke(cli, ["baseline", "save", str(folder), "-o", str(tmp_path / "cli.json")], obj={})
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "cli.json").read_text()) == data
    with pytest.raises(UserInputError, match="not a results folder"):
        api.save_baseline(tmp_path / "nowhere", tmp_path / "x.json")
    with pytest.raises(UserInputError, match="at least 2 repetitions"):
        api.save_baseline(folder, tmp_path / "x.json", speed_reps=1)


def test_reproduce_refuses_a_folder_that_holds_records_and_names_the_way_out(tmp_path):
    import shutil

    from ftbench.errors import UserInputError

    shutil.copy(next(REFERENCE.glob("*.json")), tmp_path)
    with pytest.raises(UserInputError, match="already holds run records.*--resume"):
        api.reproduce(REFERENCE, tmp_path, seeds=[0])
    with pytest.raises(UserInputError, match="another folder than the reference"):
        api.reproduce(REFERENCE, REFERENCE)
