"""The test set's own sampling uncertainty: one run's binomial (Wilson) interval, and
McNemar's test of two runs scored on the same test examples (statsmodels)."""

from __future__ import annotations

import numpy as np


def wilson(acc: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (%) of one run's accuracy `acc` (%) on `n` test examples:
    the test set's own sampling uncertainty (statsmodels' proportion_confint)."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(round(acc / 100 * n), n, alpha=1 - confidence, method="wilson")
    return float(low) * 100, float(high) * 100


def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact McNemar p of two runs' per-example correctness on one test set
    (statsmodels' mcnemar on the discordant pairs)."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    return float(mcnemar(table, exact=True).pvalue)
