"""Moved to `ftbench.engine.runner`, `ftbench.engine.environment`, `ftbench.engine.tasks`,
`ftbench.driver.worker` (docs/architecture.md); this module is kept for one release so that
plugins importing it keep working. Import from the new home."""

from ftbench.engine.runner import (warm_up, execute)
from ftbench.engine.environment import (seed_everything, resolve_device, proc_status_kb)
from ftbench.engine.tasks import (load_task, align_classes)
from ftbench.driver.worker import (failed_record, skipped_record)

__all__ = [
    "warm_up", "execute", "seed_everything", "resolve_device", "proc_status_kb", "load_task", "align_classes",
    "failed_record", "skipped_record"
]
