"""Moved to `ftbench.report.render` (docs/architecture.md); this module is kept for one release so
that plugins importing it keep working. Import from the new home."""

from ftbench.report.render import (FORMATS, render)

__all__ = ["FORMATS", "render"]
