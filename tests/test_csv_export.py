"""`ftbench report --format csv`: one tidy long table, numbers as numbers."""

from __future__ import annotations

import csv
import io
import math

from ftbench.report import render as rr
from ftbench.report import Est, Num, Report, Table


def _report() -> Report:
    acc = Table("accuracy", "Accuracy", ["backbone", "dataset", "strategy", "data", "Acc (%)", "p", "W/T/L"],
                rows=[["r18", "digits", "full", "all", Est(90.5, 89.0, 92.0, n=3, mark="*"), Num(0.012, "p"),
                       "baseline"]], label_cols=4)
    rank = Table("ranking", "Ranks", ["strategy", "rank"], rows=[["full", Num(1.5)]], label_cols=1)
    empty = Table("forgetting", "Forgetting", ["strategy", "x"], empty="no source task")
    return Report([acc, rank, empty], {"interval": "bca", "test": "wilcoxon"}, study=None)


def test_one_long_table_with_numbers_bounds_n_and_methods():
    rows = list(csv.DictReader(io.StringIO(rr.render(_report(), "csv"))))
    assert list(rows[0]) == ["table", "backbone", "dataset", "strategy", "data", "metric", "value", "low", "high",
                             "n", "interval", "test", "mark", "text"]
    acc, p, wtl, rank = rows
    assert (acc["table"], acc["strategy"], acc["metric"]) == ("accuracy", "full", "Acc (%)")
    assert (float(acc["value"]), float(acc["low"]), float(acc["high"]), int(acc["n"])) == (90.5, 89.0, 92.0, 3)
    assert (acc["interval"], acc["mark"]) == ("bca", "*")
    assert (float(p["value"]), p["test"]) == (0.012, "wilcoxon")
    assert (wtl["value"], wtl["text"]) == ("", "baseline")
    assert (rank["table"], rank["backbone"], float(rank["value"])) == ("ranking", "", 1.5)
    assert not any(r["table"] == "forgetting" for r in rows)
    assert not any(line.startswith("#") for line in rr.render(_report(), "csv").splitlines())


def test_missing_numbers_are_blank_not_text():
    table = Table("t", "T", ["strategy", "acc"], rows=[["full", Est(math.nan)]], label_cols=1)
    (row,) = csv.DictReader(io.StringIO(rr.render(Report([table], {}, study=None), "csv")))
    assert row["value"] == "" and row["text"] == ""
