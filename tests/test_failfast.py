"""Fail fast: runs sharing a component with two runs that failed the same way are
skipped (recorded, with the reason), and the first failure is printed at once."""

from __future__ import annotations

from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.driver.failfast import FailFast, skip_reason
from ftbench.results.records import load_records

SUITE = """\
name: ff
backbones:
  - {name: timm, label: broken, params: {model: test_resnet, pretrained: "ftbench:0123456789abcdef"}}
  - {name: toy-timm}
datasets: [{name: toy, params: {n_per_class: 6}}]
strategies: [{name: toy-full}, {name: toy-full, label: again, train: {lr: 0.01}}, {name: toy-raise}]
seeds: [0, 1, 2]
budget: {steps: 1}
train: {batch_size: 8}
eval: {curve: false}
"""


def test_a_backbone_that_cannot_load_stops_its_runs_only(tmp_path):
    from ftbench.driver.suite_run import run_suite
    from ftbench.plugins import Registry, make_plugin_manager
    from ftbench.suite import parse_suite

    registry = Registry(make_plugin_manager(extra=("tests.toyplugin",)))
    suite = parse_suite(SUITE, registry=registry)  # no environment check: the runs must meet the error
    outcome = run_suite(suite, registry, tmp_path, quiet=True)
    by_cell = {}
    for rec in load_records(tmp_path):
        by_cell.setdefault((rec["cell"]["backbone"], rec["cell"]["strategy"]), []).append(rec)
    broken = [r for (b, _), recs in by_cell.items() if b == "broken" for r in recs]
    assert sorted(r["status"] for r in broken) == ["failed"] * 2 + ["skipped"] * 7
    skipped = next(r for r in broken if r["status"] == "skipped")
    assert skipped["error"]["message"].startswith(
        "skipped (fail fast): earlier runs with backbone 'broken' failed with BackboneError: no pretrained "
        "checkpoint 'ftbench:0123456789abcdef'")
    assert [r["status"] for r in by_cell[("toy-timm", "toy-full")]] == ["ok"] * 3  # other backbones still run
    # a generic error (RuntimeError in the strategy): of what the two failures share, the backbone
    # and dataset ran ok elsewhere, the strategy never did: it is blamed
    raising = sorted(r["status"] for r in by_cell[("toy-timm", "toy-raise")])
    assert raising == ["failed", "failed", "skipped"]
    assert len(outcome.failed) == 9 + 3


def test_the_next_run_retries_skipped_runs(tmp_path):
    watch = FailFast(tmp_path)
    cell = {"backbone": "b", "dataset": "d", "strategy": "s", "data": "all"}
    failed = {"status": "failed", "cell": cell, "error": {"type": "DataError", "message": "no files\nin /x"}}
    assert watch.observe(failed) is None
    assert "dataset 'd' failed with DataError" in watch.observe({**failed, "seed": 1})
    assert skip_reason(tmp_path, {**cell, "backbone": "other"}).endswith("DataError: no files in /x")
    assert skip_reason(tmp_path, {**cell, "dataset": "e"}) is None
    FailFast(tmp_path)  # a new `ftbench run` starts with no rules
    assert skip_reason(tmp_path, cell) is None


def test_first_failure_is_printed_when_it_happens(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE.replace("  - {name: toy-timm}\n", "").replace(
        "[{name: toy-full}, {name: toy-full, label: again, train: {lr: 0.01}}, {name: toy-raise}]", "[{name: toy-raise}]")
        .replace('pretrained: "ftbench:0123456789abcdef"', "pretrained: none"))
    result = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "run", str(suite), "--results",
                                      str(tmp_path / "r")], obj={})
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    first = next(i for i, l in enumerate(lines) if l.startswith("failed: broken/toy/toy-raise/all seed 0: "
                                                                   "RuntimeError: this strategy always fails"))
    notice = next(i for i, l in enumerate(lines) if l.startswith("fail fast: 2 runs with"))
    summary = next(i for i, l in enumerate(lines) if l.startswith("ff: 3 runs"))
    assert first < notice < summary
    assert "skipped: " in result.stderr


def test_eta_comes_from_later_runs_not_the_first():
    from ftbench.driver.suite_run import _duration, eta_seconds

    first = {"wall_s": 60.0, "data_s": 45.0, "train_s": 10.0}  # data loading: once per process
    assert eta_seconds([], 5) is None
    assert eta_seconds([first], 4) == 4 * 15.0
    later = [first, {"wall_s": 12.0, "data_s": 0.5, "train_s": 10.0}, {"wall_s": 14.0, "train_s": 10.0}]
    assert eta_seconds(later, 10) == 10 * 13.0
    assert eta_seconds([{"wall_s": 1.0, "train_s": 0.0}], 3) is None  # failed before training: unknown
    assert (_duration(130), _duration(7)) == ("2m10s", "7s")
