"""Reading a suite file: YAML in (with overrides), checked against the schema and
then as a whole (`ftbench.suite.checks`), and, when asked, against the environment
(`ftbench.suite.preflight`). Every problem of every pass is reported at once, with
its field path and line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ftbench.errors import SuiteError, UserInputError
from ftbench.suite.checks import check_semantics, raw_name_problems, raw_search_problems
from ftbench.suite.preflight import environment_problems
from ftbench.suite.problems import line_index, pydantic_problems
from ftbench.suite.schema import Suite
from ftbench.suite.strict import load_yaml, validate_strictly


_MAX_DEPTH = 64  # nesting levels; a suite needs about six
_MAX_NODES = 100_000  # values after aliases are expanded; a large suite has a few thousand


def _check_yaml_shape(text: str, source: str) -> None:
    """Refuse YAML that would blow up once built, from its parse events alone
    (nothing is expanded): nesting deeper than `_MAX_DEPTH` (Python recursion) or
    more than `_MAX_NODES` values with aliases expanded (a "billion laughs" bomb).
    Syntax errors are left to the loader, which names their line."""
    sizes: dict[str, int] = {}  # anchor -> values under it, aliases expanded
    stack: list[list] = []  # open collections: [anchor, values so far]
    total = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            line = event.start_mark.line + 1
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append([event.anchor, 1])
                if len(stack) > _MAX_DEPTH:
                    raise SuiteError(source, [f"line {line}: nested more than {_MAX_DEPTH} levels deep; "
                                              "a suite needs a handful (see docs/suite.md)"])
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, size = stack.pop()
            elif isinstance(event, yaml.AliasEvent):
                anchor, size = None, sizes.get(event.anchor, 1)
            elif isinstance(event, yaml.ScalarEvent):
                anchor, size = event.anchor, 1
            else:
                continue
            if anchor:
                sizes[anchor] = size
            if stack:
                stack[-1][1] += size
            total += 0 if stack else size
            if (stack[-1][1] if stack else total) > _MAX_NODES:
                raise SuiteError(source, [f"line {line}: more than {_MAX_NODES:,} values once its aliases (*name) "
                                          "are expanded; write the suite without nested aliases"])
    except yaml.YAMLError:
        return


def _duplicate_keys(text: str) -> list[str]:
    """A problem per mapping key given twice (YAML loaders keep the last silently)."""
    problems: list[str] = []
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node) -> None:
        if id(node) in seen_nodes:  # an alias: checked where it was defined
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in first:
                        problems.append(f"line {line}: key '{key.value}' is given twice (first at line "
                                        f"{first[key.value]}); keep one")
                    first.setdefault(key.value, line)
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return problems
    if root is not None:
        walk(root)
    return problems


def load_suite(path: str | Path, registry=None, overrides: tuple[str, ...] = (), environment: bool = False,
               device: str | None = None) -> Suite:
    """Read, validate and (given a registry) check the components of a suite file,
    after applying `overrides` (`apply_overrides`); with `environment`, also check
    that its data, weights and device are there (`ftbench.preflight`; `device`
    overrides the suite's). Raises SuiteError listing every problem found."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"cannot read suite {path}: {exc.strerror}; pass the path of a suite YAML file "
                             "(the shipped ones are in suites/)") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SuiteError(str(path), [f"line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                                     f"{exc.start}); save the suite as UTF-8"]) from None
    return parse_suite(text, str(path), registry, overrides, environment=environment, device=device)


def apply_overrides(raw: dict, overrides: tuple[str, ...] | list[str]) -> dict:
    """`raw` with each `dotted.path=VALUE` set (VALUE parsed as YAML; a number in
    the path indexes a list): `train.lr=0.01`, `seeds=[0,1]`, `strategies.1.train.lr=0.1`.
    Raises UserInputError for a malformed override or a path through a non-mapping."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise UserInputError(f"-o {item!r}: write KEY=VALUE with a dotted KEY, e.g. -o train.lr=0.01 "
                                 "or -o seeds=[0,1]")
        try:
            value = load_yaml(text)
        except yaml.YAMLError as exc:
            raise UserInputError(f"-o {item!r}: the value is not valid YAML ({getattr(exc, 'problem', exc)})") from exc
        if "space" in parts[:-2]:  # a search space's keys hold a dot: `space.train.lr` is one key
            at = parts.index("space") + 1
            parts[at:at + 2] = [".".join(parts[at:at + 2])]
        node: Any = raw
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise UserInputError(f"-o {item!r}: '{'.'.join(parts[:depth])}' is a list of {len(node)}; "
                                         f"index it with 0-{len(node) - 1}")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise UserInputError(f"-o {item!r}: '{'.'.join(parts[:depth])}' is a single value, not a section")
    return raw


def parse_suite(text: str, source: str = "<suite>", registry=None, overrides: tuple[str, ...] = (),
                environment: bool = False, device: str | None = None) -> Suite:
    _check_yaml_shape(text, source)
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SuiteError(source, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from exc
    if not isinstance(raw, dict):
        raise SuiteError(source, ["the file must be a YAML mapping with keys name, backbones, datasets, strategies, budget"])
    duplicates = _duplicate_keys(text)
    if duplicates:
        raise SuiteError(source, duplicates)
    if overrides:  # validated below like the file itself
        raw = apply_overrides(raw, overrides)
    lines = line_index(text)
    try:
        suite = validate_strictly(Suite, raw)
    except ValidationError as exc:
        raise SuiteError(source, pydantic_problems(exc, lines, model=Suite) + raw_name_problems(raw, lines, registry)
                         + raw_search_problems(raw, lines, registry)) from exc
    problems = check_semantics(suite, lines, registry)
    if environment and registry is not None:
        problems += environment_problems(suite, lines, registry, device)
    if problems:
        raise SuiteError(source, problems)
    return suite
