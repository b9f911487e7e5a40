"""Where the holdout had data: the region a performance estimator can speak for.

A loss model (or a calibration map) fitted on the holdout extrapolates outside the holdout's
range: a July batch judged by a January loss model gets a confident number that means little.
``Support`` remembers each column's central range (numerical: the 1st-99th percentile; categorical:
the categories seen) and says which columns of a batch lie outside it for more than a set share of
its rows, so the estimate can be flagged unreliable instead of reported as if it were sure.
It also measures how far a batch's numerical columns have moved from the holdout's
(:meth:`Support.distance`), which widens the estimate's interval: the loss model's error grows
with the distance (``driftwatch.model.estimate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def is_categorical(values: pd.Series) -> bool:
    """Columns the estimators treat as categories: anything that is not a number (bool counts
    as a category: two values, no order worth learning)."""
    return not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


@dataclass
class Support:
    """The holdout's support per column. ``fit`` learns it; ``outside`` measures a batch.

    ``quantile``: numerical values below the q-th or above the (1-q)-th holdout quantile are
    outside (by construction ~2q of the holdout itself is, so the share threshold must be well
    above 2q: 0.2 against 0.02 by default)."""

    quantile: float = 0.01
    ranges_: dict[str, tuple[float, float]] = field(default_factory=dict)
    categories_: dict[str, frozenset[str]] = field(default_factory=dict)
    # Numerical columns' holdout mean and standard deviation (columns with sd 0 left out).
    centres_: dict[str, tuple[float, float]] = field(default_factory=dict)

    def fit(self, X: pd.DataFrame) -> Support:
        self.ranges_, self.categories_, self.centres_ = {}, {}, {}
        for col in X.columns:
            values = X[col]
            if is_categorical(values):
                self.categories_[str(col)] = frozenset(values.dropna().astype(str).unique())
            else:
                v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
                v = v[np.isfinite(v)]
                if len(v):
                    lo, hi = np.quantile(v, [self.quantile, 1 - self.quantile])
                    self.ranges_[str(col)] = (float(lo), float(hi))
                    sd = float(np.std(v))
                    if sd > 0:
                        self.centres_[str(col)] = (float(np.mean(v)), sd)
        return self

    def distance(self, X: pd.DataFrame) -> float:
        """How far the batch moved: the mean over the numerical columns of |batch mean - holdout
        mean| / holdout sd (near 0 for a long batch like the holdout, ~1 when its columns moved by one sd
        on average). Unlike :meth:`outside` it grows smoothly with the move, also inside the
        1st-99th percentile range. 0 without known columns (an estimator stored before this
        existed has no ``centres_``)."""
        return self.distance_from(self.column_sums(X))

    def column_sums(self, X: pd.DataFrame) -> dict[str, tuple[float, int]]:
        """Per known numerical column, the sum and count of the batch's finite values: what
        :meth:`distance_from` needs, as sums that add up across a big batch's partitions."""
        out: dict[str, tuple[float, int]] = {}
        for col in getattr(self, "centres_", {}):
            if col in X.columns:
                v = pd.to_numeric(X[col], errors="coerce").to_numpy(dtype=np.float64)
                v = v[np.isfinite(v)]
                out[col] = (float(v.sum()), len(v))
        return out

    def distance_from(self, sums: dict[str, tuple[float, int]]) -> float:
        """:meth:`distance` from :meth:`column_sums` (merged, for a summarised batch)."""
        gaps = []
        for col, (mean, sd) in getattr(self, "centres_", {}).items():
            total, count = sums.get(col, (0.0, 0))
            if count:
                gaps.append(abs(total / count - mean) / sd)
        return float(np.mean(gaps)) if gaps else 0.0

    def outside(self, X: pd.DataFrame) -> dict[str, float]:
        """Share of the batch's rows outside the holdout's support, per known column present in
        ``X`` (missing values count as inside: the loss model saw missing values)."""
        out: dict[str, float] = {}
        n = len(X)
        if n == 0:
            return out
        for col, (lo, hi) in self.ranges_.items():
            if col in X.columns:
                v = pd.to_numeric(X[col], errors="coerce").to_numpy(dtype=np.float64)
                out[col] = float(np.mean((v < lo) | (v > hi)))
        for col, seen in self.categories_.items():
            if col in X.columns:
                values = X[col]
                known = values.isna() | values.astype(str).isin(seen)
                out[col] = float(1.0 - known.mean())
        return out

    def problem(self, X: pd.DataFrame | None, max_share: float) -> str | None:
        """One line naming the columns with more than ``max_share`` of rows outside, or None."""
        if X is None or not (self.ranges_ or self.categories_):
            return None
        return self.problem_in(self.outside(X), max_share)

    def problem_in(self, shares: dict[str, float], max_share: float) -> str | None:
        """:meth:`problem` from the shares of rows outside, per column (merged counts)."""
        bad = sorted(((s, c) for c, s in shares.items() if s > max_share), reverse=True)
        if not bad:
            return None
        named = ", ".join(f"{c} {s:.0%}" for s, c in bad)
        return (
            f"batch outside the holdout's support (share of rows beyond its 1st-99th percentile"
            f" or unseen categories > {max_share:.0%}): {named}"
        )
