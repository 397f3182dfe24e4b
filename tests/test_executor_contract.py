"""`ftbench.testing.check_executor` passes the built-in executors and a scaffolded
one (`ftbench new executor`), and fails, with a message saying what an executor
must do, for executors that break the worker contract (`ftbench.driver.worker`)."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ftbench.cli.new import new
from ftbench.components import Component, Params
from ftbench.driver.worker import claim_on_driver, release_claim, run_detached
from ftbench.plugins import Registry, default_registry, make_plugin_manager
from ftbench.testing import check_executor


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(make_plugin_manager())


# ---------------------------------------------------------------- the built-ins pass


def test_the_sequential_executor_passes(registry):
    check_executor(registry.get("executor", "sequential"))


def test_the_pool_executor_with_two_workers_passes(registry):
    pool = registry.get("executor", "pool")
    check_executor(pool, pool.params(workers=2))


# ---------------------------------------------------------------- broken executors fail


class _DropsTheLast:
    """Never runs the last payload it is given."""

    def map(self, run_one, payloads):
        for payload in payloads[:-1]:
            yield run_one(payload)


class _IgnoresClaims:
    """Executes each run itself instead of calling `run_one`: no claim is taken or
    respected, so it runs what another driver holds."""

    def map(self, run_one, payloads):
        from ftbench.engine.runner import execute

        for payload in payloads:
            yield execute(payload.spec, default_registry(payload.plugins), payload.store())


class _ForgetsToWrite:
    """Claims on the driver and runs detached, as an executor without a shared folder
    does, but never writes the record it got back (`write_detached`): its ok records
    are not in the results folder."""

    def map(self, run_one, payloads):
        for payload in payloads:
            stub = claim_on_driver(payload)
            if stub is not None:
                yield stub
                continue
            try:
                record = run_detached(payload)
            finally:
                release_claim(payload)
            yield record


@pytest.mark.parametrize("executor, message", [
    (_DropsTheLast, "map\\(\\) must yield one record per payload"),
    (_IgnoresClaims, "a run another driver holds must come back as the worker's stub, not be run"),
    (_ForgetsToWrite, "the record is not in the payload's results folder"),
], ids=["drops-a-payload", "ignores-claims", "forgets-to-write"])
def test_a_broken_executor_fails_with_what_it_must_do(executor, message):
    component = Component("broken", lambda params: executor(), Params, "Breaks the executor contract (tests).")
    with pytest.raises(AssertionError, match=f"^broken: {message}"):
        check_executor(component)


def test_an_executor_without_map_fails():
    component = Component("no-map", lambda params: object(), Params, "Has no map (tests).")
    with pytest.raises(AssertionError, match="must return an object with map"):
        check_executor(component)


# ---------------------------------------------------------------- the scaffold


def test_ftbench_new_executor_makes_a_package_that_passes_check_executor(tmp_path: Path):
    root = tmp_path / "ftbench-my-exec"
    group = click.Group("ftbench", commands={"new": new})
    result = CliRunner().invoke(group, ["new", "executor", "my-exec", "--dir", str(root)])
    assert result.exit_code == 0, result.output
    assert "`ftbench list executors` shows 'my-exec'" in result.output
    module_file = root / "ftbench_my_exec" / "__init__.py"
    for rel in ("pyproject.toml", "README.md", ".gitignore", "tests/test_plugin.py"):
        assert (root / rel).is_file(), rel
    for path in root.rglob("*"):
        if path.is_file():
            assert "$" not in path.read_text(), f"unrendered placeholder in {path}"
    assert "executor: {name: my-exec" in (root / "README.md").read_text()

    # it imports from ftbench what the built-in executors may (docs/architecture.md, "Plugins")
    from tests.test_architecture import plugin_rules

    allowed = next(a for names, a in plugin_rules() if "ftbench_executors" in names)
    imported = {node.module for node in ast.walk(ast.parse(module_file.read_text()))
                if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(ast.parse(module_file.read_text()))
                 if isinstance(node, ast.Import) for alias in node.names}
    assert {m for m in imported if m.split(".")[0] == "ftbench"} <= set(allowed)

    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("ftbench_my_exec")
        pm = make_plugin_manager(load_entrypoints=False)
        pm.register(module)
        pm.check_pending()  # its @hookimpl matches ftbench_register_executors
        component = Registry(pm).get("executor", "my-exec")
        assert component.factory is module.MyExecExecutor
        check_executor(component)
        check_executor(component, component.params(verbose=True))
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("ftbench_my_exec", None)


def test_the_scaffolded_executor_imports_no_torch(tmp_path: Path):
    from ftbench.scaffold import scaffold

    root = scaffold("executor", "my-exec", tmp_path / "ftbench-my-exec")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    code = "import sys, ftbench_my_exec; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
