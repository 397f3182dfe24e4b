"""Provenance end to end: which code made a record, and what every command does with
a record made by other code (issue 23).

The Done-when of the issue is `test_regressed_plugin_behind_an_unchanged_version_fails_the_gate`:
a scaffolded plugin installed non-editably, its records gated, its code regressed
and reinstalled under the same version. The gate must refuse the stale records and,
once they are rerun, fail; it must never pass.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftbench.results import provenance
from ftbench.cli import cli
from ftbench.components import Component, Params, Strategy, lazy
from ftbench.scaffold import scaffold
from ftbench.results.records import load_records

ROOT = Path(__file__).resolve().parents[1]


def _ftbench(*args: str, pythonpath: list[Path] = (), cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`ftbench ARGS` in a fresh interpreter (a new process reads the code afresh),
    with `pythonpath` in front of the installed packages."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, pythonpath), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "ftbench", *map(str, args)], env=env, cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------- stale_reason


def _record(code: dict | None = None, scheme: int | None = provenance.CODE_SCHEME, threads: int = 2, **env) -> dict:
    env = {"threads": threads, **env}
    if code is not None:
        env["code"] = code
    if scheme is not None:
        env["code_scheme"] = scheme
    return {"id": "r", "status": "ok", "env": env}


def test_stale_reason_says_why_for_every_kind_of_record():
    current = {"ftbench": provenance.module_digest("ftbench")}
    assert provenance.stale_reason(_record(current)) is None
    assert provenance.stale_reason(_record(None, scheme=None)) == provenance.NO_DIGEST
    assert provenance.stale_reason(_record(current, scheme=None)).startswith("digest scheme changed")
    assert provenance.stale_reason(_record(current, scheme=1)).startswith("digest scheme changed")
    failed = _record({}, code_error="digest failed: OSError: [Errno 13] Permission denied")
    assert provenance.stale_reason(failed) == "no code digests (digest failed: OSError: [Errno 13] Permission denied)"
    assert provenance.stale_reason(_record({**current, "ftbench": "sha256:0"})) == "code changed: ftbench"
    gone = _record({**current, "no_such_plugin_pkg": "sha256:0"})
    assert provenance.stale_reason(gone) == "not installed now: no_such_plugin_pkg"
    assert provenance.stale_reason(_record(current, threads=2), threads=2) is None
    assert provenance.stale_reason(_record(current, threads=2), threads=1) == "threads changed: 2 -> 1"
    # Only finished records can be stale; a failed one runs again anyway.
    assert provenance.stale_records([{**_record(None), "status": "failed"}]) == {}


def test_a_digest_that_fails_is_recorded_with_its_reason_never_as_an_empty_code():
    class Broken:
        def get(self, kind, name):
            raise OSError("permission denied reading the plugin")

    class Spec:  # what run_code reads of a RunSpec
        backbone = dataset = strategy = type("Ref", (), {"name": "x"})()
    Spec.dataset.shifts = type("Shifts", (), {"datasets": []})()
    env = provenance.code_env(Spec, Broken())
    assert env["code"] == {} and env["code_scheme"] == provenance.CODE_SCHEME
    assert env["code_error"] == "digest failed: OSError: permission denied reading the plugin"
    assert provenance.stale_reason({"env": env}).startswith("no code digests (digest failed: OSError")
    assert provenance.code_env(Spec, None)["code_error"] == "the run did not execute"


def test_a_component_is_digested_by_the_package_its_code_lives_in():
    from ftbench import testing

    unit = provenance.code_unit
    assert unit(Component("a", lazy("ftbench_strategies.full:Full"), Params)) == "ftbench_strategies"
    assert unit(Component("b", lazy("some_pkg.sub.mod:Make"), Params)) == "some_pkg"
    assert unit(Component("c", functools.partial(lazy("other_pkg.x:F"), 1), Params)) == "other_pkg"
    assert unit(testing.TOY_BACKBONE) == "ftbench.testing"  # outside the core digest: digested on its own
    assert unit(Component("d", Strategy, Params)) == "ftbench"  # a core class: the core digest covers it
    assert unit(Component("e", _record, Params)) == "tests"


def test_the_core_digest_covers_the_trial_code_and_not_the_cli():
    names = {p.relative_to(ROOT / "ftbench").as_posix() for p in provenance.core_files()}
    assert {"search.py", "engine/runner.py", "engine/training.py", "components.py", "results/provenance.py"} <= names
    assert not {n for n in names if n.startswith(("cli", "report/", "stats/", "testing.py", "compare.py"))}


# ---------------------------------------------------------------- every imported module is digested

LAZY_PLUGIN = {
    "__init__.py": '''
        import ftbench
        from ftbench.components import Component, Params, lazy

        @ftbench.hookimpl
        def ftbench_register_strategies():
            return [Component("lazy-full", lazy("lazyplug.impl:make"), Params, "A lazily registered strategy.")]
    ''',
    "impl.py": '''
        from lazyplug.helpers import everything

        def make(params):
            return everything()
    ''',
    "helpers.py": '''
        from ftbench.components import Strategy

        def everything():
            return Strategy()
    ''',
}

COVERAGE_PROBE = '''
import json, sys
from pathlib import Path
import lazyplug
from ftbench.driver import run_suite
from ftbench.plugins import Registry, make_plugin_manager
from ftbench.suite import parse_suite

pm = make_plugin_manager()
pm.register(lazyplug, name="lazyplug")
registry = Registry(pm)
suite = parse_suite(Path(sys.argv[1]).read_text(), registry=registry)
before = set(sys.modules)  # registration and suite loading done: what the run itself imports comes next
outcome = run_suite(suite, registry, Path(sys.argv[2]), quiet=True)
assert not outcome.failed, outcome.failed
print(json.dumps({"before": sorted(before), "after": sorted(sys.modules),
                  "files": {m: getattr(mod, "__file__", None) for m, mod in sys.modules.items()}}))
'''

COVERAGE_SUITE = """
name: coverage
backbones: [{name: timm, params: {model: test_resnet, pretrained: none, input_size: 16}}]
datasets: [{name: glyphs, params: {charset: "ABC", n_train: 24, n_test: 12, size: 16}}]
strategies: [{name: lazy-full}]
data: [{shots: 8}]
seeds: [0]
budget: {steps: 2}
train: {batch_size: 8}
search: {trials: 1, space: {train.lr: {choice: [0.01]}}}
threads: 1
"""


def _write_package(root: Path, name: str, files: dict[str, str]) -> None:
    (root / name).mkdir(parents=True)
    for rel, text in files.items():
        (root / name / rel).write_text(textwrap.dedent(text))


def test_every_module_a_run_imports_is_covered_by_a_digest(tmp_path):
    """A real run (a search trial and a final run) in a fresh interpreter: every
    module of ftbench loaded by then is in the core digest, and every other project
    module the run imported (a lazily registered plugin's, the built-in plugins')
    lies in a package its records digest."""
    _write_package(tmp_path / "src", "lazyplug", LAZY_PLUGIN)
    (tmp_path / "suite.yaml").write_text(COVERAGE_SUITE)
    out = tmp_path / "res"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", COVERAGE_PROBE, str(tmp_path / "suite.yaml"), str(out)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    records = [*load_records(out), *load_records(out / "trials")]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    digested = set.intersection(*(set(r["env"]["code"]) for r in records))
    assert {"ftbench", "ftbench_timm", "ftbench_datasets", "lazyplug"} <= digested

    project = tuple(str(p) + os.sep for p in (ROOT / "ftbench", ROOT / "plugins", ROOT / "tests", tmp_path / "src"))
    files = {m: f for m, f in seen["files"].items() if f and f.startswith(project)}
    core = {str(p) for p in provenance.core_files()}
    uncovered_core = sorted(m for m, f in files.items() if m.split(".")[0] == "ftbench" and f not in core
                            and m not in digested)
    assert not uncovered_core, f"ftbench modules a run imports but no digest covers: {uncovered_core}"
    new = set(seen["after"]) - set(seen["before"])
    uncovered = sorted(m for m in new & set(files) if m.split(".")[0] != "ftbench" and m.split(".")[0] not in digested)
    assert not uncovered, f"modules the run imported but no digest covers: {uncovered}"
    assert {"lazyplug.impl", "lazyplug.helpers", "ftbench_timm.build"} <= new  # the probe saw the lazy imports


# ---------------------------------------------------------------- the Done-when: a planted regression

GATE_SUITE = """
name: gate
backbones: [{name: timm, params: {model: test_resnet, pretrained: none, input_size: 16}}]
datasets: [{name: digits}]
strategies: [{name: planted, params: {train_groups: 5}}]
data: [{shots: 10}]
seeds: [0]
budget: {steps: 20}
train: {lr: 0.01}
threads: 1
"""


def _pip_install(source: Path, target: Path) -> None:
    """A non-editable install of `source` into the folder `target` (with its RECORD),
    replacing what is there: the test environment itself is never touched, so a
    test killed half-way leaves no plugin installed."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--upgrade", "--target", str(target), str(source)],
                   check=True, capture_output=True, timeout=300)


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A scaffolded strategy `planted`, pip-installed (not editable) into a folder on
    this process's path; (its source, that folder). Forgotten afterwards."""
    import importlib

    source = scaffold("strategy", "planted", tmp_path / "src")
    site = tmp_path / "site"
    _pip_install(source, site)
    monkeypatch.syspath_prepend(str(site))

    def forget():
        sys.modules.pop("ftbench_planted", None)
        importlib.invalidate_caches()
        provenance.module_digest.cache_clear()
        provenance._distributions_by_package.cache_clear()
    forget()
    yield source, site
    forget()


def test_regressed_plugin_behind_an_unchanged_version_fails_the_gate(tmp_path, installed_plugin):
    source, site = installed_plugin
    suite, out, base = tmp_path / "gate.yaml", tmp_path / "results", tmp_path / "base.json"
    suite.write_text(GATE_SUITE)
    run = CliRunner().invoke(cli, ["run", str(suite), "--results", str(out), "-q"], obj={})
    assert run.exit_code == 0, run.output
    (record,) = load_records(out)
    assert record["env"]["code"]["ftbench_planted"].startswith("dist:ftbench-planted==0.1.0 sha256:")
    assert record["metrics"]["test"]["acc"] > 50, record["metrics"]["test"]  # it learns (10 classes)
    assert CliRunner().invoke(cli, ["baseline", "save", str(out), "-o", str(base)], obj={}).exit_code == 0

    # The regression: the plugin's groups stop learning; same version, reinstalled non-editably.
    module = source / "ftbench_planted" / "__init__.py"
    module.write_text(module.read_text().replace("lr_scale=1.0", "lr_scale=1e-6"))
    _pip_install(source, site)
    assert 'version = "0.1.0"' in (source / "pyproject.toml").read_text()

    # A new process reads the installed files afresh.
    status = _ftbench("status", out, pythonpath=[site])
    assert status.returncode == 0, status.stderr
    assert "1 of 1 finished runs are stale (1 code changed: ftbench_planted)" in status.stdout, status.stdout
    gate = _ftbench("compare", base, out, pythonpath=[site])
    assert gate.returncode == 2, gate.stdout + gate.stderr
    assert "1 of 1 finished runs are stale (1 code changed: ftbench_planted)" in gate.stderr
    assert "--rerun-stale" in gate.stderr and "--allow-stale" in gate.stderr
    looked = _ftbench("compare", base, out, "--allow-stale", pythonpath=[site])
    assert looked.returncode == 0 and "PASS" in looked.stdout  # the false pass the refusal prevents

    sys.modules.pop("ftbench_planted", None)  # this process too now runs the reinstalled code
    provenance.module_digest.cache_clear()
    rerun = CliRunner().invoke(cli, ["run", str(suite), "--results", str(out), "-q", "--rerun-stale"], obj={})
    assert rerun.exit_code == 0 and "0 already finished, 1 ok" in rerun.output, rerun.output
    gate = CliRunner().invoke(cli, ["compare", str(base), str(out)], obj={})
    assert gate.exit_code == 1 and "ACC REGRESSION" in gate.output, gate.output


def test_editing_a_builtin_strategy_module_makes_its_records_stale(tmp_path):
    """plugins/ftbench_strategies is edited on a copy placed in front of the
    installed one, so the repository is never touched."""
    suite, out, base = tmp_path / "s.yaml", tmp_path / "results", tmp_path / "base.json"
    suite.write_text(GATE_SUITE.replace("{name: planted, params: {train_groups: 5}}", "{name: full}")
                     .replace("steps: 20", "steps: 2"))
    run = CliRunner().invoke(cli, ["run", str(suite), "--results", str(out), "-q"], obj={})
    assert run.exit_code == 0, run.output
    assert set(load_records(out)[0]["env"]["code"]) == {"ftbench", "ftbench_datasets", "ftbench_strategies",
                                                        "ftbench_timm"}
    assert CliRunner().invoke(cli, ["baseline", "save", str(out), "-o", str(base)], obj={}).exit_code == 0
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "plugins" / "ftbench_strategies", copy / "ftbench_strategies",
                    ignore=shutil.ignore_patterns("__pycache__"))
    unchanged = _ftbench("status", out, pythonpath=[copy])
    assert unchanged.returncode == 0 and "stale          0" in unchanged.stdout, unchanged.stdout + unchanged.stderr

    full = copy / "ftbench_strategies" / "full.py"
    full.write_text(full.read_text() + "\n# an edit\n")
    status = _ftbench("status", out, pythonpath=[copy])
    assert "1 of 1 finished runs are stale (1 code changed: ftbench_strategies)" in status.stdout, status.stdout
    gate = _ftbench("compare", base, out, pythonpath=[copy])
    assert gate.returncode == 2 and "code changed: ftbench_strategies" in gate.stderr, gate.stderr


# ---------------------------------------------------------------- threads, orphans, missing plugins

TOY_SUITE = """
name: toys
backbones: [{name: toy-timm}]
datasets: [{name: toy, params: {n_per_class: 8}}]
strategies: [{name: toy-full}, {name: sgd-full, label: sgd}]
seeds: [0]
budget: {steps: 2}
train: {batch_size: 16}
threads: 1
"""

SGD_PLUGIN = '''
import ftbench
from ftbench.components import Component, Params, Strategy
from pydantic import Field


class SgdParams(Params):
    momentum: float = Field(0.9, description="kept in the config, so a changed default changes the run id")


@ftbench.hookimpl
def ftbench_register_strategies():
    return [Component("sgd-full", lambda p: Strategy(), SgdParams, "Everything trains (tests).")]
'''


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "--plugin", "sgd_plugin", *map(str, args)],
                              obj={})


@pytest.fixture
def sgd_plugin(tmp_path, monkeypatch):
    (tmp_path / "sgd_plugin.py").write_text(SGD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / "sgd_plugin.py"
    sys.modules.pop("sgd_plugin", None)
    provenance.module_digest.cache_clear()


def test_a_changed_thread_count_is_stale_not_already_finished(tmp_path, sgd_plugin):
    suite, out = tmp_path / "toys.yaml", tmp_path / "res"
    suite.write_text(TOY_SUITE)
    assert _invoke("run", suite, "--results", out, "-q").exit_code == 0
    ids = {r["id"] for r in load_records(out)}
    again = _invoke("run", suite, "--results", out, "-q", "-o", "threads=2")
    assert "2 runs; 2 already finished (2 of them stale), 0 ok" in again.output, again.output
    assert "2 of 2 finished runs are stale (2 threads changed: 1 -> 2), kept as finished" in again.output
    status = _invoke("status", out)  # the saved suite now says threads: 2
    assert "stale          2" in status.output and "threads changed: 1 -> 2" in status.output
    rerun = _invoke("run", suite, "--results", out, "-q", "-o", "threads=2", "--rerun-stale")
    assert "0 already finished, 2 ok" in rerun.output, rerun.output
    records = load_records(out)
    assert {r["id"] for r in records} == ids and {r["env"]["threads"] for r in records} == {2}  # ids kept


def test_orphaned_records_are_counted_warned_about_and_archived(tmp_path, sgd_plugin):
    suite, out = tmp_path / "toys.yaml", tmp_path / "res"
    suite.write_text(TOY_SUITE)
    assert _invoke("run", suite, "--results", out, "-q").exit_code == 0
    old = {r["cell"]["strategy"]: r["id"] for r in load_records(out)}
    sgd_plugin.write_text(SGD_PLUGIN.replace("Field(0.9,", "Field(0.5,"))  # a default changed: a new id
    sys.modules.pop("sgd_plugin", None)
    provenance.module_digest.cache_clear()
    assert _invoke("run", suite, "--results", out, "-q").exit_code == 0
    assert len(load_records(out)) == 3

    status = _invoke("status", out)
    assert "orphaned       1" in status.output and "stale          0" in status.output, status.output
    assert f"1 orphaned records" in status.output and f"`ftbench prune {out}`" in status.output
    report = _invoke("report", out)
    assert report.exit_code == 0 and "warning: 1 orphaned records" in report.output
    assert "are stale" not in report.output  # status and report agree: nothing is stale
    gate = _invoke("compare", out, out)
    assert gate.exit_code == 2 and "1 orphaned records" in gate.output

    dry = _invoke("prune", out, "--dry-run")
    assert f"would move {old['sgd']}" in dry.output and (out / f"{old['sgd']}.json").exists()
    moved = _invoke("prune", out)
    assert moved.exit_code == 0 and "moved 1 orphaned records" in moved.output, moved.output
    (archived,) = (out / "archive").glob(f"*/{old['sgd']}.json")  # moved, not deleted
    assert json.loads(archived.read_text())["id"] == old["sgd"]
    assert "orphaned       0" in _invoke("status", out).output
    assert "warning" not in _invoke("report", out).output
    assert _invoke("compare", out, out).exit_code == 0


def test_status_works_without_the_plugin_that_made_the_records_and_names_it(tmp_path, sgd_plugin):
    suite, out = tmp_path / "toys.yaml", tmp_path / "res"
    suite.write_text(TOY_SUITE)
    assert _invoke("run", suite, "--results", out, "-q").exit_code == 0
    alone = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "status", str(out)], obj={})
    assert alone.exit_code == 0, alone.output
    assert "ok             2" in alone.output
    assert "unknown strategy 'sgd-full'" in alone.output and "its records came from sgd_plugin" in alone.output
    assert "stale          0" in alone.output  # not loaded, but its code is there and unchanged

    sgd_plugin.unlink()  # uninstalled: its records are stale, and the gate says why
    provenance.module_digest.cache_clear()
    gone = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "status", str(out)], obj={})
    assert gone.exit_code == 0 and "1 not installed now: sgd_plugin" in gone.output, gone.output
    gate = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "compare", str(out), str(out)], obj={})
    assert gate.exit_code == 2 and "not installed now: sgd_plugin" in gate.output


def test_report_refuses_a_plugin_module_that_cannot_be_imported(tmp_path, sgd_plugin):
    suite, out = tmp_path / "toys.yaml", tmp_path / "res"
    suite.write_text(TOY_SUITE)
    assert _invoke("run", suite, "--results", out, "-q").exit_code == 0
    bad = CliRunner().invoke(cli, ["--plugin", "no_such_module_xyz", "report", str(out)], obj={})
    assert bad.exit_code == 2 and "--plugin no_such_module_xyz: cannot import it" in bad.output, bad.output
    status = CliRunner().invoke(cli, ["--plugin", "no_such_module_xyz", "status", str(out)], obj={})
    assert status.exit_code == 2 and "--plugin no_such_module_xyz: cannot import it" in status.output


def test_a_namespace_package_plugin_is_digested_by_its_files(tmp_path, monkeypatch):
    """A plugin in a folder without __init__.py (a checkout's benchmarks/) has no
    origin file: its digest covers its .py files, is the same however often sys.path
    names the folder, and changes when a file does (it used to read as 'missing',
    so its records were always stale)."""
    import importlib

    pkg = tmp_path / "nsplug"
    pkg.mkdir()
    (pkg / "mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def digest() -> str:
        importlib.invalidate_caches()
        provenance.module_digest.cache_clear()
        return provenance.module_digest("nsplug")

    once = digest()
    assert once.startswith("sha256:")
    monkeypatch.syspath_prepend(str(tmp_path))  # the folder twice on sys.path ('' and the checkout)
    monkeypatch.syspath_prepend(str(tmp_path / "." / ""))
    assert digest() == once
    (pkg / "mod.py").write_text("X = 2\n")
    assert digest() != once
    provenance.module_digest.cache_clear()
