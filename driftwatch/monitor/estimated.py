"""The champion's estimated quality: its estimator fitted once at promotion, asked every tick.

The estimator (:mod:`driftwatch.model.estimate`) is fitted on the holdout with the predictions
of the model trained *without* the holdout, the challenger as it was scored: the model that is
deployed is refit on the whole window (``retrain.refit``), so its own errors on the holdout are
in-sample and would teach the loss model (or the calibration) too small an error. A champion
promoted before estimators were stored gets one fitted here from its training window (its
reference), once, by training that challenger again (same rows, same seed).
"""

from __future__ import annotations

import logging
from types import EllipsisType
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.errors import NotEnoughData
from driftwatch.model.estimators import features, predict, predict_proba, target, train
from driftwatch.model.quality import EstimatedQuality, assess_estimate, no_estimate
from driftwatch.model.schema import labelled
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.window import recency_weights, split_holdout

log = logging.getLogger("driftwatch.monitor")


def fit_estimator_for(plan: Plan, scorer: Any, holdout: pd.DataFrame) -> Any | None:
    """The estimator of a champion, fitted on ``holdout`` (time order) with the predictions of
    ``scorer``, the model trained without it; None when estimates are off or the holdout is too
    small to fit one (said in the log; the ticks then say "no estimate")."""
    from driftwatch.model.estimate import ConfidenceEstimator, LossEstimator

    s = plan.settings
    spec, opts = s.model, s.quality.estimate
    if not opts.enabled:
        return None
    rows = labelled(holdout, spec)
    kw: dict[str, Any] = {
        "level": opts.level,
        "random_state": s.retrain.random_state,
        "max_outside_share": opts.max_outside_share,
    }
    try:
        X, y = features(rows, spec), target(rows, spec).to_numpy()
        if spec.task == "regression":
            return LossEstimator(plan.metric, **kw).fit(X, y, predict(scorer, rows, spec))
        if spec.task == "binary":
            y = y.astype(int)
            return ConfidenceEstimator(plan.metric, **kw).fit(y, predict(scorer, rows, spec), X=X)
        found = predict_proba(scorer, rows, spec)
        if found is None:
            log.warning("no estimator: the model has no predict_proba")
            return None
        proba, classes = found
        est = ConfidenceEstimator(plan.metric, classes=list(classes.tolist()), **kw)
        return est.fit(y.astype(int), proba, X=X)
    except ValueError as exc:
        log.warning("no estimator for this champion: %s", exc)
        return None


def refit_estimator(plan: Plan, window: pd.DataFrame, champion_model: Any) -> Any | None:
    """An estimator for a champion that has none stored, from its training window: its
    holdout, scored by the challenger trained again on the rows before it (``retrain.refit``;
    without refit the champion is that challenger)."""
    s = plan.settings
    if not s.quality.estimate.enabled:
        return None
    try:
        train_rows, holdout = split_holdout(window, s)
    except NotEnoughData as exc:
        log.warning("no estimator for this champion: %s", exc)
        return None
    scorer = champion_model
    if s.retrain.refit:
        scorer = train(
            train_rows,
            s.model,
            random_state=s.retrain.random_state,
            sample_weight=recency_weights(train_rows, s),  # as challenge() trained it
        )
    return fit_estimator_for(plan, scorer, holdout)


def fits(plan: Plan, estimator: Any) -> bool:
    """Whether a stored estimator answers the configured question (metric, level)."""
    opts = plan.settings.quality.estimate
    return (
        estimator is not None
        and getattr(estimator, "metric", None) == plan.metric
        and getattr(estimator, "level", None) == opts.level
    )


def is_current(estimator: Any) -> bool:
    """Whether a stored estimator is of this version's kind; one that is not is fitted again
    where its champion's window is at hand (else still used, as it behaved before: its whole
    distance from the holdout widens the interval). Not current: a loss estimator stored before
    the LightGBM loss model (no holdout centres: no widening away from the holdout), and any
    estimator stored before the chance distance was learnt (``chance_distance_``: a short batch
    would be widened for the distance its rows show by chance)."""
    from driftwatch.model.estimate import LossEstimator
    from driftwatch.model.loss_model import LightGBMLoss

    if estimator is None or not hasattr(estimator, "chance_distance_"):
        return False
    return not isinstance(estimator, LossEstimator) or (
        hasattr(getattr(estimator, "support_", None), "centres_")
        and isinstance(getattr(estimator, "loss_model_", None), LightGBMLoss)
    )


def estimate_quality(
    plan: Plan,
    estimator: Any,
    model: Any,
    frame: pd.DataFrame,
    predictions: pd.Series,
    why: str,
    baseline: float | None | EllipsisType = ...,
    calibration: Any = None,
) -> EstimatedQuality:
    """The champion's estimated metric on the batch and its verdict against the estimator's
    baseline: the realised metric on the holdout it was fitted on (the same predictions it
    learnt the errors of, so a quiet batch estimates it, not a better or worse number).
    ``baseline``: another one (a segment's, on its rows of the holdout). ``calibration``: a
    :class:`~driftwatch.model.served_calibration.ServedCalibration` fitted on the champion's
    served periods, which rescales the interval (the verdict uses the rescaled one)."""
    metric = plan.metric
    if estimator is None:
        return no_estimate(metric, why)
    keep = predictions.notna().to_numpy()
    rows, p = frame[keep], predictions.to_numpy()[keep]
    if not len(rows):
        return no_estimate(metric, "no row has a prediction")
    if hasattr(estimator, "max_outside_share"):
        # A judgement setting, not learnt state: the configured share applies to an estimator
        # stored before it changed (refitting every champion for it would be wasted work).
        estimator.max_outside_share = plan.settings.quality.estimate.max_outside_share
    try:
        est, floor = estimate_rows(plan, estimator, model, rows, p, floor=calibration is not None)
    except ValueError as exc:  # a batch the estimator cannot read: said, not fatal
        return no_estimate(metric, str(exc))
    if calibration is not None:
        est = calibration.adjust(est, floor)
    if baseline is ...:
        baseline = getattr(estimator, "holdout_value_", None)
    return calibrated(assess_estimate(est, baseline, plan.settings.quality), calibration)


def estimate_rows(
    plan: Plan, estimator: Any, model: Any, rows: pd.DataFrame, p: np.ndarray, floor: bool = False
) -> tuple[Any, float]:
    """The estimator's :class:`~driftwatch.model.estimate.Estimate` on ``rows`` (each with the
    champion's prediction ``p``) and, with ``floor``, the batch's sampling sd on the interval's
    scale (what a served calibration may not narrow below; else 0). Raises ValueError when the
    estimator cannot read the rows."""
    spec = plan.settings.model
    X = features(rows, spec)
    if spec.task == "regression":
        sums = estimator.sums(X, p)
        est = estimator.from_sums(sums)
        return est, (estimator.sampling_part(sums) if floor else 0.0)
    if spec.task == "binary":
        proba = np.asarray(p, dtype=float)
    else:
        found = predict_proba(model, rows, spec)
        if found is None:
            raise ValueError("the model has no predict_proba")
        proba = found[0]
    est, sampling = estimator.estimate_with_sampling(proba, X=X)
    return est, (sampling if floor else 0.0)


def calibrated(e: EstimatedQuality, calibration: Any) -> EstimatedQuality:
    """The verdict with what the served calibration did to its interval (its note, the number
    of periods and the factor), when there was one."""
    if calibration is None or e.value is None:
        return e
    return e.model_copy(
        update={
            "reason": f"{e.reason}; {calibration.note}",
            "served_periods": calibration.calibrated_on,
            "interval_factor": calibration.applied_factor_ if calibration.adjusted else None,
        }
    )


def estimate_summarised(
    plan: Plan,
    estimator: Any,
    frame: pd.DataFrame,
    predictions: pd.Series,
    sums: Any,
    why: str,
    calibration: Any = None,
) -> EstimatedQuality:
    """:func:`estimate_quality` on a summarised batch: the big files' estimate sums (their
    workers', :meth:`LossEstimator.sums`) merged with the rows read here. A classification
    estimate (CBPE) needs every row's score together: none, said so."""
    spec, metric = plan.settings.model, plan.metric
    if estimator is None:
        return no_estimate(metric, why)
    if sums is None or not hasattr(estimator, "from_sums"):
        return no_estimate(metric, "no estimate on a summarised batch (only regression's adds up)")
    estimator.max_outside_share = plan.settings.quality.estimate.max_outside_share
    try:
        if len(frame):
            keep = predictions.notna().to_numpy()
            here = estimator.sums(features(frame[keep], spec), predictions.to_numpy()[keep])
            sums = here.merge(sums)
        est = estimator.from_sums(sums)
        if calibration is not None:
            est = calibration.adjust(est, estimator.sampling_part(sums))
    except ValueError as exc:
        return no_estimate(metric, str(exc))
    baseline = getattr(estimator, "holdout_value_", None)
    return calibrated(assess_estimate(est, baseline, plan.settings.quality), calibration)


def estimated_metrics(e: EstimatedQuality | None) -> dict[str, float]:
    """MLflow metrics of an estimate: ``estimated_<metric>`` and its ``_low`` / ``_high``; with
    the served calibration, ``estimated_served_periods`` and ``estimated_interval_factor``."""
    if e is None or e.value is None or not np.isfinite(e.value):
        return {}
    out = {f"estimated_{e.metric}": float(e.value), "estimated_reliable": float(e.reliable)}
    if e.low is not None and e.high is not None:
        out[f"estimated_{e.metric}_low"] = float(e.low)
        out[f"estimated_{e.metric}_high"] = float(e.high)
    if e.served_periods is not None:  # quality.estimate.served: what calibrated the interval
        out["estimated_served_periods"] = float(e.served_periods)
        out["estimated_interval_factor"] = float(
            1.0 if e.interval_factor is None else e.interval_factor
        )
    return out
