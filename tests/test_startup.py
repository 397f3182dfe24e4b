"""Start-up: `ftbench --help`, `list` and `validate` must not import torch, timm or
scipy (seconds each, paid on every call). Each command runs in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "torchvision", "scipy", "sklearn")

_PROBE = """
import sys
from ftbench.cli import cli
args, commands = sys.argv[1:], [[]]
for arg in args:  # commands separated by ';', run one after another in this process
    commands.append([]) if arg == ";" else commands[-1].append(arg)
for command in filter(None, commands):
    try:
        cli(command, standalone_mode=False, obj={})
    except SystemExit:
        pass
print("IMPORTED", *sorted(m for m in %r if m in sys.modules))
""" % (HEAVY,)


def _heavy_imports(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    lines = [l for l in out.stdout.splitlines() if l.startswith("IMPORTED")]
    assert lines, out.stdout + out.stderr
    return lines[-1].split()[1:]


@pytest.fixture
def warm_model_list():
    """timm's model names in the (test) cache, as the first `validate` leaves them."""
    from ftbench_timm.names import known_models

    assert "test_resnet" in known_models()


def test_light_commands_import_no_torch(warm_model_list):
    """--help, list and validate, in one interpreter (a heavy import by any one stays)."""
    commands = [["--help"], ["list"], ["list", "strategies"], ["list", "datasets", "imagefolder"],
                ["validate", "suites/quickstart.yaml"], ["validate", "suites/ci-regression.yaml"]]
    assert _heavy_imports(*[a for c in commands for a in (*c, ";")]) == []


def test_the_probe_sees_a_heavy_import():
    """The probe can fail: `report` imports its statistics (scipy) when called."""
    assert "scipy" in _heavy_imports("report", "--help")


def test_lazy_commands_short_help_matches_their_docstrings():
    from ftbench.cli import LAZY_COMMANDS, cli

    ctx = click.Context(cli)
    for name, (_, short) in LAZY_COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        assert click.Command(name, help=short).get_short_help_str(10_000) == command.get_short_help_str(10_000)


def test_report_and_compare_import_no_torch(tmp_path):
    """Reading records needs no torch: the report decodes per-example bits itself
    (ftbench.results.records) and the gate compares numbers (scipy is allowed)."""
    out = tmp_path / "report.json"
    found = _heavy_imports("report", "results/reference/quickstart", "--format", "json", "-o", str(out), ";",
                           "compare", "results/baselines/ci-regression.json", "results/baselines/ci-regression.json")
    assert out.is_file()  # the report ran
    assert [m for m in found if m in ("torch", "timm", "torchvision", "sklearn")] == []


def test_command_examples_keep_their_lines():
    """Each example in a command's --help is a line of its own (click's \\b), not re-wrapped."""
    from click.testing import CliRunner

    from ftbench.cli import cli

    runner = CliRunner()
    for name in cli.list_commands(click.Context(cli)):
        text = runner.invoke(cli, [name, "--help"]).output
        if "Example" not in text:
            continue
        for line in text.split("Example", 1)[1].splitlines()[1:]:
            if not line.strip():
                break
            assert line.strip().count("ftbench ") <= 1, f"`ftbench {name} --help` joins examples: {line.strip()}"
