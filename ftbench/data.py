"""Moved to `ftbench.engine.data` (docs/architecture.md); this module is kept for one release
so that plugins importing it keep working. Import from the new home."""

from ftbench.engine.data import (
    select_subset, carve_val, Preprocess, fits_on_device, batches, default_workers, memory_limit_bytes, Feed,
    in_order
)

__all__ = [
    "select_subset", "carve_val", "Preprocess", "fits_on_device", "batches", "default_workers",
    "memory_limit_bytes", "Feed", "in_order"
]
