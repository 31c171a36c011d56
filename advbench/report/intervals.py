"""95% confidence intervals for accuracies measured on n samples (statsmodels, scipy)."""

from __future__ import annotations

import math

from scipy.stats import t
from statsmodels.stats.proportion import proportion_confint


def _interval(share: float, n: int, confidence: float, method: str) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    low, high = proportion_confint(round(share * n), n, alpha=1 - confidence, method=method)
    return (float(low), float(high))


def wilson(share: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (leaderboards: short, never outside [0, 1])."""
    return _interval(share, n, confidence, "wilson")


def clopper_pearson(share: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson ("exact", beta) interval: covers at least `confidence` for every true accuracy,
    which matters at the 0 % and 100 % a small robust evaluation often gives (model reports)."""
    return _interval(share, n, confidence, "beta")


def mean_interval(mean: float, sd: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of a mean of n values in [0, 1] (a random model's expected accuracy:
    the mean over images of each image's estimated P(correct)), clipped to [0, 1]."""
    if n < 2:
        return (0.0, 1.0)
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return (max(0.0, mean - half), min(1.0, mean + half))
