import os

import pytest
import torch

# Tiny test models run fastest on one thread, and one thread makes in-process runs
# comparable with pool workers (which get cpu_count // workers threads each).
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Checkpoints and generated data go to a temporary cache, never the user's."""
    os.environ["FTBENCH_CACHE"] = str(tmp_path_factory.mktemp("ftbench-cache"))
    yield


@pytest.fixture(autouse=True)
def _no_leftover_registry():
    """The driver and the CLI make their registry the process's (`use_registry`), for
    in-process runs; a later test that builds its own must not find it."""
    yield
    from ftbench.plugins import use_registry

    use_registry(None)


@pytest.fixture
def toy_registry():
    """Installed plugins plus the toy plugin, registered for this test only."""
    from ftbench.plugins import Registry, make_plugin_manager, use_registry
    from tests import toyplugin

    pm = make_plugin_manager()
    pm.register(toyplugin, name="toyplugin")
    try:
        registry = Registry(pm)
        use_registry(registry)
        yield registry
    finally:
        pm.unregister(toyplugin)
        use_registry(None)


def pytest_ignore_collect(collection_path, config):
    """tests/benchmarks runs only with `pytest tests/benchmarks --benchmark-only`."""
    if collection_path.name == "benchmarks" and not config.getoption("benchmark_only", False):
        return True
    return None
