"""Estimated performance of the champion on a batch whose labels have not arrived yet.

Two estimators, fitted once per champion on its holdout (rows in time order, with the
predictions of the model trained *without* the holdout, see below), then asked every tick:

- ``LossEstimator`` (regression, Direct Loss Estimation): a second model, gradient boosting
  (LightGBM, ``driftwatch.model.loss_model``) on the features plus the monitored model's
  prediction, predicts each row's squared error (``rmse``) or absolute error (``mae``). The
  batch estimate is sqrt(mean predicted squared error) (or the mean predicted absolute error).
- ``ConfidenceEstimator`` (classification, Confidence-Based Performance Estimation): the model's
  scores are calibrated on the holdout; calibrated probabilities give the expected confusion
  matrix, hence expected accuracy and F1, and expected TPR/FPR per threshold, hence expected ROC
  AUC (NannyML's CBPE). Multiclass: one-vs-rest, macro-averaged.

**The holdout trap.** driftwatch decides a promotion on the holdout (the newest rows of the
window) and then refits the winner on the whole window, holdout included: the deployed model's
errors on the holdout are in-sample, optimistic, and a loss model fitted on them would promise
too little error. Fit these estimators on the holdout with the predictions of the model trained
without it (the challenger as it was scored), which are out-of-sample like a new batch's.

**The interval** has two parts, both measured, not assumed:
1. the estimator's own error: cross-fitted on the holdout (K contiguous folds in time, each
   predicted by an estimator fitted on the other folds), then compared, on many contiguous
   blocks of the holdout of several sizes, with the realised metric of the same block;
2. the batch's sampling noise, which shrinks with its rows (regression: the spread of a row's
   loss around its prediction, measured on the holdout; classification: labels drawn from the
   calibrated probabilities, a parametric bootstrap).
The estimator error's size comes from the blocks by the method of moments (the realised-minus-
estimated variance beyond the sampling part; for regression on the log scale of the mean loss,
which is right-skewed); the interval's multipliers are the ``level`` quantiles of the blocks'
standardised errors, floored at the normal quantile (the blocks share
the holdout's distribution and overlap, so a narrower multiplier would be optimism). That is how
~``level`` of realised values fall inside this measured interval on data like the holdout's; the
floors below, chosen for batches months away, widen it beyond that even there.

**Away from the holdout** the estimator errs more: the monitored model also goes stale in ways
no feature shows (2013's seasonal winds), and the holdout, a few days, cannot measure that. So
the interval widens beyond what the holdout measured, by a floor that does not shrink with rows
(added in quadrature) and a slope times the batch's *excess distance* from the holdout: its
distance (:meth:`Support.distance`, the mean standardised move of its numerical columns) minus
the distance a contiguous block of the holdout with as many rows shows by chance (learnt at fit,
``chance_distance_``: an hour's mean moves ~0.7 sd from a week-long holdout's by its weather
alone, and that is no sign of a shift), never below 0.
- RMSE / MAE, on the log scale of the mean loss: the loss model errs mostly low away from the
  holdout, so the upper side gets the floor (``_SHIFT_FLOOR``, in quadrature) and
  ``_SHIFT_SLOPE`` x excess, the lower side a smaller floor (``_SHIFT_FLOOR_LOW``) and half the
  slope term.
- ROC AUC / accuracy / F1 (CBPE), on the logit scale of the metric (a bounded number: the
  interval never leaves [0, 1], and a move means more near 1 than near 0.5): both sides get the
  floor (``_CBPE_FLOOR``, in quadrature) and ``_CBPE_SLOPE`` x excess alike (:func:`widen_logit`),
  since a ranking can get better as well as worse under a covariate shift.
The five numbers cannot be measured on a holdout of a few days, which is why they are constants:
chosen on one 2013 champion's periods (weekly, daily and hourly: the narrowest interval with 90%
inside on each, ``benchmarks/estimate_widening.py``) and checked on three others. A batch
outside the holdout's support is still flagged unreliable (``Support``).

scikit-learn and lightgbm are imported inside the functions that use them (``driftwatch --help``
stays instant).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import pairwise
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.model.support import ChanceDistance, Support, is_categorical

REGRESSION_METRICS = ("rmse", "mae")
CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "f1")
_FOLDS = 5  # contiguous cross-fitting folds of the holdout
_BLOCK_SIZES = 6  # block sizes (geometric) on which the interval is calibrated
_BLOCKS_PER_SIZE = 60
_BOOT = 100  # parametric bootstrap draws for a classification batch's sampling noise
_BOOT_MAX_ROWS = 20_000  # bigger batches: bootstrap on a sample, sd scaled by sqrt(rows)
# The interval away from the holdout (module docstring), chosen on the January 2013 champion's
# weekly, daily and hourly periods (the narrowest with >= 90% inside on each,
# benchmarks/estimate_widening.py), checked on the March-April, June-July and September-October
# champions. RMSE, on the log scale of the mean squared error:
_SHIFT_FLOOR = 0.5  # upper side: sd that does not shrink with rows, in quadrature
_SHIFT_FLOOR_LOW = 0.2  # lower side: the same
_SHIFT_SLOPE = 0.25  # upper side: + slope x excess distance; lower side: - half of it
# CBPE, on the logit scale of the metric, both sides alike (widen_logit):
_CBPE_FLOOR = 0.4  # sd in logits that does not shrink with rows, in quadrature
_CBPE_SLOPE = 0.25  # logits per unit of excess distance
_CHANCE_SIZES = 8  # batch sizes (geometric, 10 rows to a quarter of the holdout) of the chance
# distance measured at fit (ChanceDistance): interpolated on log rows in between.


@dataclass(frozen=True)
class Estimate:
    """The estimated metric of the champion on one batch, with its interval."""

    metric: str
    value: float
    low: float
    high: float
    level: float
    rows: int
    reliable: bool  # False when the batch lies where the estimator never saw data
    reason: str | None  # why not reliable (one line naming the columns), else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def excludes(self, value: float) -> bool:
        """True when ``value`` lies outside the interval."""
        return value < self.low or value > self.high

    def line(self) -> str:
        """``estimated rmse 12.3 [11.1, 13.6] on 1,234 rows (reliable)``: the log line."""
        tag = "reliable" if self.reliable else f"unreliable: {self.reason}"
        return (
            f"estimated {self.metric} {_fmt(self.value)} [{_fmt(self.low)}, {_fmt(self.high)}]"
            f" on {self.rows:,} rows ({tag})"
        )


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.1f}"


# ---------------------------------------------------------------- interval calibration


def _block_starts(n_rows: int, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    last = n_rows - size
    if last + 1 <= count:
        return np.arange(last + 1)
    return np.sort(rng.choice(last + 1, size=count, replace=False))


def _block_sizes(n_rows: int) -> list[int]:
    """Geometric sizes from 30 rows (or a tenth of the holdout) to a quarter of the holdout."""
    top = max(n_rows // 4, 2)
    bottom = min(30, max(top // 10, 2))
    return sorted({round(float(s)) for s in np.geomspace(bottom, top, _BLOCK_SIZES)})


def _chance_sizes(n_rows: int) -> list[int]:
    """Batch sizes at which the chance distance is measured: geometric from 10 rows (a quiet
    hour's flights) to a quarter of the holdout."""
    top = max(n_rows // 4, 11)
    return sorted({round(float(s)) for s in np.geomspace(10, top, _CHANCE_SIZES)})


def _fit_chance(support: Support, X: pd.DataFrame, random_state: int) -> ChanceDistance:
    """How far contiguous holdout blocks move from the holdout by chance, per block size (its
    own random stream: the interval's blocks stay as they were)."""
    rng = np.random.default_rng([random_state, 1])
    n = len(X)
    return ChanceDistance().fit(
        support,
        X.reset_index(drop=True),
        _chance_sizes(n),
        lambda size: _block_starts(n, size, _BLOCKS_PER_SIZE, rng),
    )


def beyond_chance(chance: ChanceDistance | None, distance: float, rows: int) -> float:
    """A batch's distance from the holdout beyond what a holdout block of its rows shows by
    chance, never below 0 (an estimator stored before the chance was learnt: the whole distance)."""
    return max(0.0, distance - (chance.at(rows) if chance is not None else 0.0))


def widen_logit(
    value: Any,
    low: Any,
    high: Any,
    multiplier: float,
    excess: Any,
    floor: float,
    slope: float,
) -> tuple[Any, Any]:
    """A bounded metric's interval widened away from the holdout, on the logit scale (a move of
    0.05 means more near 1 than near 0.5, and the ends never leave [0, 1]): each side's distance
    from the estimate, in logits, gets ``multiplier * floor`` in quadrature and ``slope *
    excess`` added. Both sides alike: under a covariate shift a ranking can get better as well
    as worse (a batch spread over more weather separates delays more easily). Floats or arrays
    (the benchmark that chose the numbers evaluates every period at once)."""
    v, lo, hi, x = (np.asarray(a, dtype=float) for a in (value, low, high, excess))
    lv, a, b = _logit(v), _logit(lo), _logit(hi)
    add = slope * x
    with np.errstate(invalid="ignore", over="ignore"):
        down = np.hypot(lv - a, multiplier * floor) + add
        up = np.hypot(b - lv, multiplier * floor) + add
        keep = ~np.isfinite(v) | ((floor == 0) & (add == 0))
        new_lo = np.where(keep, lo, 1.0 / (1.0 + np.exp(down - lv)))
        new_hi = np.where(keep, hi, 1.0 / (1.0 + np.exp(-(lv + up))))
    if new_lo.ndim == 0:
        return float(new_lo), float(new_hi)
    return new_lo, new_hi


def log_bounds(
    sd: Any,
    excess: Any,
    multiplier_low: float,
    multiplier: float,
    half: float = 1.0,
    floor: float | None = None,
    floor_low: float | None = None,
    slope: float | None = None,
) -> tuple[Any, Any]:
    """A mean loss's interval on the log scale, widened away from the holdout (module
    docstring): (log low / estimate, log high / estimate). ``sd``: the holdout-measured sd on
    that scale; ``half``: 0.5 for a mean absolute error (it moves about half as much on the log
    scale as a mean squared error: |e| scales as sqrt(e^2)). Floats or arrays."""
    floor = _SHIFT_FLOOR if floor is None else floor
    floor_low = _SHIFT_FLOOR_LOW if floor_low is None else floor_low
    slope = _SHIFT_SLOPE if slope is None else slope
    away = half * slope * np.asarray(excess, dtype=float)
    low = multiplier_low * np.hypot(sd, half * floor_low) - away / 2
    high = multiplier * np.hypot(sd, half * floor) + away
    return low, high


def _calibrate_interval(
    realised: np.ndarray,
    estimated: np.ndarray,
    sampling_sd: np.ndarray,
    scale: np.ndarray,
    level: float,
) -> tuple[float, float]:
    """(relative model error c, multiplier q) from blocks: total sd = sqrt(s^2 + (c * scale)^2),
    interval = estimate -+ q * total sd. See the module docstring."""
    ok = np.isfinite(realised) & np.isfinite(estimated) & (scale > 0)
    r, e, s, k = realised[ok], estimated[ok], sampling_sd[ok], scale[ok]
    z_normal = NormalDist().inv_cdf(0.5 + level / 2)
    if len(r) < 10:
        return 0.0, z_normal
    c2 = max(0.0, float(np.mean(((r - e) ** 2 - s**2) / k**2)))
    total = np.sqrt(s**2 + c2 * k**2)
    total = np.where(total > 0, total, np.finfo(float).tiny)
    q = float(np.quantile(np.abs(r - e) / total, level))
    return float(np.sqrt(c2)), max(q, z_normal)


def _calibrate_log_interval(
    realised: np.ndarray, estimated: np.ndarray, sampling_rel: np.ndarray, level: float
) -> tuple[float, float, float]:
    """The same on the log scale, for a mean loss (a positive, right-skewed number: one bad row
    can double a block's mean squared error, so an interval symmetric on that scale reaches
    below zero): z = log(realised / estimated), total sd = sqrt(s_rel^2 + c^2), and the
    ``level`` interval's two multipliers from the blocks' quantiles of z / sd (each at least the
    normal quantile). Returns (c, lower multiplier <= 0, upper multiplier >= 0)."""
    ok = np.isfinite(realised) & np.isfinite(estimated) & (realised > 0) & (estimated > 0)
    z_normal = NormalDist().inv_cdf(0.5 + level / 2)
    if ok.sum() < 10:
        return 0.0, -z_normal, z_normal
    z = np.log(realised[ok] / estimated[ok])
    s = sampling_rel[ok]
    c2 = max(0.0, float(np.mean(z**2 - s**2)))
    total = np.sqrt(s**2 + c2)
    total = np.where(total > 0, total, np.finfo(float).tiny)
    lo, hi = np.quantile(z / total, [(1 - level) / 2, (1 + level) / 2])
    return float(np.sqrt(c2)), min(float(lo), -z_normal), max(float(hi), z_normal)


# ---------------------------------------------------------------- regression: DLE


@dataclass
class LossSums:
    """A regression estimate's sufficient statistics over some rows: their count, the sum and
    the sum of squares of the predicted losses, and per column the rows outside the holdout's
    support. All add up (``merge``)."""

    n: int = 0
    loss: float = 0.0
    loss2: float = 0.0
    outside: dict[str, int] = field(default_factory=dict)
    # Per numerical column, the sum and count of its values (how far the batch moved from the
    # holdout: Support.distance_from).
    columns: dict[str, tuple[float, int]] = field(default_factory=dict)

    def merge(self, other: LossSums) -> LossSums:
        outside = dict(self.outside)
        for c, k in other.outside.items():
            outside[c] = outside.get(c, 0) + k
        columns = dict(self.columns)
        for c, (total, count) in other.columns.items():
            was = columns.get(c, (0.0, 0))
            columns[c] = (was[0] + total, was[1] + count)
        return LossSums(
            self.n + other.n, self.loss + other.loss, self.loss2 + other.loss2, outside, columns
        )


class LossEstimator:
    """Direct Loss Estimation for a regression model (see the module docstring).

    ``fit`` takes the holdout rows in time order: the features as the model sees them, the true
    target and the predictions of the model trained without the holdout. ``params`` go to the
    loss model (:class:`driftwatch.model.loss_model.LightGBMLoss`, LightGBM's parameter names).
    """

    def __init__(
        self,
        metric: str = "rmse",
        level: float = 0.9,
        random_state: int = 0,
        max_outside_share: float = 0.2,
        **params: Any,
    ) -> None:
        if metric not in REGRESSION_METRICS:
            raise ValueError(f"LossEstimator metric {metric!r}: use one of {REGRESSION_METRICS}")
        if not 0 < level < 1:
            raise ValueError(f"level {level!r}: must lie between 0 and 1")
        self.metric = metric
        self.level = level
        self.random_state = random_state
        self.max_outside_share = max_outside_share
        self.params = params

    # The loss model: LightGBM at its defaults (31 leaves of at least 20 rows, learning rate
    # 0.1, 100 rounds, no L2, no early stopping), what NannyML's DLE fits; why LightGBM and not
    # scikit-learn's HistGradientBoosting, see driftwatch/model/loss_model.py. A more
    # regularised model (15 leaves of n/50 rows, rate 0.05, L2 1.0) was less accurate on the
    # 2013 benchmark and on the holdout itself, and no other setting tried beat the defaults on
    # the holdouts of four 2013 champions; ``params`` (LightGBM's names) override them.
    def _loss_model(self) -> Any:
        from driftwatch.model.loss_model import LightGBMLoss

        categorical = [i for i, is_cat in enumerate(self.categorical_mask_) if is_cat]
        return LightGBMLoss(categorical, random_state=self.random_state, **self.params)

    def _design(self, X: pd.DataFrame, y_pred: Any) -> np.ndarray:
        """The loss model's inputs: numerical columns as numbers, categories as codes of the
        holdout's categories (unseen ones missing), the monitored model's prediction last."""
        cols = []
        for col in self.columns_:
            values = X[col]
            if col in self.codes_:
                codes = self.codes_[col]
                cols.append(
                    values.astype(str).map(codes).where(values.notna()).to_numpy(dtype=float)
                )
            else:
                cols.append(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))
        cols.append(np.asarray(y_pred, dtype=float))
        return np.column_stack(cols)

    def _loss(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        err = y_true - y_pred
        return err**2 if self.metric == "rmse" else np.abs(err)

    def _to_metric(self, mean_loss: float) -> float:
        return (
            float(np.sqrt(max(mean_loss, 0.0)))
            if self.metric == "rmse"
            else float(max(mean_loss, 0.0))
        )

    def fit(self, X: pd.DataFrame, y_true: Any, y_pred: Any) -> LossEstimator:
        y = np.asarray(y_true, dtype=float)
        p = np.asarray(y_pred, dtype=float)
        if not (len(X) == len(y) == len(p)):
            raise ValueError(
                f"LossEstimator.fit: X {len(X)}, y_true {len(y)}, y_pred {len(p)} rows differ"
            )
        ok = np.isfinite(y) & np.isfinite(p)
        X, y, p = X.loc[ok].reset_index(drop=True), y[ok], p[ok]
        n = len(y)
        if n < 50:
            raise ValueError(
                f"LossEstimator.fit: {n} holdout rows with a label and a prediction (< 50)"
            )
        self.columns_ = [str(c) for c in X.columns]
        # The most frequent 254 categories of a column keep their own code, rarer ones share
        # "missing" (the loss model sees them as unknown): a bounded model for a column of ids,
        # and a category seen in only a few holdout rows teaches the loss model nothing.
        self.codes_: dict[str, dict[str, int]] = {}
        for col in self.columns_:
            if is_categorical(X[col]):
                top = X[col].dropna().astype(str).value_counts().index[:254]
                self.codes_[col] = {c: i for i, c in enumerate(sorted(top))}
        self.categorical_mask_ = [c in self.codes_ for c in self.columns_] + [False]
        self.support_ = Support().fit(X)
        self.chance_distance_ = _fit_chance(self.support_, X, self.random_state)
        Z = self._design(X, p)
        loss = self._loss(y, p)

        # Cross-fitting: each contiguous fold's loss predicted by a model that never saw it.
        oof = np.empty(n)
        edges = np.linspace(0, n, _FOLDS + 1).astype(int)
        for a, b in pairwise(edges):
            train = np.r_[0:a, b:n]
            model = self._loss_model().fit(Z[train], loss[train])
            oof[a:b] = model.predict(Z[a:b])
        oof = np.clip(oof, 0, None)
        self.loss_model_ = self._loss_model().fit(Z, loss)

        # Sampling noise: var(loss | x) ~ kappa * m(x)^2, kappa measured on the holdout.
        self.kappa_ = float(np.mean((loss - oof) ** 2) / max(np.mean(oof**2), np.finfo(float).tiny))
        rng = np.random.default_rng(self.random_state)
        realised, estimated, sampling = [], [], []
        for size in _block_sizes(n):
            for start in _block_starts(n, size, _BLOCKS_PER_SIZE, rng):
                sl = slice(start, start + size)
                realised.append(loss[sl].mean())
                m = oof[sl]
                estimated.append(m.mean())
                sampling.append(np.sqrt(self.kappa_ * np.sum(m**2)) / size)
        e = np.asarray(estimated)
        self.model_error_, self.multiplier_low_, self.multiplier_ = _calibrate_log_interval(
            np.asarray(realised), e, np.asarray(sampling) / np.where(e > 0, e, 1), self.level
        )
        self.holdout_rows_ = n
        self.holdout_value_ = self._to_metric(float(loss.mean()))
        return self

    def estimate(self, X: pd.DataFrame, y_pred: Any) -> Estimate:
        """The expected metric of the model on a batch (features as the model sees them, and
        its predictions), with the interval and the reliability verdict."""
        return self.from_sums(self.sums(X, y_pred))

    def sums(self, X: pd.DataFrame, y_pred: Any) -> LossSums:
        """What the estimate needs from some rows, as sums that add up across partitions: a
        big batch's workers each give theirs, and :meth:`from_sums` of the merged sums is the
        estimate on the whole batch."""
        p = np.asarray(y_pred, dtype=float)
        if len(X) != len(p):
            raise ValueError(f"LossEstimator.estimate: X {len(X)} rows, y_pred {len(p)}")
        keep = np.isfinite(p)
        X, p = X.loc[keep], p[keep]
        n = len(p)
        if n == 0:
            return LossSums()
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ValueError(f"LossEstimator.estimate: batch lacks column(s) {missing}")
        m = np.clip(self.loss_model_.predict(self._design(X, p)), 0, None)
        outside = {c: round(share * n) for c, share in self.support_.outside(X).items()}
        columns = self.support_.column_sums(X)
        return LossSums(n, float(m.sum()), float(np.sum(m**2)), outside, columns)

    def from_sums(self, sums: LossSums) -> Estimate:
        n = sums.n
        if n == 0:
            raise ValueError("LossEstimator.estimate: no rows with a prediction")
        mean = sums.loss / n
        sampling = float(np.sqrt(self.kappa_ * sums.loss2) / n)
        # On the log scale of the mean loss (see _calibrate_log_interval), widened away from
        # the holdout (module docstring).
        sd = float(np.hypot(sampling / mean if mean > 0 else 0.0, self.model_error_))
        # The widening was chosen for the mean squared error; a mean absolute error moves about
        # half as much on the log scale (|e| scales as sqrt(e^2)).
        half = 1.0 if self.metric == "rmse" else 0.5
        chance = getattr(self, "chance_distance_", None)
        distance = beyond_chance(chance, self.support_.distance_from(sums.columns), n)
        low, high = log_bounds(sd, distance, self.multiplier_low_, self.multiplier_, half)
        shares = {c: k / n for c, k in sums.outside.items()}
        reason = self.support_.problem_in(shares, self.max_outside_share)
        return Estimate(
            metric=self.metric,
            value=self._to_metric(mean),
            low=self._to_metric(mean * float(np.exp(low))),
            high=self._to_metric(mean * float(np.exp(high))),
            level=self.level,
            rows=n,
            reliable=reason is None,
            reason=reason,
        )

    def sampling_part(self, sums: LossSums) -> float:
        """The batch's sampling sd on the interval's scale (the log of the mean loss): the
        part no calibration on served periods may narrow (``driftwatch.model.served_calibration``)."""
        return float(np.sqrt(self.kappa_ * sums.loss2) / sums.loss) if sums.loss > 0 else 0.0


# ---------------------------------------------------------------- classification: CBPE


class _Calibrator:
    """One score -> P(positive) map: isotonic regression when the holdout has enough of both
    classes (no shape assumed; gradient-boosted scores are rarely a clean sigmoid), Platt scaling
    (a logistic fit on the score's logit) below that, where isotonic steps would overfit."""

    def __init__(self, min_isotonic: int = 200) -> None:
        self.min_isotonic = min_isotonic

    def fit(self, score: np.ndarray, y: np.ndarray) -> _Calibrator:
        positives = int(y.sum())
        self.constant_: float | None = None
        if positives == 0 or positives == len(y):
            self.constant_ = float(positives > 0)
            return self
        self.method_ = (
            "isotonic" if min(positives, len(y) - positives) >= self.min_isotonic else "platt"
        )
        if self.method_ == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            self.map_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, y)
        else:
            from sklearn.linear_model import LogisticRegression

            self.map_ = LogisticRegression(C=1e6).fit(_logit(score)[:, None], y)
        return self

    def predict(self, score: np.ndarray) -> np.ndarray:
        if self.constant_ is not None:
            return np.full(len(score), self.constant_)
        if self.method_ == "isotonic":
            return np.asarray(self.map_.predict(score), dtype=float)
        return self.map_.predict_proba(_logit(score)[:, None])[:, 1]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _auc(score: np.ndarray, W: np.ndarray) -> np.ndarray:
    """ROC AUC of ``score`` for each row of label weights ``W`` (draws x rows; a weight is the
    probability that the row is positive, 0/1 for realised labels): expected TP and FP counts at
    every distinct threshold, TPR over FPR integrated by trapezoids (ties count half, as in
    scikit-learn). NaN where one class has zero weight."""
    order = np.argsort(-score, kind="stable")
    s = score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    sizes = np.diff(np.r_[starts, len(s)])
    wg = np.add.reduceat(W[:, order], starts, axis=1)
    tp = np.cumsum(wg, axis=1)
    fp = np.cumsum(sizes[None, :] - wg, axis=1)
    pos, neg = tp[:, -1:], fp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.c_[np.zeros(len(W)), tp / pos]
        fpr = np.c_[np.zeros(len(W)), fp / neg]
        auc = np.sum((fpr[:, 1:] - fpr[:, :-1]) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)
    return np.where((pos[:, 0] > 0) & (neg[:, 0] > 0), auc, np.nan)


def _binary_metric(metric: str, score: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The metric for each row of label weights ``W`` (draws x rows); predicted label =
    score >= 0.5, as :func:`driftwatch.model.quality.score_predictions` has it."""
    if metric == "roc_auc":
        return _auc(score, W)
    pred = score >= 0.5
    tp = W[:, pred].sum(axis=1)
    fn = W[:, ~pred].sum(axis=1)
    if metric == "accuracy":
        return (tp + (~pred).sum() - fn) / len(score)
    fp = pred.sum() - tp
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)


def _multiclass_metric(metric: str, score: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The metric for each draw of class weights ``W`` (draws x rows x classes); predicted
    class = argmax score; F1 and ROC AUC one-vs-rest, macro-averaged over the classes."""
    pred = score.argmax(axis=1)
    n, k = score.shape
    if metric == "accuracy":
        return W[:, np.arange(n), pred].mean(axis=1)
    per_class = []
    for j in range(k):
        if metric == "roc_auc":
            per_class.append(_auc(score[:, j], W[:, :, j]))
        else:
            per_class.append(_binary_metric("f1", (pred == j).astype(float), W[:, :, j]))
    stacked = np.vstack(per_class)
    with np.errstate(invalid="ignore"):
        return np.nanmean(stacked, axis=0) if np.isfinite(stacked).any() else stacked[0]


class ConfidenceEstimator:
    """Confidence-Based Performance Estimation for a classifier (see the module docstring).

    ``proba``: P(class 1) a row (binary; a two-column array is read by ``classes``) or a rows x
    classes array (multiclass, columns in ``classes`` order). ``fit`` calibrates the scores on
    the holdout (rows in time order, scored by the model trained without the holdout); pass the
    holdout's features as ``X`` to be warned of batches outside their support.
    """

    def __init__(
        self,
        metric: str = "roc_auc",
        level: float = 0.9,
        classes: Any = None,
        random_state: int = 0,
        max_outside_share: float = 0.2,
    ) -> None:
        if metric not in CLASSIFICATION_METRICS:
            raise ValueError(
                f"ConfidenceEstimator metric {metric!r}: use one of {CLASSIFICATION_METRICS}"
            )
        if not 0 < level < 1:
            raise ValueError(f"level {level!r}: must lie between 0 and 1")
        self.metric = metric
        self.level = level
        self.classes = classes
        self.random_state = random_state
        self.max_outside_share = max_outside_share

    def _scores(self, proba: Any) -> np.ndarray:
        """Binary: a 1-D P(class 1); multiclass: rows x classes."""
        a = np.asarray(proba, dtype=float)
        if a.ndim == 2 and a.shape[1] == 2:
            classes = list(self.classes) if self.classes is not None else [0, 1]
            return a[:, classes.index(1) if 1 in classes else 1]
        if a.ndim == 2 and a.shape[1] == 1:
            return a[:, 0]
        return a

    def _calibrated(self, score: np.ndarray, maps: list[_Calibrator]) -> np.ndarray:
        if score.ndim == 1:
            return maps[0].predict(score)
        c = np.column_stack([m.predict(score[:, j]) for j, m in enumerate(maps)])
        total = c.sum(axis=1, keepdims=True)
        # Rows where every one-vs-rest map says 0 keep their raw scores (no information lost).
        return np.where(total > 0, c / np.where(total > 0, total, 1), score)

    def _fit_maps(self, score: np.ndarray, y: np.ndarray) -> list[_Calibrator]:
        if score.ndim == 1:
            return [_Calibrator().fit(score, (y == 1).astype(float))]
        return [
            _Calibrator().fit(score[:, j], (y == j).astype(float)) for j in range(score.shape[1])
        ]

    def _metric(self, score: np.ndarray, W: np.ndarray) -> np.ndarray:
        return (_binary_metric if score.ndim == 1 else _multiclass_metric)(self.metric, score, W)

    def _draws(self, c: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
        """Labels drawn from the calibrated probabilities: one-hot for multiclass."""
        u = rng.random((draws, len(c)))
        if c.ndim == 1:
            return (u < c[None, :]).astype(float)
        cum = np.cumsum(c, axis=1)
        idx = np.minimum((u[:, :, None] > cum[None, :, :]).sum(axis=2), c.shape[1] - 1)
        return np.eye(c.shape[1])[idx]

    def _sampling_sd(
        self, score: np.ndarray, c: np.ndarray, draws: int, rng: np.random.Generator
    ) -> float:
        n = len(c)
        factor = 1.0
        if n > _BOOT_MAX_ROWS:
            pick = np.sort(rng.choice(n, _BOOT_MAX_ROWS, replace=False))
            score, c, factor = score[pick], c[pick], float(np.sqrt(_BOOT_MAX_ROWS / n))
        values = self._metric(score, self._draws(c, draws, rng))
        values = values[np.isfinite(values)]
        return float(np.std(values, ddof=1)) * factor if len(values) > 1 else 0.0

    def _weights(self, y: np.ndarray, k: int | None) -> np.ndarray:
        return y[None, :].astype(float) if k is None else np.eye(k)[y][None, :, :]

    def fit(self, y_true: Any, proba: Any, X: pd.DataFrame | None = None) -> ConfidenceEstimator:
        score = self._scores(proba)
        y_raw = np.asarray(y_true)
        if len(y_raw) != len(score):
            raise ValueError(
                f"ConfidenceEstimator.fit: y_true {len(y_raw)} rows, proba {len(score)}"
            )
        if score.ndim == 1:
            y, k = y_raw.astype(int), None
        else:
            classes = (
                list(self.classes) if self.classes is not None else list(range(score.shape[1]))
            )
            if len(classes) != score.shape[1]:
                raise ValueError(
                    f"ConfidenceEstimator.fit: {score.shape[1]} probability columns, classes {classes}"
                )
            lookup = {c: i for i, c in enumerate(classes)}
            unknown = sorted({v for v in y_raw.tolist() if v not in lookup}, key=str)
            if unknown:
                raise ValueError(
                    f"ConfidenceEstimator.fit: labels {unknown[:5]} not in classes {classes}"
                )
            y, k = np.array([lookup[v] for v in y_raw.tolist()], dtype=int), score.shape[1]
        n = len(y)
        if n < 50:
            raise ValueError(f"ConfidenceEstimator.fit: {n} holdout rows (< 50)")
        self.support_ = Support().fit(X) if X is not None else Support()
        self.chance_distance_ = (
            _fit_chance(self.support_, X, self.random_state) if X is not None else ChanceDistance()
        )
        self.calibrators_ = self._fit_maps(score, y)
        self.calibration_ = sorted({getattr(m, "method_", "constant") for m in self.calibrators_})

        # Cross-fitting: each contiguous fold's scores calibrated by maps that never saw it.
        c_oof = np.empty_like(score)
        edges = np.linspace(0, n, _FOLDS + 1).astype(int)
        for a, b in pairwise(edges):
            train = np.r_[0:a, b:n]
            c_oof[a:b] = self._calibrated(score[a:b], self._fit_maps(score[train], y[train]))
        rng = np.random.default_rng(self.random_state)
        realised, estimated, sampling = [], [], []
        for size in _block_sizes(n):
            for start in _block_starts(n, size, _BLOCKS_PER_SIZE // 2, rng):
                sl = slice(start, start + size)
                realised.append(self._metric(score[sl], self._weights(y[sl], k))[0])
                estimated.append(self._metric(score[sl], c_oof[sl][None])[0])
                sampling.append(self._sampling_sd(score[sl], c_oof[sl], _BOOT // 2, rng))
        r = np.asarray(realised)
        self.model_error_, self.multiplier_ = _calibrate_interval(
            r, np.asarray(estimated), np.asarray(sampling), np.ones(len(r)), self.level
        )
        self.holdout_rows_ = n
        self.holdout_value_ = float(self._metric(score, self._weights(y, k))[0])
        return self

    def estimate(self, proba: Any, X: pd.DataFrame | None = None) -> Estimate:
        """The expected metric on a batch from the model's scores (and, for the support check,
        the batch's features)."""
        return self.estimate_with_sampling(proba, X)[0]

    def estimate_with_sampling(
        self, proba: Any, X: pd.DataFrame | None = None
    ) -> tuple[Estimate, float]:
        """:meth:`estimate` and the batch's sampling sd of the metric (its bootstrap): the part
        no calibration on served periods may narrow (``driftwatch.model.served_calibration``),
        returned so that it is not drawn a second time."""
        score = self._scores(proba)
        n = len(score)
        if n == 0:
            raise ValueError("ConfidenceEstimator.estimate: no rows")
        c = self._calibrated(score, self.calibrators_)
        value = float(self._metric(score, c[None])[0])
        rng = np.random.default_rng(self.random_state)
        sampling = self._sampling_sd(score, c, _BOOT, rng)
        half = self.multiplier_ * float(np.hypot(sampling, self.model_error_))
        reason = self.support_.problem(X, self.max_outside_share)
        if not np.isfinite(value):
            reason = reason or f"{self.metric} undefined: the calibrated scores give one class only"
        low = float(max(0.0, value - half)) if np.isfinite(value) else value
        high = float(min(1.0, value + half)) if np.isfinite(value) else value
        # Away from the holdout (module docstring): the excess distance of the batch's features.
        excess = (
            0.0
            if X is None
            else beyond_chance(
                getattr(self, "chance_distance_", None), self.support_.distance(X), n
            )
        )
        low, high = widen_logit(
            value, low, high, self.multiplier_, excess, _CBPE_FLOOR, _CBPE_SLOPE
        )
        estimate = Estimate(
            metric=self.metric,
            value=value,
            low=low,
            high=high,
            level=self.level,
            rows=n,
            reliable=reason is None,
            reason=reason,
        )
        return estimate, sampling


def fit_estimator(
    task: str, metric: str, X: pd.DataFrame, y_true: Any, y_pred_or_proba: Any, **kw: Any
) -> LossEstimator | ConfidenceEstimator:
    """The estimator for a task, fitted: ``LossEstimator`` for regression (``y_pred``),
    ``ConfidenceEstimator`` for binary / multiclass (``proba``). ``kw`` go to the constructor."""
    if task == "regression":
        return LossEstimator(metric, **kw).fit(X, y_true, y_pred_or_proba)
    if task in ("binary", "multiclass", "classification"):
        return ConfidenceEstimator(metric, **kw).fit(y_true, y_pred_or_proba, X=X)
    raise ValueError(f"fit_estimator: unknown task {task!r} (regression, binary, multiclass)")
