"""Moved to `ftbench.engine.runner`, `ftbench.driver.worker` (docs/architecture.md); this module is
kept for one release so that plugins importing it keep working. Import from the new home."""

from ftbench.engine.runner import (
    seed_everything, resolve_device, load_task, align_classes, proc_status_kb, warm_up, execute
)
from ftbench.driver.worker import (failed_record, skipped_record)

__all__ = [
    "seed_everything", "resolve_device", "load_task", "align_classes", "proc_status_kb", "warm_up", "execute",
    "failed_record", "skipped_record"
]
