"""The regression gate and reproduction, without torch (docs/architecture.md):

- `tolerances`: what counts as a regression (`ftbench compare --config`);
- `baseline`: baseline files (`ftbench baseline save`) and results folders read alike;
- `compare`: the verdict per cell (accuracy: drop and one-sided Welch test; speed;
  seed by seed for reproduction);
- `render`: the verdict as a terminal table, markdown, GitHub annotations.
"""

from ftbench.gate.baseline import (BASELINE_FORMAT, BASELINE_METRICS, CELL_KEYS, ENV_KEYS, cell_labels, load_side,
                                   make_baseline, save_baseline)
from ftbench.gate.compare import (ACC_REGRESSION, MISSING, NO_TEST, SEED_MISMATCH, SPEED_REGRESSION, CellResult,
                                  Comparison, Summary, compare, welch_less)
from ftbench.gate.render import footnote, github_annotations, render_markdown, render_terminal, write_github
from ftbench.gate.tolerances import Tolerances, load_tolerances

__all__ = ["ACC_REGRESSION", "BASELINE_FORMAT", "BASELINE_METRICS", "CELL_KEYS", "ENV_KEYS", "MISSING", "NO_TEST",
           "SEED_MISMATCH", "SPEED_REGRESSION", "CellResult", "Comparison", "Summary", "Tolerances", "cell_labels",
           "compare", "footnote", "github_annotations", "load_side", "load_tolerances", "make_baseline",
           "render_markdown", "render_terminal", "save_baseline", "welch_less", "write_github"]
