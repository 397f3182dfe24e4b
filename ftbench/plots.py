"""Moved to `ftbench.report.plots` (docs/architecture.md); this module is kept for one release so
that plugins importing it keep working. Import from the new home."""

from ftbench.report.plots import (write_plots, figures)

__all__ = ["write_plots", "figures"]
