"""Moved to `ftbench.driver.search`, `ftbench.engine.trial`, `ftbench.suite.runs`,
`ftbench.suite.tuning` (docs/architecture.md); this module is kept for one release so that
plugins importing it keep working. Import from the new home."""

from ftbench.driver.search import (
    TRIALS_FOLDER, SELECTION_RULE, ORACLE_RULE, SearchBusy, with_values, make_study, selection_of, planned_trials,
    CellPlan, cell_key, plan_search, run_search
)
from ftbench.engine.trial import (HALVING, holdout_split, make_pruner, trial_pruner)
from ftbench.suite.runs import (TrialSpec, TunedSpec)
from ftbench.suite.tuning import (searches, oracle_strategies)

__all__ = [
    "TRIALS_FOLDER", "SELECTION_RULE", "ORACLE_RULE", "SearchBusy", "with_values", "make_study", "selection_of",
    "planned_trials", "CellPlan", "cell_key", "plan_search", "run_search", "HALVING", "holdout_split",
    "make_pruner", "trial_pruner", "TrialSpec", "TunedSpec", "searches", "oracle_strategies"
]
