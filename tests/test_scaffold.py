"""`ftbench new`: the generated plugin packages install, register and work."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ftbench import hookspecs
from ftbench.cli.new import new
from ftbench.components import Backbone, Params, Strategy, TaskData
from ftbench.errors import UserInputError
from ftbench.plugins import Registry, make_plugin_manager
from ftbench.scaffold import KINDS, render, scaffold

NAMES = {"strategy": "top-k", "backbone": "tiny-timm", "dataset": "colours2", "executor": "in-turn"}
HOOKS = {"strategy": "ftbench_register_strategies", "backbone": "ftbench_register_backbones",
         "dataset": "ftbench_register_datasets", "executor": "ftbench_register_executors"}
PACKAGES = {"strategy": "ftbench_top_k", "backbone": "ftbench_tiny_timm", "dataset": "ftbench_colours2",
            "executor": "ftbench_in_turn"}


@pytest.fixture
def generated(tmp_path: Path):
    """Generate every kind, put the packages on sys.path, and undo it afterwards."""
    roots = {kind: scaffold(kind, NAMES[kind], tmp_path / f"ftbench-{NAMES[kind]}") for kind in KINDS}
    sys.path[:0] = [str(root) for root in roots.values()]
    try:
        yield roots
    finally:
        for root in roots.values():
            sys.path.remove(str(root))
        for package in PACKAGES.values():
            sys.modules.pop(package, None)


@pytest.mark.parametrize("kind", KINDS)
def test_generated_package_layout_and_entry_point(generated, kind: str):
    root = generated[kind]
    package = PACKAGES[kind]
    for rel in ("pyproject.toml", "README.md", f"{package}/__init__.py", "tests/test_plugin.py"):
        assert (root / rel).is_file(), rel
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == f"ftbench-{NAMES[kind]}"
    assert project["entry-points"]["ftbench"] == {f"ftbench-{NAMES[kind]}": package}
    assert any(dep.startswith("ftbench>=") for dep in project["dependencies"])
    for path in root.rglob("*"):
        if path.is_file():
            assert "$" not in path.read_text(), f"unrendered placeholder in {path}"


@pytest.mark.parametrize("kind", KINDS)
def test_generated_hook_registers_a_component_with_a_params_schema(generated, kind: str):
    module = importlib.import_module(PACKAGES[kind])
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(module)
    pm.check_pending()  # every @hookimpl in the module matches a hook in ftbench.hookspecs
    assert hasattr(hookspecs, HOOKS[kind]) and hasattr(module, HOOKS[kind])
    component = Registry(pm).get(kind, NAMES[kind])
    assert issubclass(component.params, Params) and component.params is not Params
    fields = component.params.model_fields
    assert len(fields) == 1 and all(f.description for f in fields.values())
    assert component.summary()


def test_generated_components_work(generated):
    components = {kind: Registry(_pm(kind)).get(kind, NAMES[kind]) for kind in KINDS}
    strategy = components["strategy"]
    assert isinstance(strategy.factory(strategy.params(train_groups=0)), Strategy)
    dataset = components["dataset"]
    data = dataset.factory(dataset.params(per_class=3), seed=0)
    assert isinstance(data, TaskData) and len(data.train) == 3 * len(data.classes)
    backbone_comp = components["backbone"]
    backbone = backbone_comp.factory(backbone_comp.params(), num_classes=4, seed=0)
    assert isinstance(backbone, Backbone) and backbone.groups[-1].name == "head"
    # the generated strategy trains only the head on the generated backbone
    strategy.factory(strategy.params(train_groups=0)).setup(backbone.model, backbone)
    trainable = [n for n, p in backbone.model.named_parameters() if p.requires_grad]
    assert trainable == backbone.head_params
    # the generated executor hands every payload to the run_one it is given
    executor = components["executor"].factory(components["executor"].params())
    assert list(executor.map(lambda payload: {"id": payload, "status": "ok"}, ["a", "b"])) == [
        {"id": "a", "status": "ok"}, {"id": "b", "status": "ok"}]


def _pm(kind: str):
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(importlib.import_module(PACKAGES[kind]))
    return pm


def test_generated_tests_pass(generated, tmp_path: Path):
    """Each package's own tests/test_plugin.py passes (the conformance-kit test only
    once `ftbench.testing` exists)."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib"]
    if importlib.util.find_spec("ftbench.testing") is None:
        args += ["-k", "not conformance"]
    args += [str(root / "tests") for root in generated.values()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(r) for r in generated.values())}
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout and "failed" not in proc.stdout


@pytest.mark.parametrize("name", ["Top-K", "top_k", "-x", "x-", "1abc", "a--b", "", "a b"])
def test_invalid_names_are_refused(tmp_path: Path, name: str):
    with pytest.raises(UserInputError, match="lowercase letters, digits and dashes"):
        scaffold("strategy", name, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_kind_is_refused():
    with pytest.raises(UserInputError, match="unknown kind 'reporter'; choose one of strategy, backbone, dataset, "
                                             "executor"):
        render("reporter", "x")


def test_existing_folder_is_never_overwritten(tmp_path: Path):
    dest = tmp_path / "ftbench-top-k"
    dest.mkdir()
    scaffold("strategy", "top-k", dest)  # an empty folder is fine
    readme = dest / "README.md"
    readme.write_text("mine")
    with pytest.raises(UserInputError, match="already exists"):
        scaffold("strategy", "top-k", dest)
    assert readme.read_text() == "mine"


def test_cli_new_creates_ftbench_name_in_the_current_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    group = click.Group("ftbench", commands={"new": new})
    result = CliRunner().invoke(group, ["new", "dataset", "my-data"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ftbench-my-data" / "ftbench_my_data" / "__init__.py").is_file()
    assert "`ftbench list datasets` shows 'my-data'" in result.output
    bad = CliRunner().invoke(group, ["new", "dataset", "My_Data"])
    assert bad.exit_code == 2 and bad.output.startswith("Error: invalid name 'My_Data'")
    again = CliRunner().invoke(group, ["new", "dataset", "my-data"])
    assert again.exit_code == 2 and "already exists" in again.output


def test_generated_strategy_installs_and_runs_in_a_suite_next_to_builtins(tmp_path):
    """`ftbench new strategy`, pip-install the package (into a target folder, so the
    test environment stays clean), and ftbench finds it through its entry point."""
    from ftbench.results.records import load_records

    package = scaffold("strategy", "top-k", tmp_path / "src")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(target), str(package)], check=True)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "# next to the built-ins\nname: plugin-check\n"
        "backbones: [{name: timm, params: {model: test_resnet, pretrained: none, input_size: 16}}]\n"
        "datasets: [{name: digits}]\n"
        "strategies: [{name: full}, {name: top-k, params: {train_groups: 1}}]\n"
        "data: [{shots: 5}]\nbudget: {steps: 3}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    ftbench = [sys.executable, "-m", "ftbench"]
    listed = subprocess.run([*ftbench, "list", "strategies"], env=env, capture_output=True, text=True, check=True)
    assert "top-k" in listed.stdout
    run = subprocess.run([*ftbench, "run", str(suite), "--results", str(tmp_path / "res"), "-q"],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    records = load_records(tmp_path / "res")
    assert {r["cell"]["strategy"] for r in records} == {"full", "top-k"}
    top_k = next(r for r in records if r["cell"]["strategy"] == "top-k")
    assert top_k["status"] == "ok" and top_k["params"]["trainable"] < top_k["params"]["total"]
    assert any("ftbench-top-k" in provider or "top-k" in provider for provider in top_k["env"]["plugins"].values())
