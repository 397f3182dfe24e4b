"""timm's model names without importing timm (and torch) on every `ftbench validate`:
the list is read once from timm and kept in the cache, one file per timm version.
A name the list lacks is checked against timm itself (a model registered after the
list was written, by a `--plugin` module), so the list only ever speeds things up."""

from __future__ import annotations

import difflib
import json
from importlib import metadata

from ftbench.cache import cache_dir

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")


def split_name_tag(name: str) -> tuple[str, str]:
    """'resnet18.a1_in1k' -> ('resnet18', 'a1_in1k'), as timm's split_model_name_tag."""
    arch, _, tag = name.partition(".")
    return arch, tag


def _list_file():
    try:
        version = metadata.version("timm")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return cache_dir() / "timm" / f"models-{version}.json"


def known_models() -> list[str]:
    """Every architecture timm registers, from the cache when it holds this version's."""
    path = _list_file()
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    import timm

    names = sorted(timm.list_models())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(names))
        tmp.replace(path)
    except OSError:  # a read-only cache only costs the import next time
        pass
    return names


def unknown_model_message(name: str) -> str | None:
    """None when timm knows `name` (with or without a pretrained tag), else a message."""
    arch, _ = split_name_tag(name)
    names = known_models()
    if arch in names:
        return None
    import timm

    if timm.is_model(arch):
        return None
    close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown timm model '{name}'{hint} `timm.list_models('*pattern*')` lists the names"
