"""Moved to `ftbench.cli.gate`, `ftbench.cli.new` (docs/architecture.md); this module is
kept for one release so that plugins importing it keep working. Import from the new home."""

from ftbench.cli.gate import (baseline, save, compare_cmd)
from ftbench.cli.new import new

__all__ = ["baseline", "save", "compare_cmd", "new"]
