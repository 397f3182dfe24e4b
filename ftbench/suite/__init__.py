"""Suites: a YAML file in, a validated `Suite` and one `RunSpec` per combination out,
without torch. The steps, one module each (docs/architecture.md):

- `schema`: the pydantic models of a suite file, and the labels of its entries;
- `strict`: YAML read as typed (`1e-3` a float, no `yes` for a number), strict
  validation, "did you mean";
- `problems`: field paths and YAML lines of problems;
- `load`: `load_suite` / `parse_suite` (with `-o` overrides), every problem at once;
- `checks`: checks of the suite as a whole against the registry;
- `preflight`: is each data folder, weights file and device there;
- `runs`: `RunSpec` (and search trials and tuned runs), ids;
- `expand`: the matrix into runs; pretraining jobs' checkpoint keys;
- `tuning`: which strategies are searched, with which search.

What `ftbench.suite` exported before it was a package is importable from it still.
"""

from ftbench.suite.expand import expand, pretrain_config, pretrain_key, resolve_ref, total_budget
from ftbench.suite.load import apply_overrides, load_suite, parse_suite
from ftbench.suite.runs import RunSpec, TrialSpec, TunedSpec, config_hash
from ftbench.suite.schema import (CHECKPOINT_PREFIX, DEFAULT_THREADS, PRETRAIN_PREFIX, AdaptConfig, ComponentRef,
                                  DataAmount, DatasetEntry, Dimension, EvalConfig, MatrixRule, PretrainJob,
                                  PrimaryComparison, SearchConfig, SearchKey, SearchOverride, Seed, ShiftConfig,
                                  StrategyEntry, Suite, entry_label, entry_labels)
from ftbench.suite.tuning import oracle_strategies, resolve_search, search_budgets, searches, unequal_budgets

__all__ = ["CHECKPOINT_PREFIX", "DEFAULT_THREADS", "PRETRAIN_PREFIX", "AdaptConfig", "ComponentRef", "DataAmount",
           "DatasetEntry", "Dimension", "EvalConfig", "MatrixRule", "PretrainJob", "PrimaryComparison", "RunSpec",
           "SearchConfig", "SearchKey", "SearchOverride", "Seed", "ShiftConfig", "StrategyEntry", "Suite", "TrialSpec",
           "TunedSpec", "apply_overrides", "config_hash", "entry_label", "entry_labels", "expand", "load_suite",
           "oracle_strategies", "parse_suite", "pretrain_config", "pretrain_key", "resolve_ref", "resolve_search",
           "search_budgets", "searches", "total_budget", "unequal_budgets"]
