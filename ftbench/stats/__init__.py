"""Statistics over seeds: summaries with intervals, paired tests, which cells can be
told from the best, effect sizes, equivalence and power, test-set uncertainty, ranks
across tasks, data efficiency, domain shift and forgetting, and sequential designs for
adaptive seeds and the speed gate; one module per concern.

Pure functions on numbers; nothing here knows a record. Distributions come from
scipy, never from hand-written formulas; TOST, power, Wilson and McNemar come from
statsmodels. Accuracies are percentages. Every method is chosen to stay honest at
the 3-5 seeds people run: see README's "How to read the report".
"""

from ftbench.stats.across_tasks import (FRIEDMAN_EXACT_TASKS, Friedman, average_ranks, chance_normalize, friedman,
                                        iqm, iqm_interval, nemenyi_cd, probability_of_improvement)
from ftbench.stats.axes import (MIN_REFERENCE_RUNS, MIN_REFERENCE_SPREAD, LinearFit, data_auc, effective_robustness,
                                er_summary, forgetting, robustness_fit)
from ftbench.stats.paired import (GRID_TOLERANCE, TESTS, BestSet, Paired, PairedTest, PairResult, best_of, best_set,
                                  hedges_gz, holm, match_seeds, on_grid, pair_tests, paired_test, power_paired,
                                  sign_flip_p, test_label, tost_paired, wilcoxon_min_p)
from ftbench.stats.seeds import (ALL_EQUAL, BOOTSTRAP_MIN_N, BOOTSTRAP_RESAMPLES, INTERVALS, Interval, Summary,
                                 interval_label, noninferiority_p, summarize, summarize_log, tost_welch,
                                 welch_diff)
from ftbench.stats.sequential import (SPENDINGS, ComparisonState, SequentialDesign, SequentialLook,
                                      decide, look_schedule, repeated_interval, speed_interval,
                                      t_design)
from ftbench.stats.test_set import TwoLevel, mcnemar_p, t_interval, two_level, wilson

__all__ = ["ALL_EQUAL", "BOOTSTRAP_MIN_N", "BOOTSTRAP_RESAMPLES", "FRIEDMAN_EXACT_TASKS", "GRID_TOLERANCE",
           "INTERVALS", "MIN_REFERENCE_RUNS", "MIN_REFERENCE_SPREAD", "SPENDINGS", "TESTS", "BestSet",
           "ComparisonState", "Friedman", "Interval", "LinearFit", "PairResult", "Paired", "PairedTest",
           "SequentialDesign", "SequentialLook", "Summary", "TwoLevel", "average_ranks", "best_of",
           "best_set", "chance_normalize", "data_auc", "decide", "effective_robustness",
           "er_summary", "forgetting", "friedman", "hedges_gz", "holm", "interval_label", "iqm", "iqm_interval",
           "look_schedule", "match_seeds", "mcnemar_p", "nemenyi_cd", "noninferiority_p", "on_grid", "pair_tests",
           "paired_test", "power_paired", "probability_of_improvement", "repeated_interval", "robustness_fit",
           "sign_flip_p", "speed_interval", "summarize", "summarize_log", "t_design", "t_interval", "test_label",
           "tost_paired", "tost_welch", "two_level", "welch_diff", "wilcoxon_min_p", "wilson"]
