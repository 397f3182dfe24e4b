"""Statistics over seeds: summaries with intervals, paired tests, which cells can be
told from the best, effect sizes, equivalence and power, test-set uncertainty, ranks
across tasks, data efficiency, domain shift and forgetting; one module per concern.

Pure functions on numbers; nothing here knows a record. Distributions come from
scipy, never from hand-written formulas; TOST, power, Wilson and McNemar come from
statsmodels. Accuracies are percentages. Every method is chosen to stay honest at
the 3-5 seeds people run: see README's "How to read the report".
"""

from ftbench.stats.across_tasks import (FRIEDMAN_EXACT_TASKS, Friedman, average_ranks, friedman, iqm, iqm_interval,
                                        nemenyi_cd, normalize_tasks, probability_of_improvement)
from ftbench.stats.axes import LinearFit, data_auc, effective_robustness, forgetting, robustness_fit
from ftbench.stats.paired import (TESTS, BestSet, Paired, PairedTest, best_set, hedges_gz, holm, match_seeds,
                                  paired_test, power_paired, test_label, tost_paired, wilcoxon_min_p)
from ftbench.stats.seeds import (BOOTSTRAP_MIN_N, BOOTSTRAP_RESAMPLES, INTERVALS, Interval, Summary, interval_label,
                                 summarize, summarize_log, tost_welch, welch_diff)
from ftbench.stats.test_set import mcnemar_p, wilson

__all__ = ["BOOTSTRAP_MIN_N", "BOOTSTRAP_RESAMPLES", "FRIEDMAN_EXACT_TASKS", "INTERVALS", "TESTS", "BestSet",
           "Friedman", "Interval", "LinearFit", "Paired", "PairedTest", "Summary", "average_ranks", "best_set",
           "data_auc", "effective_robustness", "forgetting", "friedman", "hedges_gz", "holm", "interval_label", "iqm",
           "iqm_interval", "match_seeds", "mcnemar_p", "nemenyi_cd", "normalize_tasks", "paired_test",
           "power_paired", "probability_of_improvement", "robustness_fit", "summarize", "summarize_log",
           "test_label", "tost_paired", "tost_welch", "welch_diff", "wilcoxon_min_p", "wilson"]
