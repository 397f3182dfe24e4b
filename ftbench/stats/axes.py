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


# Effective robustness needs a reference line worth the name: at least this many
# reference runs, spanning at least this many points of test accuracy, rising.
MIN_REFERENCE_RUNS = 6
MIN_REFERENCE_SPREAD = 5.0


@dataclass(frozen=True)
class LinearFit:
    """logit(shifted) ≈ slope * logit(test) + intercept over reference runs
    (Taori et al. 2020 fit in logit space: the trend is linear there), with what
    the line's own uncertainty needs: the runs, their mean logit, Sxx and the
    residual variance."""

    slope: float
    intercept: float
    r: float
    n: int = 0
    x_mean: float = math.nan
    sxx: float = math.nan
    resid_var: float = math.nan
    spread: float = math.nan  # max - min test accuracy of the reference runs (points)

    def predict(self, test_acc: np.ndarray | float) -> np.ndarray | float:
        """The shifted accuracy (%) the line predicts from test accuracy (%)."""
        return 100 / (1 + np.exp(-(self.slope * _logit(test_acc) + self.intercept)))

    def predict_var(self, test_acc: float) -> float:
        """Variance (points²) of the line's prediction at `test_acc` from the fit's own
        uncertainty: s² (1/m + (x - x̄)² / Sxx) in logit space, carried to % by the delta
        method (the derivative of 100 sigmoid is 100 p (1 - p))."""
        x = float(_logit(test_acc))
        p = float(self.predict(test_acc)) / 100
        v_logit = self.resid_var * (1 / self.n + (x - self.x_mean) ** 2 / self.sxx)
        return (100 * p * (1 - p)) ** 2 * v_logit

    def problem(self) -> str | None:
        """Why this line cannot serve as a reference (effective robustness is then n/a)."""
        if self.n < MIN_REFERENCE_RUNS:
            return f"{self.n} reference runs, fewer than {MIN_REFERENCE_RUNS}"
        if not self.spread >= MIN_REFERENCE_SPREAD:
            return (f"reference test accuracies span {self.spread:.1f} points, under {MIN_REFERENCE_SPREAD:g}: "
                    "no spread to fit a trend on")
        if not self.slope > 0:
            return f"slope {self.slope:.2f} is not positive: no accuracy-on-the-line trend to measure against"
        return None


def robustness_fit(test_acc: Sequence[float], shifted_acc: Sequence[float]) -> LinearFit | None:
    """Least-squares line of logit(shifted) vs logit(test); None when fewer than two
    distinct test accuracies leave the line undefined."""
    x = np.asarray(test_acc, dtype=float)
    if len(np.unique(x)) < 2:
        return None
    lx, ly = _logit(x), _logit(np.asarray(shifted_acc, dtype=float))
    res = stats.linregress(lx, ly)
    resid = ly - (res.slope * lx + res.intercept)
    m = len(x)
    resid_var = float(np.sum(resid ** 2) / (m - 2)) if m > 2 else math.nan
    return LinearFit(float(res.slope), float(res.intercept), float(res.rvalue), m, float(lx.mean()),
                     float(np.sum((lx - lx.mean()) ** 2)), resid_var, float(np.ptp(x)))


def effective_robustness(test_acc: Sequence[float], shifted_acc: Sequence[float], fit: LinearFit) -> np.ndarray:
    """Shifted accuracy (points) above what the fit predicts from test accuracy."""
    return np.asarray(shifted_acc, dtype=float) - fit.predict(np.asarray(test_acc, dtype=float))


def er_summary(test_acc: Sequence[float], er: Sequence[float], fit: LinearFit,
               confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean effective robustness over a cell's seeds with an interval that adds the
    line's own uncertainty at the cell's mean test accuracy to the seeds' (s²/n +
    the prediction's variance, Satterthwaite's df): (mean, low, high), nan bounds
    below 2 seeds or without a residual variance."""
    e = np.asarray(er, dtype=float)
    n = len(e)
    mean = float(e.mean()) if n else math.nan
    if n < 2 or not math.isfinite(fit.resid_var) or fit.n < 3:
        return mean, math.nan, math.nan
    v_seed = float(e.var(ddof=1)) / n
    v_fit = fit.predict_var(float(np.mean(test_acc)))
    total = v_seed + v_fit
    if not total > 0:
        return mean, mean, mean
    # Satterthwaite's df, but never above the seeds' n - 1: adding the fit's variance must not narrow the interval
    df = min(total ** 2 / (v_seed ** 2 / (n - 1) + v_fit ** 2 / (fit.n - 2)), n - 1)
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * math.sqrt(total)
    return mean, mean - half, mean + half


def forgetting(before: float, after: float) -> tuple[float, float]:
    """(drop in points, retention in % of before) of source-task accuracy."""
    return before - after, (after / before * 100 if before else math.nan)
