"""The built-in loggers, read back with each library's own reader.

One suite (a run that finishes and one that fails) runs under the process pool with
all three loggers; each test reads what its tracker wrote and compares it with the
records. A logger that raises is reported once and the runs go on.
"""

import importlib.util
import json
import sys

import pytest
from click.testing import CliRunner

import ftbench
from ftbench.cli import cli
from ftbench.components import Component, NoParams
from ftbench.results.records import load_records

LIBS = {"mlflow": "mlflow", "tensorboard": "tensorboard", "wandb": "wandb"}
AVAILABLE = [name for name, module in LIBS.items() if importlib.util.find_spec(module)]

SUITE = """
name: logged
backbones: [{name: toy-timm}]
datasets: [{name: toy}]
strategies: [{name: toy-full}, {name: toy-raise}]
seeds: [3]
budget: {steps: 6}
train: {batch_size: 16}
eval: {curve_points: 3}
"""


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Results of the suite run with `-j 2` and every logger whose library is installed."""
    if not AVAILABLE:
        pytest.skip("no logger library installed (pip install 'ftbench[loggers]')")
    tmp = tmp_path_factory.mktemp("loggers")
    (tmp / "s.yaml").write_text(SUITE)
    args = ["--plugin", "tests.toyplugin", "run", str(tmp / "s.yaml"), "--results", str(tmp / "res"), "-q", "-j", "2"]
    for name in AVAILABLE:
        args += ["--logger", name]
    with pytest.MonkeyPatch.context() as mp:  # W&B's caches and settings stay out of the home folder
        for var in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
            mp.setenv(var, str(tmp / var.lower()))
        result = CliRunner().invoke(cli, args, obj={})
    assert result.exit_code == 1, result.output  # toy-raise fails; the loggers must not add errors
    assert "logger failed" not in result.output, result.output
    records = {r["cell"]["strategy"]: r for r in load_records(tmp / "res")}
    assert {r["status"] for r in records.values()} == {"ok", "failed"}
    return tmp / "res", records


def _need(name):
    if name not in AVAILABLE:
        pytest.skip(f"{LIBS[name]} is not installed (pip install 'ftbench[loggers]')")


def test_mlflow_has_a_parent_and_a_child_run_per_record(logged):
    _need("mlflow")
    from mlflow.tracking import MlflowClient

    results, records = logged
    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    exp = client.get_experiment_by_name("logged")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.tags["strategy"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert set(children) == set(records)
    ok, child = records["toy-full"], children["toy-full"]
    assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    assert child.data.tags["seed"] == "3" and child.data.tags["status"] == "ok"
    assert child.data.tags["ftbench_id"] == ok["id"] and child.info.status == "FINISHED"
    assert children["toy-raise"].data.tags["status"] == "failed" and children["toy-raise"].info.status == "FAILED"
    assert child.data.params["strategy.name"] == "toy-full"
    assert child.data.params["budget.steps"] == "6" and child.data.params["seed"] == "3"
    assert child.data.metrics["test.acc"] == pytest.approx(ok["metrics"]["test"]["acc"])
    history = client.get_metric_history(child.info.run_id, "val_acc")
    curve = ok["metrics"]["curve"]
    assert len(curve) >= 2
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
        [(p["samples"], pytest.approx(p["val_acc"])) for p in curve]
    saved = json.loads((client.download_artifacts(child.info.run_id, "record.json", str(results / "dl"))
                        and (results / "dl" / "record.json").read_text()))
    assert saved == ok


def test_tensorboard_has_a_log_dir_per_run_with_curve_and_hparams(logged):
    _need("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    results, records = logged
    dirs = sorted((results / "tensorboard").iterdir())
    assert len(dirs) == 2
    ok = records["toy-full"]
    (run_dir,) = [d for d in dirs if d.name.endswith(ok["id"])]
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    curve = ok["metrics"]["curve"]
    assert [(e.step, e.value) for e in acc.Scalars("curve/val_acc")] == \
        [(p["samples"], pytest.approx(p["val_acc"])) for p in curve]
    (final,) = acc.Scalars("final/test.acc")
    assert final.value == pytest.approx(ok["metrics"]["test"]["acc"])
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["strategy.name"].string_value == "toy-full"
    assert start.hparams["seed"].number_value == 3


def test_wandb_offline_runs_hold_config_curve_and_summary(logged):
    _need("wandb")
    results, records = logged
    run_dirs = sorted((results / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 2
    seen = {}
    for run_dir in run_dirs:
        (path,) = run_dir.glob("*.wandb")
        run, history, summary = None, [], {}
        for rec in _wandb_records(path):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                run = rec.run
            elif kind == "history":
                history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
            elif kind == "summary":
                summary.update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        seen[run.job_type] = (run, history, summary)
    assert set(seen) == set(records)
    run, history, summary = seen["toy-full"]
    ok = records["toy-full"]
    assert run.run_group == "logged" and run.project == "logged"
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert config["strategy"]["name"] == "toy-full" and config["seed"] == 3
    curve = ok["metrics"]["curve"]
    assert [(h["_step"], h["val_acc"]) for h in history] == [(p["samples"], pytest.approx(p["val_acc"])) for p in curve]
    assert summary["test.acc"] == pytest.approx(ok["metrics"]["test"]["acc"]) and summary["status"] == "ok"


def _key(item) -> str:
    return item.key or ".".join(item.nested_key)


def _wandb_records(path):
    """The records of a `.wandb` file: a 7-byte W&B header, then LevelDB log framing
    (32 KiB blocks; each chunk: crc32c, length, type full/first/middle/last) around
    wandb's own `Record` protobufs. wandb 0.2x+ reads these in its Go core only."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, _magic, _version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        room = 32768 - pos % 32768
        if room < 7:  # block trailer padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:  # zero padding at the end of a block
            pos += 32768 - pos % 32768 if pos % 32768 else 0
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            yield wandb_internal_pb2.Record.FromString(pending)


class _Broken:
    @ftbench.hookimpl
    def ftbench_register_loggers(self):
        from ftbench_loggers._base import Logger

        class Broken(Logger):
            name = "broken"

            def log_run(self, suite, record):
                raise ConnectionError("tracker is down")

        return [Component("broken", lambda params, results: Broken(params, results=results), NoParams, "Fails.")]


def test_a_failing_logger_is_reported_once_and_runs_go_on(toy_registry, tmp_path, capsys, monkeypatch):
    """One logger raises on every record; another cannot start (its library is missing)."""
    from ftbench.driver.suite_run import run_suite
    from ftbench.suite import parse_suite

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError

    plugin = _Broken()
    toy_registry.pm.register(plugin)
    try:
        from ftbench.plugins import Registry

        registry = Registry(toy_registry.pm)
        suite = parse_suite(SUITE.replace("{name: toy-raise}", "{name: toy-full, label: again, train: {lr: 0.01}}")
                            + "loggers: [{name: broken}, {name: wandb}]\n", registry=registry)
        outcome = run_suite(suite, registry, tmp_path / "res", quiet=True)
    finally:
        toy_registry.pm.unregister(plugin)
    assert len(outcome.records) == 2 and not outcome.failed
    err = capsys.readouterr().err
    assert err.count("the broken logger failed in run") == 1 and "ConnectionError: tracker is down" in err
    assert "failed 2 times in all" in err
    assert "the wandb logger could not start (ImportError: needs wandb: pip install 'ftbench[loggers]'" in err


def test_an_unknown_logger_is_a_clear_error(tmp_path):
    (tmp_path / "s.yaml").write_text(SUITE + "loggers: [{name: mlflw}]\n")
    result = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "validate", str(tmp_path / "s.yaml")], obj={})
    assert result.exit_code == 2, result.output
    assert "unknown logger 'mlflw'; did you mean 'mlflow'?" in result.output
    assert "`ftbench list loggers`" in result.output


def test_an_unknown_cli_logger_is_a_clear_error(tmp_path):
    (tmp_path / "s.yaml").write_text(SUITE)
    result = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "run", str(tmp_path / "s.yaml"),
                                      "--results", str(tmp_path / "res"), "--logger", "tensorbord"], obj={})
    assert result.exit_code == 2, result.output
    assert "unknown logger 'tensorbord'; did you mean 'tensorboard'?" in result.output
    assert not (tmp_path / "res").exists()  # nothing ran
