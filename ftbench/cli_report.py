"""Moved to `ftbench.cli.report` (docs/architecture.md); this module is kept for one release so
that plugins importing it keep working. Import from the new home."""

from ftbench.cli.report import report

__all__ = ["report"]
