"""The other axes: data efficiency (AUC over log data), domain shift (effective
robustness in logit space) and forgetting."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats


def data_auc(n_train: Sequence[float], acc: Sequence[float]) -> float:
    """Area under accuracy vs log(n_train), the data axis normalised to [0, 1]: the
    mean accuracy over log-spaced data amounts (nan with fewer than 2 amounts)."""
    x = np.log(np.asarray(n_train, dtype=float))
    y = np.asarray(acc, dtype=float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    if len(x) < 2 or x[-1] == x[0]:
        return math.nan
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def _logit(acc: np.ndarray | float) -> np.ndarray:
    """logit of an accuracy in %, clipped to [0.1, 99.9] so 0 and 100 stay finite."""
    p = np.clip(np.asarray(acc, dtype=float) / 100, 0.001, 0.999)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class LinearFit:
    """logit(shifted) ≈ slope * logit(test) + intercept over reference runs
    (Taori et al. 2020 fit in logit space: the trend is linear there)."""

    slope: float
    intercept: float
    r: float

    def predict(self, test_acc: np.ndarray | float) -> np.ndarray | float:
        """The shifted accuracy (%) the line predicts from test accuracy (%)."""
        return 100 / (1 + np.exp(-(self.slope * _logit(test_acc) + self.intercept)))


def robustness_fit(test_acc: Sequence[float], shifted_acc: Sequence[float]) -> LinearFit | None:
    """Least-squares line of logit(shifted) vs logit(test); None when fewer than two
    distinct test accuracies leave the line undefined."""
    x = np.asarray(test_acc, dtype=float)
    if len(np.unique(x)) < 2:
        return None
    res = stats.linregress(_logit(x), _logit(np.asarray(shifted_acc, dtype=float)))
    return LinearFit(float(res.slope), float(res.intercept), float(res.rvalue))


def effective_robustness(test_acc: Sequence[float], shifted_acc: Sequence[float], fit: LinearFit) -> np.ndarray:
    """Shifted accuracy (points) above what the fit predicts from test accuracy."""
    return np.asarray(shifted_acc, dtype=float) - fit.predict(np.asarray(test_acc, dtype=float))


def forgetting(before: float, after: float) -> tuple[float, float]:
    """(drop in points, retention in % of before) of source-task accuracy."""
    return before - after, (after / before * 100 if before else math.nan)
