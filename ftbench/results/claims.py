"""Claim files: a run's claim is a file created with O_EXCL in its results folder,
holding the pid, host and boot id of its owner, who renews it (touches the file)
while the run is in flight. A claim whose lease ran out, or whose owner is gone
(same host, pid not alive or rebooted since), is stale and may be taken over
(docs/records.md). `ResultsStore` takes, renews and releases claims with these."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

CLAIM_SUFFIX = ".claim"


def claim_lease_seconds() -> float:
    """How long a claim lives without renewal (FTBENCH_CLAIM_LEASE_S, default 600 s)."""
    try:
        value = float(os.environ.get("FTBENCH_CLAIM_LEASE_S", _DEFAULT_LEASE_S))
    except ValueError:
        return _DEFAULT_LEASE_S
    return value if 0 < value < float("inf") else _DEFAULT_LEASE_S


def claim_is_stale(path: Path) -> bool:
    """A claim is stale, and may be taken over, when its lease ran out (its file was
    not renewed for `claim_lease_seconds()`, whatever host wrote it), or when it
    is from this host and its owner is gone (the pid is not alive, or the host
    rebooted since). An unreadable claim file is stale once a minute old (it may
    be being written)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    owner = read_owner(path)
    if owner is None:
        return age > 60
    if age > claim_lease_seconds():
        return True
    if owner["host"] != socket.gethostname():
        return False
    if owner.get("boot_id") and _BOOT_ID and owner["boot_id"] != _BOOT_ID:
        return True
    return not _pid_alive(owner["pid"])


def this_process() -> dict:
    """What a claim file of this process holds: pid, host, boot id, since."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "boot_id": _BOOT_ID, "since": time.time()}


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


_BOOT_ID = _boot_id()
_DEFAULT_LEASE_S = 600.0


def read_owner(path: Path) -> dict | None:
    """The owner a claim file names, or None when it is missing or not a claim
    ({"pid": int, "host": str, ...})."""
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(owner, dict) and type(owner.get("pid")) is int and isinstance(owner.get("host"), str)):
        return None
    return owner


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) still answers kill(0)
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(0) has to do
