"""Moved to `ftbench.gate.tolerances`, `ftbench.gate.baseline`, `ftbench.gate.compare`,
`ftbench.gate.render` (docs/architecture.md); this module is kept for one release so that
plugins importing it keep working. Import from the new home."""

from ftbench.gate.tolerances import Tolerances, load_tolerances
from ftbench.gate.baseline import BASELINE_METRICS as METRICS  # its old name
from ftbench.gate.baseline import (BASELINE_FORMAT, CELL_KEYS, ENV_KEYS, make_baseline, save_baseline, load_side)
from ftbench.gate.compare import (
    ACC_REGRESSION, SPEED_REGRESSION, SEED_MISMATCH, MISSING, NO_TEST, Summary, CellResult, Comparison, compare
)
from ftbench.gate.render import footnote, github_annotations, render_markdown, render_terminal, write_github

__all__ = [
    "METRICS", "Tolerances", "load_tolerances", "BASELINE_FORMAT", "CELL_KEYS", "ENV_KEYS", "make_baseline", "save_baseline",
    "load_side", "ACC_REGRESSION", "SPEED_REGRESSION", "SEED_MISMATCH", "MISSING", "NO_TEST", "Summary",
    "CellResult", "Comparison", "compare", "footnote", "render_terminal", "render_markdown", "github_annotations",
    "write_github"
]
