"""Many runs: pretrain, expand, skip what is done, search, fail fast, and hand the
rest to an executor (docs/architecture.md).

- `suite_run`: `run_suite`, the driver's loop;
- `worker`: the executor contract (`run_payload`), the only module executors import;
- `search`: the driver side of a hyperparameter search (studies, selection);
- `trials`: a search's rounds of trials through the executor, and waiting for held ones;
- `plan`: which runs a results folder's saved suite plans now (status, freshness);
- `selection`: `--only` filters; `failfast`: skip runs that will fail as others did;
- `calibrate`: the speed gate's calibration loop.

What `ftbench.driver` exported before it was a package is importable from it still.
"""

from ftbench.driver.selection import ONLY_KEYS, parse_only, select_runs
from ftbench.driver.suite_run import SuiteOutcome, eta_seconds, run_suite, save_resolved_suite
from ftbench.driver.trials import HELD_POLL_S
from ftbench.driver.worker import CLAIMED_ELSEWHERE, run_payload

CLAIMED = CLAIMED_ELSEWHERE  # its old name, kept for one release

__all__ = ["CLAIMED", "CLAIMED_ELSEWHERE", "HELD_POLL_S", "ONLY_KEYS", "SuiteOutcome", "eta_seconds", "parse_only",
           "run_payload", "run_suite", "save_resolved_suite", "select_runs"]
