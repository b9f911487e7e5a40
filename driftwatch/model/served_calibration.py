"""The estimate's interval re-calibrated on the champion's own served, labelled periods.

The interval of :mod:`driftwatch.model.estimate` is calibrated on the champion's holdout, a few
days of data; months later whether ~90% of realised values still fall inside it depends on luck
(2013: 82-100% across champions, tasks and period lengths). But in production the labels of past
periods do arrive, late, and each realised period says how far off its estimate was.
:class:`ServedCalibration` learns from those pairs (the estimate with its interval, the realised
value) a factor on the interval's half-widths so that the level holds on them: wider where the
holdout was too confident, narrower where it was too cautious (narrowing is what lets an interval
exclude the baseline again, the estimated trigger's recall), never narrower than the batch's own
sampling part.

The method is split conformal prediction on the most recent ``max_periods`` periods, the
fixed-weight case of *nonexchangeable* conformal prediction (Barber, Candès, Ramdas & Tibshirani,
"Conformal prediction beyond exchangeability", Ann. Statist. 2023): weight 1 on the newest K
periods, 0 on older ones, so the coverage gap is bounded by how much the estimator's errors
changed over those K periods, not by how far the champion has come since its holdout. The
score of a period is the factor its interval needed to hold the realised value, the larger of
the two sides' (the CQR score of Romano, Patterson & Candès 2019, multiplicative here):

    s_i = max((r_i - e_i) / (h_i - e_i), (e_i - r_i) / (e_i - l_i))

on the estimator's scale (regression: the log of the mean loss, where its interval is built;
classification: the logit of the metric, where its widening is), and the conformal factor is
the ceil(level x (K + 1))-th smallest score. One factor for both sides keeps the base interval's asymmetry and needs 9
periods for a 90% level; separate factors at 95% a side would need 19 and be the largest
score below 39.

The errors of a stale champion's estimate drift (2013: the June-July champion's weekly scores
rise from ~0.3 in August to ~1 in December), and a window of past periods always lags a trend.
So the conformal factor is corrected online by quantile tracking, the P part of conformal PID
control (Angelopoulos, Candès & Tibshirani, "Conformal PID control for time series prediction",
NeurIPS 2023; Gibbs & Candès' adaptive conformal inference, 2021, on the factor's log instead
of the level): replaying the labelled periods in time order, each period's interval is the one
the periods before it gave, and after each, ``log c += step x (missed - (1 - level))``. Over any
sequence of periods, the share missed tends to ``1 - level`` (their Proposition 1: the gap is at
most (bound + step) / (step x periods)), whether the errors drift or not. The replay runs over
the newest ``3 x max_periods`` periods (what the monitor reads; the cost stays bounded), each
with the interval it had when it was served: labels ``lag`` periods late (hourly batches whose
labels land hours later) give it the periods labelled by then.

With fewer than ``min_periods`` labelled periods nothing is adjusted (factor 1: the holdout's
interval); between ``min_periods`` and the 9 that conformal needs at 90%, the largest score
stands in for the (infinite) conformal quantile, said in ``note``.

Pure: numpy only, no I/O; the monitor (:mod:`driftwatch.monitor.served_interval`) and the
benchmark (``benchmarks/estimate_served_2013.py``) feed it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from statistics import NormalDist
from typing import Any

import numpy as np

_MAX_SCORE = 1e3
# The quantile tracking replays at most this many times max_periods periods.
TRACKED = 3
# Metrics whose interval estimate.py builds on the log scale of a mean loss.
_LOG_SCALE = {"rmse": 2.0, "mae": 1.0}  # metric = mean_loss ** (1 / power): log(loss) = power * log
_BOUNDED = {"roc_auc", "accuracy", "f1"}  # in [0, 1]
# A realised 0 or 1 (a period of one class's rows) kept finite on the logit scale.
_EDGE = 1e-6


def to_scale(metric: str, x: Any) -> np.ndarray:
    """A metric's values on the scale its interval is built on: log of the mean loss for RMSE
    (2 log RMSE) and MAE (log MAE), the logit for a metric bounded by [0, 1] (where
    ``estimate.widen_logit`` widens it: a factor there keeps the ends inside [0, 1]), the
    metric itself otherwise."""
    a = np.asarray(x, dtype=float)
    if metric in _LOG_SCALE:
        with np.errstate(divide="ignore", invalid="ignore"):
            return _LOG_SCALE[metric] * np.log(a)
    if metric in _BOUNDED:
        p = np.clip(a, _EDGE, 1 - _EDGE)
        return np.log(p) - np.log1p(-p)
    return a


def from_scale(metric: str, z: Any) -> np.ndarray:
    a = np.asarray(z, dtype=float)
    if metric in _LOG_SCALE:
        return np.exp(a / _LOG_SCALE[metric])
    if metric in _BOUNDED:
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-a))
    return a


class ServedCalibration:
    """A factor on the estimate interval's half-widths, fitted on served, labelled periods.

    ``fit`` takes, oldest first, each period's estimate, interval and realised value (metric
    scale); only the newest ``max_periods`` count. ``adjust`` applies the factor to a new
    :class:`driftwatch.model.estimate.Estimate`. Fitted state: ``factor_`` (1.0 when not
    adjusted), ``correction_`` (quantile tracking's part of it), ``applied_factor_`` (what
    ``adjust`` uses: ``factor_``, or 1 while a narrowing waits for ``narrow_after`` periods),
    ``periods_`` (labelled periods given, at most 3 x ``max_periods``), ``scores_`` and
    ``note``.
    """

    def __init__(
        self,
        level: float = 0.9,
        min_periods: int = 8,
        max_periods: int = 30,
        step: float = 0.2,
        narrow_after: int | None = 20,
    ) -> None:
        if not 0 < level < 1:
            raise ValueError(f"level {level!r}: must lie between 0 and 1")
        if min_periods < 1 or max_periods < min_periods:
            raise ValueError(
                f"min_periods {min_periods}, max_periods {max_periods}: need 1 <= min <= max"
            )
        self.level = level
        self.min_periods = min_periods
        self.max_periods = max_periods
        # Quantile tracking's step on the log of the factor: 0.2 moves the factor ~20% after a
        # miss, ~2% after a hit at 90%. Chosen on 2013 (0.1-0.3 tried; weekly and daily
        # coverage, four champions), a setting of the method, not of a deployment.
        self.step = step
        # Narrowed only from this many labelled periods (None: from min_periods); before, the
        # factor is at least 1: see ServedIntervalSettings.narrow_after.
        self.narrow_after = narrow_after

    def fit(
        self,
        metric: str,
        estimate: Any,
        low: Any,
        high: Any,
        realised: Any,
        lag: int = 1,
        positions: Any = None,
    ) -> ServedCalibration:
        """``lag``: how many periods after its own a period's labels are known (1: from the
        next period on), so the replay gives each period the interval it had when served.
        ``positions``: each period's place in time, in periods (e.g. hours since some start),
        when the periods given are not contiguous (periods of too few labelled rows left out:
        night hours); the lag is then counted in time, not in periods given. None: contiguous."""
        e, lo, hi, r = (to_scale(metric, v) for v in (estimate, low, high, realised))
        pos = np.arange(len(e)) if positions is None else np.asarray(positions, dtype=float)
        if not (len(e) == len(lo) == len(hi) == len(r) == len(pos)):
            raise ValueError(
                f"ServedCalibration.fit: estimate {len(e)}, low {len(lo)}, high {len(hi)},"
                f" realised {len(r)}, positions {len(pos)} periods differ"
            )
        ok = np.isfinite(e) & np.isfinite(lo) & np.isfinite(hi) & np.isfinite(r)
        keep = slice(-TRACKED * self.max_periods, None)
        e, lo, hi, r, pos = (v[ok][keep] for v in (e, lo, hi, r, pos))
        self.metric_ = metric
        self.periods_ = len(e)
        self.scores_ = _scores(e, lo, hi, r)
        self.factor_, self.correction_, self.applied_factor_ = 1.0, 1.0, 1.0
        n, k_max = self.periods_, self.max_periods
        if n < self.min_periods:
            self.note = (
                f"interval from the holdout: {n} served period(s) labelled"
                f" (< {self.min_periods} to calibrate on)"
            )
            return self
        # Quantile tracking: replay the periods in time order, each with the interval it had
        # when served (the periods labelled ``lag`` periods before it, the correction from
        # those), and correct after each: log c += step x (missed - (1 - level)).
        miss_rate, lag = 1 - self.level, max(int(lag), 1)
        log_c = np.zeros(n + 1)  # log_c[j + 1]: the correction once periods <= j are labelled
        # known_at[m]: periods [0, known_at[m]) were labelled when m was served (those ``lag``
        # periods before it in time, or more; pos is sorted, oldest first).
        known_at = np.searchsorted(pos, pos - lag, side="right")
        for m in range(n):
            known = int(known_at[m])
            step = 0.0
            if known >= self.min_periods:
                before = self.scores_[max(0, known - k_max) : known]
                missed = self.scores_[m] > self._conformal(before) * np.exp(log_c[known])
                step = self.step * (float(missed) - miss_rate)
            log_c[m + 1] = log_c[m] + step
        recent = self.scores_[-k_max:]
        self.correction_ = float(np.exp(log_c[n]))
        self.factor_ = self._conformal(recent) * self.correction_
        held = self.narrow_after is not None and n < self.narrow_after and self.factor_ < 1
        self.applied_factor_ = 1.0 if held else self.factor_
        exact = math.ceil(self.level * (len(recent) + 1)) <= len(recent)
        few = "" if exact else f"; {len(recent)} periods: the largest score for the exact rank"
        if held:
            few += f"; measured x{self.factor_:.2g}, narrowed only from {self.narrow_after}"
        self.note = (
            f"interval calibrated on {len(recent)} served periods"
            f" (x{self.applied_factor_:.2g}{few})"
        )
        return self

    def _conformal(self, scores: np.ndarray) -> float:
        """The ceil(level x (n + 1))-th smallest score (Barber et al. 2023, eq. 1, weights 1),
        the largest when n is too small for that rank; at least 0 (a score <= 0: every period's
        realised value on the estimate's side; ``adjust`` keeps the sampling floor)."""
        n = len(scores)
        k = math.ceil(self.level * (n + 1))
        ordered = np.sort(scores)
        return max(float(ordered[k - 1] if k <= n else ordered[-1]), 0.0)

    @property
    def adjusted(self) -> bool:
        return self.periods_ >= self.min_periods

    @property
    def calibrated_on(self) -> int:
        """Periods whose scores make the conformal factor (the newest ``max_periods``)."""
        return min(self.periods_, self.max_periods)

    def adjust(self, estimate: Any, floor: float = 0.0) -> Any:
        """``estimate`` (an Estimate) with each half-width times ``factor_``, on the estimator's
        scale, each at least the normal quantile times ``floor`` (the batch's own sampling sd: on
        the log scale for RMSE / MAE, of the metric itself for classification, taken to the logit
        here; no number of served periods makes one batch's rows less noisy)."""
        if not self.adjusted or not np.isfinite(estimate.value):
            return estimate
        m = self.metric_
        e, lo, hi = (float(to_scale(m, v)) for v in (estimate.value, estimate.low, estimate.high))
        z = NormalDist().inv_cdf(0.5 + self.level / 2)
        floor = max(float(floor), 0.0)
        if m in _BOUNDED:  # the metric's sd, on the logit scale (delta method)
            v = min(max(float(estimate.value), _EDGE), 1 - _EDGE)
            floor /= v * (1 - v)
        least = z * floor
        down = max(self.applied_factor_ * (e - lo), least)
        up = max(self.applied_factor_ * (hi - e), least)
        with np.errstate(over="ignore"):
            low, high = float(from_scale(m, e - down)), float(from_scale(m, e + up))
        if not (np.isfinite(low) and np.isfinite(high)):  # a side beyond any number: as it was
            return estimate
        if m in _BOUNDED:
            low, high = max(0.0, low), min(1.0, high)
        return replace(estimate, low=low, high=high)


def _scores(e: np.ndarray, lo: np.ndarray, hi: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Per period, the factor on its half-widths that just holds the realised value."""
    tiny = np.finfo(float).tiny
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        up = (r - e) / np.maximum(hi - e, tiny)
        down = (e - r) / np.maximum(e - lo, tiny)
    # A side of no width (a period of a few rows whose interval collapsed) would give an
    # infinite score; a factor of 1,000 already means "no information on this side".
    return np.clip(np.maximum(up, down), -_MAX_SCORE, _MAX_SCORE)
