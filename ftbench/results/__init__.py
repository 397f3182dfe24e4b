"""What is on disk and what it says, without torch: the results store (atomic writes,
claims), the run record's schema and reader, which code made a record (provenance),
and which records are current runs of their suite (freshness)."""
