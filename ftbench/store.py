"""Moved to `ftbench.results.store`, `ftbench.results.claims`, `ftbench.results.records` (docs/architecture.md); this module is kept for one release
so that plugins importing it keep working. Import from the new home."""

from ftbench.results.store import (
    RESOLVED_SUITE, write_json_atomic, write_text_atomic, atomic_file, StorageError, storage_errors, ResultsStore
)
from ftbench.results.claims import (claim_lease_seconds, claim_is_stale)
from ftbench.results.records import (
    RECORD_FORMAT, RecordSchema, Records, check_record, load_records, iter_record_files
)

__all__ = [
    "RESOLVED_SUITE", "write_json_atomic", "write_text_atomic", "atomic_file", "StorageError", "storage_errors",
    "ResultsStore", "claim_lease_seconds", "claim_is_stale", "RECORD_FORMAT", "RecordSchema", "Records",
    "check_record", "load_records", "iter_record_files"
]
