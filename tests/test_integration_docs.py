"""The integration pages' copy-paste suites validate against the installed plugins
(names and every parameter, peft configs included). Running them is left to
tests/test_loggers.py, test_peft.py and test_html_report.py, which run tiny
versions of the same suites."""

from pathlib import Path

import pytest

from ftbench.plugins import Registry, make_plugin_manager
from ftbench.suite import parse_suite
from tests.test_docs import _code_blocks

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["loggers.md", "peft.md", "html-report.md"]


@pytest.fixture(scope="module")
def registry():
    return Registry(make_plugin_manager())


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_suite_snippet_is_a_valid_suite(page, registry):
    blocks = _code_blocks((ROOT / "docs" / page).read_text(), "yaml")
    assert len(blocks) == 1, f"docs/{page} should hold one copy-paste suite"
    suite = parse_suite(blocks[0], f"docs/{page}", registry)
    if page == "loggers.md":
        assert [ref.name for ref in suite.loggers] == ["mlflow", "tensorboard", "wandb"]
    if page == "peft.md":
        methods = {ref.params.get("method", "lora") for ref in suite.strategies if ref.name in ("peft", "lora")}
        assert len(methods) >= 3


def test_contributing_shows_the_mlflow_logger_as_the_worked_example():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    assert "## Writing a logger plugin" in text
    assert "plugins/ftbench_loggers/mlflow.py" in text and "ftbench_register_loggers" in text
