"""Where the holdout had data: the region a performance estimator can speak for.

A loss model (or a calibration map) fitted on the holdout extrapolates outside the holdout's
range: a July batch judged by a January loss model gets a confident number that means little.
``Support`` remembers each column's central range (numerical: the 1st-99th percentile; categorical:
the categories seen) and says which columns of a batch lie outside it for more than a set share of
its rows, so the estimate can be flagged unreliable instead of reported as if it were sure.
It also measures how far a batch's numerical columns have moved from the holdout's
(:meth:`Support.distance`), which widens the estimate's interval: the loss model's error grows
with the distance (``driftwatch.model.estimate``). A short batch moves by chance even when its rows
are like the holdout's (the mean of an hour's 50 flights is not the mean of 5,000); ``ChanceDistance``
learns, on contiguous blocks of the holdout itself, how far a batch of a given size moves by
chance, so that only the excess widens the interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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

    def block_distances(self, X: pd.DataFrame, size: int, starts: np.ndarray) -> np.ndarray:
        """:meth:`distance` of each block ``X[start:start + size]`` (rows in order), at once:
        cumulative sums of the known columns, so many blocks cost one pass over ``X``."""
        cols = [c for c in getattr(self, "centres_", {}) if c in X.columns]
        if not cols or not len(starts):
            return np.zeros(len(starts))
        V = np.column_stack(
            [pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=np.float64) for c in cols]
        )
        ok = np.isfinite(V)
        S = np.vstack([np.zeros(len(cols)), np.cumsum(np.where(ok, V, 0.0), axis=0)])
        C = np.vstack([np.zeros(len(cols)), np.cumsum(ok, axis=0)])
        a, b = np.asarray(starts), np.asarray(starts) + size
        count = C[b] - C[a]
        mean = (S[b] - S[a]) / np.where(count > 0, count, 1)
        centre = np.array([self.centres_[c] for c in cols])  # (mean, sd) per column
        gap = np.abs(mean - centre[:, 0]) / centre[:, 1]
        # As distance(): the mean over the columns that have values in the block.
        has = count > 0
        k = has.sum(axis=1)
        return np.where(k > 0, np.where(has, gap, 0.0).sum(axis=1) / np.maximum(k, 1), 0.0)

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


@dataclass
class ChanceDistance:
    """How far a batch of the holdout's own kind moves from the holdout by chance, by its rows.

    ``fit`` measures :meth:`Support.distance` on contiguous blocks of the holdout (rows in time
    order, as production cuts batches: an hour's flights share their weather, so its mean moves
    more than that of 50 rows drawn at random) of several sizes, and keeps the median per size.
    ``at(rows)`` interpolates it on log rows; above the largest size it shrinks as
    1/sqrt(rows) (a mean's sampling noise), below the smallest it stays. Hand-written: no library
    measures this, and it is ten lines on top of the block machinery the interval already uses.
    """

    rows_: list[int] = field(default_factory=list)
    distance_: list[float] = field(default_factory=list)

    def fit(
        self, support: Support, X: pd.DataFrame, sizes: list[int], starts: Any
    ) -> ChanceDistance:
        """``starts(size)``: the block starts for one size (the interval's ``_block_starts``)."""
        self.rows_, self.distance_ = [], []
        for size in sizes:
            d = support.block_distances(X, size, starts(size))
            if len(d):
                self.rows_.append(int(size))
                self.distance_.append(float(np.median(d)))
        return self

    def at(self, rows: int) -> float:
        """The chance distance of a batch of ``rows`` rows (0 before ``fit`` or with no rows)."""
        if not self.rows_ or rows <= 0:
            return 0.0
        top = self.rows_[-1]
        if rows > top:
            return self.distance_[-1] * float(np.sqrt(top / rows))
        return float(np.interp(np.log(rows), np.log(self.rows_), self.distance_))
