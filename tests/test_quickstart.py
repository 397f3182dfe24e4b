"""A shrunk copy of the quickstart runs end to end and its report shows all five axes."""

from pathlib import Path

import yaml
from click.testing import CliRunner

from ftbench.cli import cli

QUICKSTART = Path(__file__).parents[1] / "suites" / "quickstart.yaml"


def test_shrunk_quickstart_reports_every_axis(tmp_path):
    suite = yaml.safe_load(QUICKSTART.read_text())
    job = suite["pretrain"]["letters"]
    job["budget"] = {"steps": 15}
    job["min_source_acc"] = 0  # 15 steps learn next to nothing: accepted here, and the report says so
    job["dataset"]["params"].update(n_train=600, n_test=100)
    suite["seeds"] = [0, 1]
    suite["data"] = [{"shots": 2}, {}]
    suite["budget"] = {"samples": 256}
    suite["executor"] = {"name": "sequential"}
    suite["search"]["space"] = {"train.lr": {"grid": [0.001, 0.01]}}
    suite["numerics"] = "default"  # in-process, where torch has run already (tests/test_fingerprint.py: portable)
    shrunk = tmp_path / "quickstart.yaml"
    shrunk.write_text(yaml.safe_dump(suite))
    results = tmp_path / "results"

    run = CliRunner().invoke(cli, ["run", str(shrunk), "--results", str(results), "-q"], obj={})
    assert run.exit_code == 0, run.output
    assert "24 runs; 0 already finished, 24 ok" in run.output

    report = CliRunner().invoke(cli, ["report", str(results), "--all"], obj={})
    assert report.exit_code == 0, report.output
    for axis in ("Accuracy", "Training time", "Data efficiency", "Domain shift", "Forgetting"):
        assert f"\n{axis}" in "\n" + report.output, f"no {axis} table"
    assert "n = 2 seeds per cell" in report.output
    assert "gaussian_noise@3" in report.output and "printed-digits" in report.output  # one row per shift
    assert "Incomplete cells: none" in report.output
    assert "\nSelected hyperparameters" in report.output and "\nSensitivity" in report.output
    assert "source task near chance" in report.output

    again = CliRunner().invoke(cli, ["run", str(shrunk), "--results", str(results), "-q"], obj={})
    assert "24 already finished" in again.output  # and the cached backbone is reused
