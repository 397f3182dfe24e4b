"""timm's model names without importing timm (and torch) on every `ftbench validate`:
the list is read once from timm and kept in the cache, one file per timm version.
A name the list lacks is checked against timm itself (a model registered after the
list was written, by a `--plugin` module), so the list only ever speeds things up."""

from __future__ import annotations

import difflib
import functools
import json
import os
import socket
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

from ftbench.cache import cache_dir, checkpoint_dir

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


# ---------------------------------------------------------------- environment check
# Run by `ftbench validate` and at the start of `ftbench run`, before any model is
# built: is what `pretrained:` points at there? Without importing torch or timm.

_TRUE = ("1", "true", "yes", "on")


def hub_offline() -> str | None:
    """The variable that declares the Hugging Face Hub offline, if one does."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return var
    return None


def hf_hub_cache() -> Path:
    """Where huggingface_hub keeps downloaded models (its own precedence of variables)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hub_cached(model: str) -> bool:
    """Whether the Hugging Face cache holds timm weights of `model`'s architecture
    (any tag when `model` names none: timm picks the default tag itself)."""
    arch, tag = split_name_tag(model)
    prefix = f"models--timm--{arch}"
    try:
        entries = list(hf_hub_cache().iterdir())
    except OSError:
        return False
    for entry in entries:
        name = entry.name
        if (name == f"{prefix}.{tag}" if tag else (name == prefix or name.startswith(prefix + "."))):
            if any(p.is_file() for p in (entry / "snapshots").glob("*/*")):
                return True
    return False


@functools.cache
def hub_reachable() -> bool:
    """A TCP connection to the Hub within 2 s (True behind a proxy: it cannot be told)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=2).close()
        return True
    except OSError:
        return False


def check_timm(params) -> list[tuple[str, str]]:
    """(parameter, problem) for weights that cannot be had: a missing weights file, a
    checkpoint not in the cache, or hub weights when offline with a cold cache."""
    source = params.pretrained
    if source == "hub":
        if hub_cached(params.model):
            return []
        offline = hub_offline()
        if offline:
            why = f"{offline} is set"
        elif not hub_reachable():
            why = "the Hugging Face Hub cannot be reached"
        else:
            return []
        return [("pretrained", f"`pretrained: hub` needs timm's weights for '{params.model}', but {why} and "
                               f"the Hugging Face cache ({hf_hub_cache()}) holds none; download them once with "
                               "network, or use a local weights file, `pretrained: none`, or a `pretrain:` job")]
    if source.startswith("ftbench:"):
        key = source.removeprefix("ftbench:")
        if not (checkpoint_dir(key) / "meta.json").is_file():
            return [("pretrained", f"no checkpoint {source} in the cache ({checkpoint_dir(key)}); "
                                   "`ftbench pretrain SUITE` builds the suite's `pretrain:` jobs, or name the "
                                   "job with `pretrained: pretrain:NAME`")]
        return []
    if source != "none" and not Path(source).expanduser().is_file():
        return [("pretrained", f"weights file {Path(source).expanduser().resolve()} does not exist; "
                               "check the path (relative paths start from the current folder)")]
    return []
