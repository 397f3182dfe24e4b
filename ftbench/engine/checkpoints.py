"""The on-disk cache of pretrained checkpoints (and the cache folder itself).

A checkpoint lives in `<cache>/checkpoints/<key>/`:

    model.safetensors   the state dict
    meta.json           written last; holds the sha256 of model.safetensors

Both files are written into a temporary sibling folder which then replaces the
final one with `os.replace`, so readers see either the old checkpoint or the new
one. The digest in meta.json still catches what atomic renames cannot: a file
truncated or edited afterwards.

meta.json holds at least:
    config       the pretraining config the key hashes; config["dataset"] is
                 {"name": ..., "params": ...} of the source task
    classes      the source task's class names, in head order
    data_config  {"input_size": [C, H, W], "mean": [...], "std": [...]}
    metrics      whatever the trainer measured (source accuracy, seconds, ...)
    created_at   ISO-8601 UTC time (added by `save_checkpoint`)
    digest       sha256 of model.safetensors (added by `save_checkpoint`)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file

from ftbench.cache import cache_dir, checkpoint_dir  # noqa: F401  (re-exported; torch-free home)
from ftbench.errors import FtbenchError

MODEL_FILE = "model.safetensors"
META_FILE = "meta.json"
REQUIRED_META = ("config", "classes", "data_config")


class CorruptCheckpoint(FtbenchError):
    """A cached checkpoint exists but cannot be trusted (partial or edited files)."""


class MissingCheckpoint(FtbenchError):
    """No cached checkpoint has the requested key."""


def checkpoint_key(config: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of `config` as canonical JSON (sorted keys).

    >>> checkpoint_key({"b": 1, "a": 2}) == checkpoint_key({"a": 2, "b": 1})
    True
    """
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(key: str, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write the checkpoint `key` atomically and return its folder.

    `meta` must hold config, classes and data_config; created_at and digest are
    added here. An existing checkpoint with the same key is replaced.
    """
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"checkpoint meta lacks {missing}; it needs {list(REQUIRED_META)}")
    final = checkpoint_dir(key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    try:
        # safetensors refuses shared or non-contiguous storage; a copy per tensor is cheap here
        tensors = {name: t.detach().cpu().contiguous().clone() for name, t in state_dict.items()}
        save_file(tensors, str(tmp / MODEL_FILE))
        full_meta = {**meta, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "digest": _sha256(tmp / MODEL_FILE)}
        (tmp / META_FILE).write_text(json.dumps(full_meta, indent=2, sort_keys=True, default=str))
        if final.exists():
            # os.replace cannot replace a non-empty folder: move the old one aside first
            old = Path(tempfile.mkdtemp(prefix=f".{key}.old.", dir=final.parent))
            os.replace(final, old / key)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CorruptCheckpoint(f"checkpoint {folder} has no {META_FILE} (an interrupted write?)") from None
    except (OSError, ValueError) as exc:
        raise CorruptCheckpoint(f"checkpoint {folder}: {META_FILE} is unreadable ({exc})") from None
    if not isinstance(meta, dict) or "digest" not in meta:
        raise CorruptCheckpoint(f"checkpoint {folder}: {META_FILE} holds no digest")
    return meta


def _verify(key: str) -> dict[str, Any]:
    """The checkpoint's meta after checking its digest; raises CorruptCheckpoint."""
    folder = checkpoint_dir(key)
    meta = _read_meta(folder)
    model = folder / MODEL_FILE
    if not model.is_file():
        raise CorruptCheckpoint(f"checkpoint {folder} has no {MODEL_FILE}")
    if _sha256(model) != meta["digest"]:
        raise CorruptCheckpoint(f"checkpoint {folder}: {MODEL_FILE} does not match the digest in "
                                f"{META_FILE} (truncated or modified)")
    return meta


def load_checkpoint(key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and meta of checkpoint `key`.

    Raises MissingCheckpoint when there is no such checkpoint and CorruptCheckpoint
    when its files are incomplete, modified or unreadable.
    """
    folder = checkpoint_dir(key)
    if not folder.is_dir():
        raise MissingCheckpoint(f"no checkpoint {key} in {folder.parent}; `ftbench pretrain` "
                                "(or running the suite that needs it) builds it")
    meta = _verify(key)
    try:
        state_dict = load_file(str(folder / MODEL_FILE))
    except Exception as exc:  # safetensors raises its own error types
        raise CorruptCheckpoint(f"checkpoint {folder}: {MODEL_FILE} cannot be read ({exc})") from None
    return state_dict, meta


def checkpoint_meta(key: str) -> dict[str, Any]:
    """The meta.json of checkpoint `key`, unverified (cheap: reads no tensors).
    Raises CorruptCheckpoint when it is missing or unreadable."""
    return _read_meta(checkpoint_dir(key))


def checkpoint_status(key: str) -> Literal["ok", "missing", "corrupt"]:
    """Whether checkpoint `key` exists and its digest matches (does not parse tensors)."""
    if not checkpoint_dir(key).is_dir():
        return "missing"
    try:
        _verify(key)
    except CorruptCheckpoint:
        return "corrupt"
    return "ok"


def remove_checkpoint(key: str) -> None:
    """Delete checkpoint `key` if present."""
    shutil.rmtree(checkpoint_dir(key), ignore_errors=True)
