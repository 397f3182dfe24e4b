"""`ftbench new KIND NAME`: create an installable plugin package from a template.

Templates live in `ftbench/templates/`: `_common/` holds the files every kind
shares, `<kind>/` the rest. Each file ends in `.tmpl` (so no tool mistakes it for
code) and uses `string.Template` placeholders such as `$name` and `$package`; the
folder `package/` becomes the plugin's import package, and a file `dot-NAME` the
dotfile `.NAME` (the package's .gitignore). The kinds are those with a template
folder: strategy, backbone, dataset, executor.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

import ftbench
from ftbench.errors import UserInputError
from ftbench.plugins import PLURALS

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

KINDS = ("strategy", "backbone", "dataset", "executor")
_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_SUFFIX = ".tmpl"
_DOT = "dot-"


def placeholders(kind: str, name: str) -> dict[str, str]:
    """The values templates may use, e.g. for kind strategy and name "top-k": kinds
    strategies, name top-k, snake top_k, package ftbench_top_k, dist ftbench-top-k,
    class_name TopK, hook ftbench_register_strategies."""
    snake = name.replace("-", "_")
    return {
        "kind": kind,
        "kinds": PLURALS[kind],
        "name": name,
        "snake": snake,
        "package": f"ftbench_{snake}",
        "dist": f"ftbench-{name}",
        "class_name": "".join(part.capitalize() for part in name.split("-")),
        "hook": f"ftbench_register_{PLURALS[kind]}",
        "ftbench_version": ftbench.__version__,
    }


def check_name(name: str) -> None:
    """Raise UserInputError unless `name` is lowercase letters, digits and single dashes."""
    if not _NAME.fullmatch(name):
        raise UserInputError(f"invalid name '{name}': use lowercase letters, digits and dashes, starting "
                             "with a letter (e.g. top-k or my-dataset2)")


def _walk(folder: Traversable, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Traversable]]:
    files = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            files += _walk(entry, prefix + (entry.name,))
        elif entry.name.endswith(_SUFFIX):
            name = entry.name[: -len(_SUFFIX)]
            # A dotfile is stored as dot-NAME: package data globs and some tools skip hidden files.
            files.append((prefix + ("." + name[len(_DOT):] if name.startswith(_DOT) else name,), entry))
    return files


def render(kind: str, name: str) -> dict[Path, str]:
    """Relative path -> text of every file the plugin package of `kind` consists of."""
    if kind not in KINDS:
        raise UserInputError(f"unknown kind '{kind}'; choose one of {', '.join(KINDS)}")
    check_name(name)
    values = placeholders(kind, name)
    root = resources.files("ftbench") / "templates"
    out: dict[Path, str] = {}
    for folder in ("_common", kind):  # a kind's file replaces a common one of the same path
        for parts, entry in _walk(root / folder):
            rel = Path(*(values["package"] if p == "package" else p for p in parts))
            out[rel] = Template(entry.read_text()).substitute(values)
    return out


def scaffold(kind: str, name: str, dest: str | Path | None = None) -> Path:
    """Create the plugin package for one `kind` component called `name` in `dest`
    (default ./ftbench-NAME) and return that folder. An existing non-empty folder
    is never touched.

    Example: `scaffold("strategy", "top-k")` creates ftbench-top-k/ with
    pyproject.toml, README.md, .gitignore, ftbench_top_k/__init__.py and
    tests/test_plugin.py.
    """
    files = render(kind, name)  # render everything first: a template error leaves no half package
    dest = Path(dest) if dest is not None else Path(f"ftbench-{name}")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserInputError(f"{dest} already exists; choose another folder with --dir, or remove it first")
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return dest
