"""Where ftbench caches things (checkpoints, generated data, name lists), without
importing torch: `ftbench validate` checks weights and caches through it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$FTBENCH_CACHE, else $XDG_CACHE_HOME/ftbench, else ~/.cache/ftbench."""
    if os.environ.get("FTBENCH_CACHE"):
        return Path(os.environ["FTBENCH_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "ftbench"
    return Path.home() / ".cache" / "ftbench"


def checkpoint_dir(key: str) -> Path:
    """The folder of the pretrained checkpoint `key` (see `ftbench.checkpoints`)."""
    return cache_dir() / "checkpoints" / key
