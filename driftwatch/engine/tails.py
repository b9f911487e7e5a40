"""A smooth upper tail for a resampled null statistic: empirical body, generalised Pareto tail.

A calibrated threshold sits far out in each column's null distribution (about the 1 - rate / m
quantile for m columns): with 1,000 resampled batches that is at or beyond the sample maximum,
and a threshold at the maximum moves a lot from one resample to the next. Peaks over threshold
(Pickands-Balkema-de Haan) model the excesses above a high empirical quantile by a generalised
Pareto distribution, which gives a continuous, much less noisy quantile there and a survival
function every batch can be scored on. The shape is fixed at 0 (exponential excesses, see
fit_tail) and the scale is the mean excess: closed form, so a bootstrap of the whole
calibration costs milliseconds. scipy.stats.genpareto fits by maximum likelihood only
(iterative, slow inside a bootstrap), so the few lines are written here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The share of tested values whose excesses the tail is fitted on, and the fewest excesses.
TAIL_SHARE = 0.25
MIN_EXCESSES = 20
# The tail shape is kept within [-0.5, 0.5]: the PWM estimator needs shape < 0.5, and a
# distance statistic's null has a light tail (shape near 0); further out is estimation noise.
SHAPE_BOUNDS = (-0.5, 0.5)


@dataclass(frozen=True)
class Tail:
    """Survival function of one column's null statistic: ``sorted_`` values in the body, a
    generalised Pareto (``shape``, ``scale``) for the top ``share`` above ``u``."""

    sorted_: np.ndarray
    u: float
    share: float
    shape: float
    scale: float

    def sf(self, x: np.ndarray) -> np.ndarray:
        """P(statistic >= x); NaN (not tested) maps to 1 (never past a threshold)."""
        x = np.asarray(x, dtype=float)
        n = self.sorted_.size
        # Body: the empirical survival, interpolated between order statistics (continuous).
        pos = (np.arange(n) + 0.5) / n
        body = 1.0 - np.interp(x, self.sorted_, pos, left=0.0, right=1.0)
        y = np.maximum(x - self.u, 0.0)
        tail = self.share * _gpd_sf(y, self.shape, self.scale)
        out = np.where(x > self.u, tail, np.maximum(body, self.share))
        return np.where(np.isnan(x), 1.0, out)

    def isf(self, p: float) -> float:
        """The value x with sf(x) = p (the threshold for a per-column level p)."""
        if p < self.share:
            return float(self.u + _gpd_isf(p / self.share, self.shape, self.scale))
        n = self.sorted_.size
        pos = (np.arange(n) + 0.5) / n
        return float(np.interp(1.0 - p, pos, self.sorted_))


def fit_tail(values: np.ndarray) -> Tail:
    """The tail of ``values`` (finite, at least MIN_EXCESSES / TAIL_SHARE of them)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    k = max(MIN_EXCESSES, round(TAIL_SHARE * n))
    u = float(x[n - k - 1]) if n > k else float(x[0])
    excess = x[n - k :] - u
    # Shape fixed at 0 (an exponential tail, the Gumbel domain where distance statistics and
    # -log p-values fall): one parameter from ~100 excesses is stable from one calibration to
    # the next, and for a lighter tail it errs high (quiet). A free shape (probability-weighted
    # moments) moved detection by up to 14 points between random_state 0-4 at 1,000 rows.
    scale = max(float(excess.mean()), 1e-12)
    return Tail(x, u, k / n, 0.0, scale)


def _gpd_sf(y: np.ndarray, shape: float, scale: float) -> np.ndarray:
    if abs(shape) < 1e-9:
        return np.exp(-y / scale)
    base = np.maximum(1 + shape * y / scale, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(base > 0, base ** (-1 / shape), 0.0)


def _gpd_isf(p: float, shape: float, scale: float) -> float:
    if abs(shape) < 1e-9:
        return -scale * np.log(p)
    return scale / shape * (p**-shape - 1)
