"""Where a problem is in the suite file: field paths and their YAML lines, so that
every problem a check finds names its place (`where`)."""

from __future__ import annotations

import yaml
from pydantic import BaseModel, ValidationError

from ftbench.suite.strict import keys_at, unknown_key_message


def line_index(text: str) -> dict[tuple, int]:
    """Field path -> 1-based line of its node in the YAML text."""
    index: dict[tuple, int] = {}

    def walk(node: yaml.Node, path: tuple) -> None:
        index[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                index[path + (key.value,)] = key.start_mark.line + 1
                walk(value, path + (key.value,))
                index[path + (key.value,)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return index
    if root is not None:
        walk(root, ())
    return index


def where(path: tuple, lines: dict[tuple, int]) -> str:
    shown = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
    for cut in range(len(path), 0, -1):  # the root line says nothing: a missing top key has none
        if path[:cut] in lines:
            return f"{shown or '<top>'} (line {lines[path[:cut]]})"
    return shown or "<top>"


def pydantic_problems(exc: ValidationError, lines: dict[tuple, int], prefix: tuple = (),
                       keys_hint: str = "docs/suite.md describes them",
                       model: type[BaseModel] | None = None) -> list[str]:
    """A problem line per error of `exc` (`model`'s validation at `prefix`): its
    path and line, and for an unknown key the valid ones and the closest."""
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"]  # validator and union-tag steps name no place in the file
                    if not (isinstance(p, str) and (p.startswith(("function-", "tag:")) or p == "[key]")))
        path = prefix + loc
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = unknown_key_message(loc[-1], keys_at(model, loc[:-1]) if model else None, keys_hint)
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(f"{where(path, lines)}: {message}")
    return problems
