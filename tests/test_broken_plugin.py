"""A broken installed plugin is skipped and named by its distribution; the rest works."""

from __future__ import annotations

import importlib

import pytest
from click.testing import CliRunner

from ftbench.cli import cli


def _install_fake_distribution(site, project: str, entry_points: str) -> None:
    info = site / f"{project.replace('-', '_')}-1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def broken_install(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _install_fake_distribution(site, "ftbench-broken", "[ftbench]\nbroken = ftbench_no_such_module_xyz\n")
    (site / "ftbench_bad_hook.py").write_text(
        "import ftbench\n\n@ftbench.hookimpl\ndef ftbench_register_strategies():\n    raise RuntimeError('boom')\n")
    _install_fake_distribution(site, "ftbench-bad-hook", "[ftbench]\nbadhook = ftbench_bad_hook\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield


def test_broken_plugins_are_skipped_and_named(broken_install):
    result = CliRunner().invoke(cli, ["list", "strategies"], obj={})
    assert result.exit_code == 0, result.output
    assert "full" in result.stdout  # the working plugins still list
    assert ("warning: skipped the plugin 'broken' of the distribution ftbench-broken 1.2: ModuleNotFoundError: "
            "No module named 'ftbench_no_such_module_xyz'") in result.stderr
    assert "`pip uninstall ftbench-broken`" in result.stderr
    assert "'badhook' of the distribution ftbench-bad-hook 1.2: ftbench_register_strategies raised " \
           "RuntimeError: boom" in result.stderr


def test_unknown_name_mentions_the_broken_plugin(broken_install):
    from ftbench.errors import UnknownComponentError
    from ftbench.plugins import Registry, make_plugin_manager

    registry = Registry(make_plugin_manager())
    with pytest.raises(UnknownComponentError, match="note: skipped the plugin 'broken' of the distribution "
                                                    "ftbench-broken 1.2"):
        registry.get("strategy", "top-k")
