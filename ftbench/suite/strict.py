"""Reading a suite as its author typed it: YAML numbers as numbers, values checked
strictly against their types, and an unknown key answered with the keys there are.

- YAML 1.1 (PyYAML) reads `1e-3` as a string and `yes`/`on` as true; pydantic's
  lax mode would then turn "1e-3" into 0.001 but also `yes` into 1.0 and "0.1"
  into 0.1. So a suite is read with `1e-3` as a float (as YAML 1.2 does) and
  validated in pydantic's strict JSON mode: a number must be a number, a boolean a
  boolean, while a list still fills a tuple and a string a path.
- An unknown key gets "did you mean" and the list of valid keys of the model at
  its place in the suite (`keys_at`).
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel


class SuiteLoader(yaml.SafeLoader):
    """PyYAML's safe loader, plus YAML 1.2's floats without a dot (`1e-3`, `5E+2`)."""


SuiteLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789"))


def load_yaml(text: str) -> Any:
    """`text` parsed by `SuiteLoader`."""
    return yaml.load(text, Loader=SuiteLoader)  # noqa: S506 - a SafeLoader subclass


def validate_strictly(model: type[BaseModel], data: Any) -> BaseModel:
    """`data` (parsed from YAML) validated against `model` as typed: no `yes` for a
    number, no quoted "0.1" for a float, no 2.0 for an integer (pydantic's strict
    JSON mode). Raises pydantic's ValidationError with every problem."""
    return model.model_validate_json(json.dumps(data, default=str), strict=True)


def did_you_mean(name: str, known: typing.Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest of `known`, or ""."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a YAML mapping validated by `model` may have (aliases as written)."""
    return [field.alias or name for name, field in model.model_fields.items()]


def _inner(tp: Any, part: Any) -> Any:
    """The type one step down `part` (a list index or a key) from `tp`, or None."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _inner(args[0], part)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is not type(None) and (found := _inner(arg, part)) is not None:
                return found
        return None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        by_key = {field.alias or name: field for name, field in tp.model_fields.items()}
        field = by_key.get(part) or tp.model_fields.get(part)
        return field.annotation if field is not None else None
    if origin in (list, tuple) and isinstance(part, int) and args:
        return args[0]
    if origin is dict and args:
        return args[1]
    return None


def _model_of(tp: Any) -> type[BaseModel] | None:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _model_of(args[0])
    if origin in (typing.Union, types.UnionType):
        return next((m for a in args if (m := _model_of(a)) is not None), None)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def keys_at(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """The valid keys of the mapping at `loc` (a pydantic error's location, without
    the unknown key itself) inside `model`; None when it is not a model's mapping."""
    tp: Any = model
    for part in loc:
        tp = _inner(tp, part)
        if tp is None:
            return None
    found = _model_of(tp)
    return model_keys(found) if found is not None else None


def unknown_key_message(key: Any, known: list[str] | None, hint: str) -> str:
    """The problem text of an unknown key: did you mean, and the valid keys."""
    if known is None:
        return f"unknown key; check its spelling ({hint})"
    return (f"unknown key '{key}'{did_you_mean(key, known)} (valid: {', '.join(known) or 'none'}; {hint})")
