"""Moved to `ftbench.engine.checkpoints` (docs/architecture.md); this module is kept for one release
so that plugins importing it keep working. Import from the new home."""

from ftbench.engine.checkpoints import (
    MODEL_FILE, META_FILE, REQUIRED_META, CorruptCheckpoint, MissingCheckpoint, checkpoint_key, save_checkpoint,
    load_checkpoint, checkpoint_meta, checkpoint_status, remove_checkpoint, cache_dir, checkpoint_dir
)

__all__ = [
    "MODEL_FILE", "META_FILE", "REQUIRED_META", "CorruptCheckpoint", "MissingCheckpoint", "checkpoint_key",
    "save_checkpoint", "load_checkpoint", "checkpoint_meta", "checkpoint_status", "remove_checkpoint",
    "cache_dir", "checkpoint_dir"
]
