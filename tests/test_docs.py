"""The docs cannot drift from the code: every hook and every CLI command is documented,
and the documented examples run."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import shlex
import types
from pathlib import Path

import click
import pytest
import yaml

from ftbench import hookspecs
from ftbench.cli.gate import baseline as baseline_group
from ftbench.cli.gate import compare_cmd
from ftbench.cli.new import new
from ftbench.components import Backbone, Strategy, TaskData
from ftbench.plugins import PLURALS, Registry, make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
HOOK_DOCS = ROOT / "docs" / "plugin_hooks.md"
CI_DOCS = ROOT / "docs" / "ci.md"
HOOKS = {name: fn for name, fn in vars(hookspecs).items() if name.startswith("ftbench_") and callable(fn)}


def _sections(text: str) -> dict[str, str]:
    """`## heading` -> the text up to the next `## ` heading."""
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def _code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.M | re.S)


def _signature(fn) -> str:
    """The `def` line(s) as written in hookspecs.py, whitespace-normalised."""
    source = inspect.getsource(fn)
    head = source[source.index("def "):].split(":\n", 1)[0] + ":"
    return " ".join(head.split())


def test_there_are_hooks_to_document():
    assert "ftbench_register_strategies" in HOOKS and len(HOOKS) >= 10


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_has_a_section_with_its_exact_signature(name: str):
    sections = _sections(HOOK_DOCS.read_text())
    assert name in sections, f"docs/plugin_hooks.md lacks a `## {name}` section"
    body = " ".join(sections[name].split())
    assert _signature(HOOKS[name]) in body, f"the `## {name}` section must show `{_signature(HOOKS[name])}`"
    firstresult = "yes" if getattr(HOOKS[name], "ftbench_spec")["firstresult"] else "no"
    assert re.search(rf"\*\*firstresult:\*\* {firstresult}\b", body), f"`## {name}`: say firstresult {firstresult}"


def test_no_section_documents_a_hook_that_does_not_exist():
    documented = {h for h in _sections(HOOK_DOCS.read_text()) if h.startswith("ftbench_")}
    assert documented - set(HOOKS) == set()


def _check_component(kind: str, component) -> None:
    params = component.params()
    if kind == "backbone":
        backbone = component.factory(params, num_classes=3, seed=0)
        assert isinstance(backbone, Backbone) and backbone.groups[-1].params
    elif kind == "dataset":
        assert isinstance(component.factory(params, seed=0), TaskData)
    elif kind == "strategy":
        assert isinstance(component.factory(params), Strategy)
    elif kind == "executor":
        assert list(component.factory(params).map(lambda spec: {"id": spec["id"]}, [{"id": "a"}])) == [{"id": "a"}]
    elif kind == "reporter":
        assert isinstance(component.factory(params)({"runs": []}), str)
    elif kind == "logger":
        assert hasattr(component.factory(params, results=Path("results")), "ftbench_run_collected")


@pytest.mark.parametrize("kind", ["backbone", "dataset", "strategy", "executor", "reporter", "logger"])
def test_register_hook_examples_run(kind: str):
    hook = f"ftbench_register_{PLURALS[kind]}"
    blocks = [b for b in _code_blocks(HOOK_DOCS.read_text(), "python")
              if f"def {hook}()" in b and "@ftbench.hookimpl" in b]
    assert len(blocks) == 1, f"docs/plugin_hooks.md needs one example implementing {hook}"
    module = types.ModuleType(f"docs_example_{kind}")
    exec(compile(blocks[0], f"docs/plugin_hooks.md ({hook} example)", "exec"), module.__dict__)
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(module)
    pm.check_pending()
    components = Registry(pm).all(kind)
    assert len(components) == 1
    _check_component(kind, components[0])


def _walk(group: click.Group, prefix: str = "") -> list[str]:
    paths = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # lazily imported commands too
        command = group.get_command(ctx, name)
        path = f"{prefix}{name}"
        paths.append(path)
        if isinstance(command, click.Group):
            paths += _walk(command, f"{path} ")
    return paths


def test_every_cli_command_is_in_the_readme_or_cli_docs():
    if importlib.util.find_spec("ftbench.cli") is None:
        pytest.skip("ftbench.cli does not exist yet (the lead adds the `ftbench` click group)")
    cli = importlib.import_module("ftbench.cli").cli
    text = "\n".join(p.read_text() for p in (ROOT / "README.md", ROOT / "docs" / "cli.md") if p.exists())
    paths = _walk(cli)
    assert paths, "the ftbench group has no commands"
    undocumented = [p for p in paths if not re.search(rf"`ftbench {re.escape(p)}[` ]", text)]
    assert not undocumented, ("mention these as `ftbench <command>` in README.md or docs/cli.md: "
                              + ", ".join(undocumented))


def test_ci_docs_yaml_blocks_parse():
    blocks = _code_blocks(CI_DOCS.read_text(), "yaml")
    assert len(blocks) >= 3
    for block in blocks:
        assert isinstance(yaml.safe_load(block), dict)


GATE_COMMANDS = {"ftbench compare": compare_cmd, "ftbench baseline save": baseline_group.commands["save"],
                 "ftbench new": new}


@pytest.mark.parametrize("doc", [CI_DOCS, HOOK_DOCS], ids=lambda p: p.name)
def test_documented_gate_and_scaffold_flags_exist(doc: Path):
    for prefix, command in GATE_COMMANDS.items():
        known = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
        for line in re.findall(rf"{prefix} [^`\n#|]*", doc.read_text()):
            flags = {tok.split("=")[0] for tok in shlex.split(line) if tok.startswith("-")}
            assert flags <= known, f"{doc.name}: `{line.strip()}` uses unknown flags {flags - known}"
