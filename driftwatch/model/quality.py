"""Model quality on labelled rows, and whether it has degraded beyond the configured tolerance.

scikit-learn (~1 s to import, with scipy.stats) is imported by the functions that score a model,
not here: ``QualityResult`` is part of every run's result, and ``driftwatch check`` renders
results without ever touching a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from driftwatch.config import ModelSettings, QualitySettings
from driftwatch.model.schema import labelled

LOWER_IS_BETTER = {"rmse": True, "mae": True, "accuracy": False, "f1": False, "roc_auc": False}


def score(model: Any, frame: pd.DataFrame, spec: ModelSettings) -> dict[str, float]:
    """All metrics of the task on the labelled rows of ``frame`` (empty if there are none)."""
    from sklearn import metrics as skm

    from driftwatch.model.estimators import predict, predict_proba, target

    rows = labelled(frame, spec)
    if rows.empty:
        return {}
    y = target(rows, spec).to_numpy()
    out = score_predictions(y, predict(model, rows, spec), spec)
    if spec.task == "multiclass" and (found := predict_proba(model, rows, spec)) is not None:
        proba, classes = found
        # One-vs-rest, macro: undefined when a class the model knows is missing from the rows
        # (or the rows hold a class it never saw); reported missing then, as for binary.
        if set(np.unique(y.astype(int))) == set(classes.astype(int)) and len(classes) > 2:
            out["roc_auc"] = float(
                skm.roc_auc_score(y.astype(int), proba, multi_class="ovr", labels=classes)
            )
    return out


def score_predictions(y: np.ndarray, p: np.ndarray, spec: ModelSettings) -> dict[str, float]:
    """The task's metrics from labels and predictions made earlier (history keeps both)."""
    if len(y) == 0:
        return {}
    from sklearn import metrics as skm

    if spec.task == "regression":
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
            "mae": float(skm.mean_absolute_error(y, p)),
        }
    y = y.astype(int)
    if spec.task == "multiclass":  # p holds the predicted classes
        labels = np.asarray(p).astype(int)
        return {
            "accuracy": float(skm.accuracy_score(y, labels)),
            "f1": float(skm.f1_score(y, labels, average="macro", zero_division=0)),
        }
    labels = (p >= 0.5).astype(int)
    out = {
        "accuracy": float(skm.accuracy_score(y, labels)),
        "f1": float(skm.f1_score(y, labels, zero_division=0)),
    }
    # ROC AUC is undefined when the batch holds one class only; report it missing, not 0.5.
    if len(np.unique(y)) == 2:
        out["roc_auc"] = float(skm.roc_auc_score(y, p))
    return out


def better(metric: str, challenger: float, champion: float, margin: float) -> bool:
    """True when the challenger beats the champion by at least ``margin`` (relative)."""
    if LOWER_IS_BETTER[metric]:
        return challenger < champion * (1 - margin)
    return challenger > champion * (1 + margin)


class QualityResult(BaseModel):
    """The champion's quality on a batch and the verdict against its baseline (frozen)."""

    model_config = ConfigDict(frozen=True)

    metric: str
    value: float | None
    baseline: float | None
    labelled_rows: int
    degraded: bool | None
    reason: str
    metrics: dict[str, float]
    # model.segments: the segment judged (``origin=EWR``); None for the whole batch.
    segment: str | None = None
    # A segment's verdict is also a significance test (see driftwatch.model.significance):
    # its one-sided p-value and the share of the false-alarm rate it was held to.
    p_value: float | None = None
    alpha: float | None = None

    def line(self) -> str:
        """``quality: rmse ...`` or ``quality segment origin=EWR: rmse ...``."""
        where = f" segment {self.segment}" if self.segment else ""
        return f"quality{where}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def assess(
    metrics: dict[str, float],
    baseline: dict[str, float],
    labelled_rows: int,
    metric: str,
    settings: QualitySettings,
) -> QualityResult:
    """Compare the champion's metric now with its baseline from training time.

    A batch with too few labels gives no verdict (degraded=None): missing labels are not a
    quality failure, they are the normal state of a fresh batch.
    """
    value, base = metrics.get(metric), baseline.get(metric)
    if labelled_rows < settings.min_labelled_rows or value is None:
        return QualityResult(
            metric=metric,
            value=value,
            baseline=base,
            labelled_rows=labelled_rows,
            degraded=None,
            reason=f"no quality verdict: {labelled_rows} labelled rows (< {settings.min_labelled_rows})"
            if labelled_rows < settings.min_labelled_rows
            else f"no quality verdict: {metric} undefined on this batch",
            metrics=metrics,
        )
    if base is None:
        return QualityResult(
            metric=metric,
            value=value,
            baseline=None,
            labelled_rows=labelled_rows,
            degraded=None,
            reason="no baseline for the champion",
            metrics=metrics,
        )
    worse_by, limit = _worse_by(metric, value, base, settings)
    degraded = worse_by > limit
    rel = worse_by / abs(base) if base else float("inf")
    word = "degraded" if degraded else "within tolerance"
    how = f"+{rel:.1%} worse" if rel >= 0 else f"{-rel:.1%} better"
    reason = f"{metric} {value:.4g} vs baseline {base:.4g} ({how}; {word}, limit {limit:.4g})"
    return QualityResult(
        metric=metric,
        value=value,
        baseline=base,
        labelled_rows=labelled_rows,
        degraded=degraded,
        reason=reason,
        metrics=metrics,
    )


def worst_allowed(metric: str, base: float, settings: QualitySettings) -> float:
    """The worst value of ``metric`` still within tolerance of the baseline ``base``."""
    _, limit = _worse_by(metric, base, base, settings)
    return base + limit if LOWER_IS_BETTER[metric] else base - limit


def _worse_by(
    metric: str, value: float, base: float, settings: QualitySettings
) -> tuple[float, float]:
    """How much worse than the baseline ``value`` is, and the tolerance it may be worse by."""
    worse_by = (value - base) if LOWER_IS_BETTER[metric] else (base - value)
    limits = []
    if settings.relative_tolerance is not None:
        limits.append(abs(base) * settings.relative_tolerance)
    if settings.absolute_tolerance is not None:
        limits.append(settings.absolute_tolerance)
    return worse_by, min(limits) if limits else 0.0


class EstimatedQuality(BaseModel):
    """The champion's estimated metric on a batch (no labels needed) and its verdict (frozen).

    ``degraded`` is True only when the estimate is worse than the baseline beyond tolerance
    *and* its interval excludes the baseline *and* it is reliable; None when there is no
    verdict (no estimator, unreliable, no baseline)."""

    model_config = ConfigDict(frozen=True)

    metric: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    level: float | None = None
    rows: int = 0
    reliable: bool = False
    baseline: float | None = None
    degraded: bool | None = None
    reason: str
    # model.segments: the segment estimated (``origin=EWR``); None for the whole batch.
    segment: str | None = None
    # quality.estimate.served: the champion's labelled served periods the interval was
    # calibrated on (None: not asked), and the factor applied to its half-widths (None: not
    # adjusted, fewer periods than quality.estimate.served.min_periods; 1 while a narrowing
    # waits for quality.estimate.served.narrow_after periods).
    served_periods: int | None = None
    interval_factor: float | None = None

    def line(self) -> str:
        """``estimated rmse 12.3 [11.1, 13.6] on 1,234 rows (reliable)``, or why there is none
        (``estimated segment origin=EWR rmse ...`` for a segment)."""
        where = f" segment {self.segment}" if self.segment else ""
        if self.value is None:
            return f"estimated{where} {self.metric}: {self.reason}"
        tag = "reliable" if self.reliable else "unreliable"
        return (
            f"estimated{where} {self.metric} {_fmt(self.value)} [{_fmt(self.low)}, {_fmt(self.high)}]"
            f" on {self.rows:,} rows ({tag}): {self.reason}"
        )


def _fmt(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.1f}"


def no_estimate(metric: str, why: str) -> EstimatedQuality:
    return EstimatedQuality(metric=metric, reason=f"no estimate: {why}")


def assess_estimate(
    estimate: Any, baseline: float | None, settings: QualitySettings
) -> EstimatedQuality:
    """The verdict on an :class:`driftwatch.model.estimate.Estimate` against ``baseline``."""
    e = estimate
    base = {
        "metric": e.metric,
        "value": e.value,
        "low": e.low,
        "high": e.high,
        "level": e.level,
        "rows": e.rows,
        "reliable": e.reliable,
        "baseline": baseline,
    }
    if not e.reliable:
        return EstimatedQuality(**base, degraded=None, reason=f"no verdict: {e.reason}")
    if baseline is None or not np.isfinite(e.value):
        return EstimatedQuality(**base, degraded=None, reason="no verdict: no baseline")
    worse_by, limit = _worse_by(e.metric, e.value, baseline, settings)
    excludes = e.low > baseline if LOWER_IS_BETTER[e.metric] else e.high < baseline
    degraded = bool(worse_by > limit and excludes)
    rel = worse_by / abs(baseline) if baseline else float("inf")
    if degraded:
        word = "degraded"
    elif worse_by > limit:
        word = f"within tolerance: the {e.level:.0%} interval holds the baseline"
    else:
        word = "within tolerance"
    how = f"+{rel:.1%} worse" if rel >= 0 else f"{-rel:.1%} better"
    reason = f"vs baseline {baseline:.4g} ({how}; {word}, limit {limit:.4g})"
    return EstimatedQuality(**base, degraded=degraded, reason=reason)
