"""The plugin manager and the registry of components it collects.

Built-in plugins live in `plugins/` and arrive through the `ftbench` entry-point
group exactly like third-party ones; the core imports none of them by name.
Set FTBENCH_TRACE=1 to trace every hook call to stderr.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass, replace
from typing import Any, Protocol

import pluggy

from ftbench import hookspecs
from ftbench.components import KINDS, Component
from ftbench.errors import PluginError, UnknownComponentError

ENTRY_POINT_GROUP = "ftbench"
from ftbench import hookimpl  # noqa: F401  (re-exported)

PLURALS = {"backbone": "backbones", "dataset": "datasets", "strategy": "strategies",
           "executor": "executors", "reporter": "reporters", "logger": "loggers"}
_HOOK_OF_KIND = {kind: f"ftbench_register_{PLURALS[kind]}" for kind in KINDS}


@dataclass(frozen=True)
class BrokenPlugin:
    """An installed plugin that could not be loaded, and the distribution it came from."""

    name: str  # the entry point's name
    distribution: str  # "project version"
    error: str

    def message(self) -> str:
        project = self.distribution.split(" ")[0]
        return (f"skipped the plugin '{self.name}' of the distribution {self.distribution}: {self.error}; "
                f"fix or reinstall it, or `pip uninstall {project}`")


def make_plugin_manager(load_entrypoints: bool = True, extra: tuple[str, ...] = ()) -> pluggy.PluginManager:
    """A plugin manager with the installed plugins (unless told not to) and the
    modules named in `extra` (the CLI's `--plugin module.path`).

    Entry points load one by one: one that fails to import is skipped and kept in
    `pm.ftbench_broken` (a `BrokenPlugin` each), so one broken package does not stop
    every command; pluggy's own loader would stop at the first failure."""
    pm = pluggy.PluginManager("ftbench")
    pm.add_hookspecs(hookspecs)
    pm.ftbench_broken = []  # type: ignore[attr-defined]
    pm.ftbench_dists = {}  # type: ignore[attr-defined]  (plugin -> "project version")
    if load_entrypoints:
        _load_entrypoints(pm)
    for module_path in extra:
        register_module(pm, module_path)
    if os.environ.get("FTBENCH_TRACE"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            where = f"{dist.metadata['Name']} {dist.version}"
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as exc:  # an import error, a bad hook: skip it, say whose it is
                pm.ftbench_broken.append(BrokenPlugin(ep.name, where, f"{type(exc).__name__}: {exc}"))
                continue
            pm.ftbench_dists[id(plugin)] = where


def register_module(pm: pluggy.PluginManager, module_path: str) -> None:
    """Import `module_path` (found from the current folder too: a local plugin
    module needs no install) and register it as a plugin."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_path)
    except Exception as exc:
        raise PluginError(f"--plugin {module_path}: cannot import it ({exc}); "
                          "pass an importable module path such as my_pkg.plugin") from exc
    if pm.is_registered(module):
        return
    pm.register(module, name=module_path)


def _provider(pm: pluggy.PluginManager, plugin: object, plugin_name: str) -> str:
    where = getattr(pm, "ftbench_dists", {}).get(id(plugin))
    if where:
        return f"{plugin_name} ({where})"
    for plug, dist in pm.list_plugin_distinfo():
        if plug is plugin:
            return f"{plugin_name} ({dist.project_name} {dist.version})"
    return plugin_name


class Registry:
    """Components by kind and name, collected from every registered plugin."""

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self.broken: list[BrokenPlugin] = list(getattr(pm, "ftbench_broken", []))
        self._by_kind: dict[str, dict[str, Component]] = {}
        for kind in KINDS:
            found: dict[str, Component] = {}
            hook = getattr(pm.hook, _HOOK_OF_KIND[kind])
            for impl in hook.get_hookimpls():
                provider = _provider(pm, impl.plugin, impl.plugin_name)
                try:
                    components = impl.function() or []
                except Exception as exc:
                    where = getattr(pm, "ftbench_dists", {}).get(id(impl.plugin))
                    if where is None:  # a --plugin module or one a test registered: its author is here
                        raise PluginError(f"plugin {provider} failed in {_HOOK_OF_KIND[kind]}: {exc!r}") from exc
                    self.broken.append(BrokenPlugin(impl.plugin_name, where, f"{_HOOK_OF_KIND[kind]} raised "
                                                                             f"{type(exc).__name__}: {exc}"))
                    continue
                for comp in components:
                    comp = replace(comp, provider=provider)
                    if comp.name in found:
                        raise PluginError(
                            f"two plugins register the {kind} '{comp.name}': {found[comp.name].provider} "
                            f"and {provider}; uninstall one, or rename the component in one of them")
                    found[comp.name] = comp
            self._by_kind[kind] = dict(sorted(found.items()))

    def names(self, kind: str) -> list[str]:
        return list(self._by_kind[kind])

    def all(self, kind: str) -> list[Component]:
        return list(self._by_kind[kind].values())

    def get(self, kind: str, name: str) -> Component:
        """The component, or an error with "did you mean" and the listing command."""
        try:
            return self._by_kind[kind][name]
        except KeyError:
            broken = "".join(f"; note: {b.message()}" for b in self.broken)  # it may have provided it
            raise UnknownComponentError(unknown_message(kind, name, self.names(kind)) + broken) from None


class _Ref(Protocol):
    name: str
    params: dict[str, Any]


def create(registry: Registry, kind: str, ref: str | _Ref, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Build the component `ref` names (a name, or a suite entry with `name` and
    `params`) from its registry entry: its params validated against its schema,
    then its factory called with them and `kwargs` (what its kind takes, see
    `ftbench.components`). `params` overrides the entry's own.

    >>> create(registry, "backbone", spec.backbone, num_classes=10, seed=0)  # doctest: +SKIP
    """
    name = ref if isinstance(ref, str) else ref.name
    given = params if params is not None else ({} if isinstance(ref, str) else ref.params)
    comp = registry.get(kind, name)
    return comp.factory(comp.params.model_validate(given), **kwargs)


def resolved_params(registry: Registry, kind: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` of the component `name` validated, with every default filled in, as JSON values."""
    return registry.get(kind, name).params.model_validate(params).model_dump(mode="json")


def unknown_message(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {kind} '{name}'{hint} `ftbench list {PLURALS.get(kind, kind)}` shows all ({', '.join(known) or 'none installed'})"


_CURRENT: Registry | None = None
_BY_EXTRA: dict[tuple[str, ...], Registry] = {}


def use_registry(registry: Registry | None) -> None:
    """Make `registry` the one `default_registry()` returns in this process (the
    driver does this, so in-process runs see plugins a test registered)."""
    global _CURRENT
    _CURRENT = registry


def current_registry() -> Registry | None:
    """The registry `use_registry` set in this process, if any."""
    return _CURRENT


def default_registry(extra: tuple[str, ...] = ()) -> Registry:
    """This process's registry: the one the driver set, else installed plugins plus
    the `extra` modules, built once per set of extras (a long-lived worker process
    may serve suites with different `--plugin`s)."""
    if _CURRENT is not None:
        return _CURRENT
    key = tuple(extra)
    if key not in _BY_EXTRA:
        _BY_EXTRA[key] = Registry(make_plugin_manager(extra=key))
    return _BY_EXTRA[key]
