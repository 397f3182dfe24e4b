"""Moved to `ftbench.engine.training` (docs/architecture.md); this module is kept for one release
so that plugins importing it keep working. Import from the new home."""

from ftbench.engine.training import (FitResult, Budget, lr_factor, build_optimizer, autocast_for, PHASE_CHECKS, fit)

__all__ = ["FitResult", "Budget", "lr_factor", "build_optimizer", "autocast_for", "PHASE_CHECKS", "fit"]
