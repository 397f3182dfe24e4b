"""The process a run executes in: seeds, the device, the environment a record
states, the run's peak memory, the time."""

from __future__ import annotations

import platform
import random
import resource
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import ftbench
from ftbench.errors import DataError
from ftbench.fingerprint import fingerprint


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic


def resolve_device(name: str) -> torch.device:
    """`auto` is cuda when there is one, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"device '{name}' asked for, but torch sees no CUDA GPU; use device: auto or cpu")
    return device


def environment(device: torch.device, providers: dict[str, str], threads: int) -> dict:
    """The `env` of a run's record: versions, plugins, device and threads."""
    import timm

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.machine()} cpu ({torch.get_num_threads()} threads)"
    return {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
            "ftbench": ftbench.__version__, "plugins": providers, "device": str(device), "device_name": name,
            "threads": threads, "platform": platform.platform(), "fingerprint": fingerprint(str(device), threads)}


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux: VmHWM, via clear_refs), so a
    run that follows others in one process reports its own peak. False where that
    cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def proc_status_kb(field: str) -> int | None:
    """A memory figure of this process from /proc/self/status in kB (Linux: VmRSS,
    VmHWM ...), or None where there is no such file or field."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mb(reset: bool) -> tuple[float, str]:
    """(peak resident MB, scope): since the run started ("run") when the peak was
    reset, else the process's peak so far ("process")."""
    peak = proc_status_kb("VmHWM") if reset else None
    if peak is not None:
        return peak / 1024, "run"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (rss / 1024 if sys.platform != "darwin" else rss / 2**20), "process"


def now() -> str:
    """The time now, UTC, ISO 8601 to the second (a record's started_at, finished_at)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
