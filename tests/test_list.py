"""`ftbench list [KIND [NAME]]`: plural headers, no empty sections, one component in full."""

from __future__ import annotations

from click.testing import CliRunner

from ftbench.cli import cli


def _invoke(*args):
    return CliRunner().invoke(cli, list(args), obj={})


def test_overview_uses_plurals_and_skips_empty_kinds():
    result = _invoke("list")
    assert result.exit_code == 0
    assert "strategies (18)" in result.output and "strategys" not in result.output
    assert "reporters (0)" not in result.output
    assert _invoke("list", "reporters").stdout.startswith("no reporters installed")


def test_one_dataset_in_full_with_types_defaults_and_layout():
    result = _invoke("list", "datasets", "imagefolder")
    assert result.exit_code == 0, result.output
    rows: dict[str, str] = {}
    for line in result.output.splitlines():
        if line[:1].strip():  # a row's first line (continuations are indented)
            rows.setdefault(line.split()[0], line)
    assert "str" in rows["root"] and "required" in rows["root"] and "folder of class folders" in rows["root"]
    assert "str | null" in rows["train_domain"] and "None" in rows["train_domain"]
    assert "float" in rows["test_fraction"] and "0.3" in rows["test_fraction"]
    assert "root/train/<class>/<image>" in result.output  # the layout notes


def test_one_strategy_in_full_shows_aliases_and_literals():
    out = _invoke("list", "strategies", "lwf").output
    assert "lambda" in out and "distillation" in out and "(strategy, from strategies" in out
    out = _invoke("list", "strategies", "discriminative-lr").output
    assert "'ulmfit' | 'layer-decay'" in out and "dict[str, Any]" in out


def test_unknown_name_says_what_exists():
    result = _invoke("list", "strategies", "ful")
    assert result.exit_code == 2 and "did you mean 'full'?" in result.output
