"""The layout holds: every module's imports, read with `ast`, against the tables of
docs/architecture.md (the one source: edit the doc and this test follows).

- every module of ftbench/ is in exactly one row of the Layers table;
- an import points to a lower rank or stays in its own row (type-only imports under
  `if TYPE_CHECKING:` are exempt);
- no circle of imports, lazy imports inside functions included;
- no `_private` name crosses modules;
- the built-in plugins import what their row of the Plugins table allows, and no
  plugin imports another;
- nothing of ours imports an old path; each old path re-exports its new homes.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PLUGIN_ROOT = ROOT / "plugins"


# ---------------------------------------------------------------- the doc's tables


def _section(title: str) -> str:
    parts = re.split(r"^## +(.+?)\s*$", DOC.read_text(), flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2]))
    assert title in sections, f"docs/architecture.md lacks its `## {title}` section"
    return sections[title]


def _rows(section: str) -> list[list[str]]:
    """The cells of every body row of the first table in `section`."""
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[-:| ]+\|", line.strip()):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header


def _names(cell: str) -> list[str]:
    return re.findall(r"`([A-Za-z_][\w.]*)`", cell)


@dataclass(frozen=True)
class Layer:
    rank: int
    name: str
    modules: tuple[str, ...]


def layers() -> list[Layer]:
    return [Layer(int(rank), name, tuple(_names(modules))) for rank, name, modules, _ in _rows(_section("Layers"))]


def plugin_rules() -> list[tuple[tuple[str, ...], tuple[str, ...] | int]]:
    """(plugin packages or () for every other one, allowed ftbench modules or a highest rank)."""
    rules = []
    for plugins, allowed in _rows(_section("Plugins")):
        rank = re.search(r"rank ≤ (\d+)", allowed)
        rules.append((tuple(_names(plugins)), int(rank.group(1)) if rank else tuple(_names(allowed))))
    return rules


def old_paths() -> dict[str, tuple[str, ...]]:
    return {_names(old)[0]: tuple(_names(new)) for old, new in _rows(_section("Old import paths, kept for one release"))}


# ---------------------------------------------------------------- reading imports


def modules_under(folder: Path, base: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under `folder`."""
    out = {}
    for path in sorted(folder.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


@dataclass(frozen=True)
class Import:
    target: str  # the module imported (a name imported from a module resolves to it)
    name: str | None  # the name taken from it (`from target import name`), if any
    line: int


def _type_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:`."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every import in the file (at any depth), with relative imports and
    `from package import submodule` resolved against the `known` modules."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_only(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [Import(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append(Import(sub, None, node.lineno) if sub in known else Import(base, alias.name, node.lineno))
    return out


def _owner(module: str, known: set[str]) -> str:
    """The known module `module` names (an attribute path resolves to its module)."""
    while module and module not in known:
        module = module.rpartition(".")[0]
    return module


# ---------------------------------------------------------------- the rules, as functions of a graph


def layer_of(module: str, all_layers: list[Layer]) -> Layer | None:
    """The row whose entry is `module` or a package above it (the longest wins);
    the entry `ftbench` stands for the package's __init__ alone."""
    best, length = None, -1
    for layer in all_layers:
        for entry in layer.modules:
            covers = module == entry or (entry != "ftbench" and module.startswith(entry + "."))
            if covers and len(entry) > length:
                best, length = layer, len(entry)
    return best


def direction_violations(graph: dict[str, set[str]], all_layers: list[Layer]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        mine = layer_of(module, all_layers)
        for target in sorted(targets - {module}):
            theirs = layer_of(target, all_layers)
            if mine is None or theirs is None or mine == theirs:
                continue
            if theirs.rank >= mine.rank:
                out.append(f"{module} ({mine.name}, rank {mine.rank}) imports {target} "
                           f"({theirs.name}, rank {theirs.rank})")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


# ---------------------------------------------------------------- the project's graph

FTBENCH = modules_under(ROOT / "ftbench", ROOT)
PLUGINS = modules_under(PLUGIN_ROOT, PLUGIN_ROOT)
KNOWN = set(FTBENCH) | set(PLUGINS)
IMPORTS = {m: imports_of(m, p, KNOWN) for m, p in {**FTBENCH, **PLUGINS}.items()}


def _graph(modules) -> dict[str, set[str]]:
    return {m: {_owner(i.target, set(FTBENCH)) for i in IMPORTS[m] if i.target.split(".")[0] == "ftbench"} - {""}
            for m in modules}


def test_the_doc_has_its_tables():
    assert {layer.name for layer in layers()} >= {"base", "suite", "results", "engine", "driver", "report", "gate",
                                                  "cli"}
    assert plugin_rules() and old_paths()


def test_every_module_is_in_one_row_of_the_layers_table():
    compat = set(old_paths())
    missing = [m for m in FTBENCH if m not in compat and layer_of(m, layers()) is None]
    assert not missing, f"add these modules to a row of docs/architecture.md's Layers table: {missing}"


def test_imports_point_down_the_layers():
    graph = _graph(m for m in FTBENCH if m not in old_paths())
    wrong = direction_violations(graph, layers())
    assert not wrong, "imports against docs/architecture.md's direction:\n" + "\n".join(wrong)


def test_no_module_imports_another_that_imports_it_back():
    found = cycles(_graph(m for m in FTBENCH if m not in old_paths()))
    assert not found, f"circles of imports (move the shared code down a layer): {found}"


def test_no_private_name_crosses_modules():
    crossing = [f"{m}:{i.line} takes {i.name} from {i.target}" for m in FTBENCH for i in IMPORTS[m]
                if i.name and i.name.startswith("_") and not i.name.startswith("__")
                and i.target.startswith("ftbench") and _owner(i.target, set(FTBENCH)) != m]
    assert not crossing, "a name another module uses is public; rename it:\n" + "\n".join(crossing)


def test_plugins_import_what_the_plugins_table_allows():
    rules = plugin_rules()
    packages = {m.split(".")[0] for m in PLUGINS}
    wrong = []
    for module in PLUGINS:
        package = module.split(".")[0]
        allowed = next((a for names, a in rules if package in names), next(a for names, a in rules if not names))
        for imp in IMPORTS[module]:
            top = imp.target.split(".")[0]
            if top in packages and top != package:
                wrong.append(f"{module} imports the plugin {top}: plugins never import one another")
            if top != "ftbench":
                continue
            target = _owner(imp.target, set(FTBENCH))
            layer = layer_of(target, layers())
            ok = target in allowed if isinstance(allowed, tuple) else layer is not None and layer.rank <= allowed
            if not ok:
                wrong.append(f"{module}:{imp.line} imports {target}")
    assert not wrong, "plugins import against docs/architecture.md's Plugins table:\n" + "\n".join(wrong)


def test_nothing_of_ours_imports_an_old_path():
    ours = {**FTBENCH, **PLUGINS}
    for folder in ("tests", "benchmarks", "tools"):
        ours |= modules_under(ROOT / folder, ROOT)
    old = set(old_paths())
    users = []
    for module, path in ours.items():
        if module in old:
            continue
        for imp in imports_of(module, path, KNOWN):
            if _owner(imp.target, set(FTBENCH)) in old and (imp.name is None or imp.target in old):
                users.append(f"{module}:{imp.line} imports {imp.target}")
    assert not users, "use the new homes (docs/architecture.md):\n" + "\n".join(users)


@pytest.mark.parametrize("old", sorted(old_paths()))
def test_an_old_path_reexports_its_new_homes(old: str):
    module = importlib.import_module(old)
    homes = [importlib.import_module(h) for h in old_paths()[old]]
    doc = module.__doc__ or ""
    assert "kept for one release" in doc and all(h.__name__ in doc for h in homes), \
        f"{old}'s docstring must name its new homes and say it is kept for one release"
    public = [n for n in vars(module) if not n.startswith("_") and n != "annotations"]
    assert public, f"{old} re-exports nothing"
    values = [id(v) for h in homes for v in vars(h).values()]  # an old name may alias a renamed one
    strays = [n for n in public if id(getattr(module, n)) not in values]
    assert not strays, f"{old} defines what its new homes do not: {strays}"


# ---------------------------------------------------------------- the checks can fail


def test_the_checks_catch_an_upward_import_and_a_circle():
    toy = [Layer(0, "base", ("ftbench.errors",)), Layer(2, "suite", ("ftbench.suite",)),
           Layer(4, "engine", ("ftbench.engine",))]
    graph = {"ftbench.errors": {"ftbench.suite.load"}, "ftbench.suite.load": {"ftbench.suite.checks"},
             "ftbench.suite.checks": {"ftbench.suite.load"}, "ftbench.engine.runner": {"ftbench.errors"}}
    assert direction_violations(graph, toy) == [
        "ftbench.errors (base, rank 0) imports ftbench.suite.load (suite, rank 2)"]
    assert cycles(graph) == [["ftbench.suite.checks", "ftbench.suite.load"]]
    assert layer_of("ftbench.engine.runner", toy).name == "engine" and layer_of("ftbench.plots", toy) is None
