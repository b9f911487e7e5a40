"""The monitor use case: batch -> findings -> decision, and training data -> challenger -> verdict.

Two pure steps (``assess`` and ``challenge``) hold every decision; ``MonitorCycle`` composes them
with the ports (:mod:`driftwatch.monitor.ports`) into one tick. The Prefect flows, the daemon,
the backtest and the tests all run ``MonitorCycle``: the flows pass a step runner that makes each
step a Prefect task (and the retrain a child flow run), the backtest passes in-memory ports. So
what the backtest promises is what the daemon does, and a policy change is made once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.config import ModelSettings
from driftwatch.engine.blocks import BlockDetector, BlockProfile, BlockThresholds, span_label
from driftwatch.engine.calibration import Calibration
from driftwatch.engine.drift import ColumnDrift, DriftResult, ReferenceProfile
from driftwatch.errors import describe_failure, infrastructure
from driftwatch.faults import checkpoint
from driftwatch.files import shown
from driftwatch.model.estimators import predict, target, train
from driftwatch.model.quality import (
    EstimatedQuality,
    QualityResult,
    score,
    score_predictions,
)
from driftwatch.model.quality import assess as assess_quality
from driftwatch.model.schema import labelled
from driftwatch.model.support import Support
from driftwatch.monitor.baseline import ServedBaseline, served_baseline
from driftwatch.monitor.big import summarise_rows
from driftwatch.monitor.estimated import (
    estimate_quality,
    estimate_summarised,
    estimated_metrics,
    fit_estimator_for,
    fits,
    is_current,
    refit_estimator,
)
from driftwatch.monitor.plan import PREDICTION, Plan, Segment
from driftwatch.monitor.policy import decide, promotion_decision
from driftwatch.monitor.ports import (
    FROM_FILE,
    PREDICTED,
    SERVED_BY,
    Batch,
    BatchSource,
    BigBatches,
    Challenge,
    Champion,
    History,
    InlineSteps,
    ModelRegistry,
    ReferenceHandle,
    ReferenceStore,
    Reporter,
    Steps,
    ThresholdStore,
)
from driftwatch.monitor.result import Decision, MonitorResult, RetrainOutcome
from driftwatch.monitor.segment_quality import (
    P,
    Y,
    segment_estimates,
    segment_quality,
    segment_scores,
)
from driftwatch.monitor.served_interval import fit_served_calibration, period_length, read_days
from driftwatch.monitor.support_span import (
    SupportSpan,
    champion_range,
    outside_support,
    support_span,
)
from driftwatch.monitor.window import recency_weights, split_holdout, training_window

log = logging.getLogger("driftwatch.monitor")


@dataclass(frozen=True)
class Findings:
    """What one batch showed, and what the policy made of it."""

    drift: DriftResult | None
    quality: QualityResult | None
    prediction: ColumnDrift | None
    decision: Decision
    # Time blocks: one verdict per horizon (``drift`` is the alarming one, else the first).
    horizons: tuple[DriftResult, ...] = ()
    # The champion's prediction for every row of the batch (kept in history with the rows).
    predictions: pd.Series | None = None
    # The champion's estimated quality on the batch (no labels needed).
    estimated: EstimatedQuality | None = None
    # model.segments: the realised and estimated quality of each segment (its own baseline).
    segment_quality: tuple[QualityResult, ...] = ()
    segment_estimated: tuple[EstimatedQuality, ...] = ()
    # retrain.support_columns: per column, the share of rows beyond the champion's training range
    # over ``support_span`` (the batch, or the newest retrain.support_hours of history).
    support: dict[str, float] | None = None
    support_span: SupportSpan | None = None


@dataclass(frozen=True)
class BlockJudging:
    """What judging on time-block thresholds needs: the reference's block profile and the
    thresholds of each horizon."""

    profile: BlockProfile
    thresholds: tuple[BlockThresholds, ...]
    fingerprint: str
    # model.segments: each segment's own profile and thresholds (each horizon's), judged on
    # the batch's rows of that segment.
    segments: tuple[SegmentJudging, ...] = ()


@dataclass(frozen=True)
class SegmentJudging:
    segment: Segment
    profile: BlockProfile
    thresholds: tuple[BlockThresholds, ...]

    @property
    def name(self) -> str:
        return f"{self.segment[0]}={self.segment[1]}"


# -- the pure steps ----------------------------------------------------------------------------


def assess(
    plan: Plan,
    batch: Batch,
    champion: Champion | None,
    model: Any,
    profile: ReferenceProfile | None,
    calibration: Calibration | None,
    reference: pd.DataFrame | None,
    blocks: BlockJudging | None = None,
    recent: pd.DataFrame | None = None,
    age: float | None = None,
    served: ServedBaseline | None = None,
    estimator: Any = None,
    no_estimator: str = "no estimator for this champion",
    support: Support | None = None,
    span: pd.DataFrame | None = None,
    served_rows: pd.DataFrame | None = None,
) -> Findings:
    """Feature drift against the reference (per horizon on time-block thresholds), the
    champion's quality where labels have arrived, drift of its predictions, and the decision.

    ``recent``: history rows of the quality lookback (``quality.lookback_hours``) whose late
    labels have arrived, with the champion's predictions made when they were served.
    ``served``: with ``quality.baseline: served``, the champion's realised baseline (no quality
    verdict while it is being measured). ``estimator``: the champion's performance estimator
    (:mod:`driftwatch.monitor.estimated`), or None and ``no_estimator`` saying why.
    ``support``: the champion's range in ``retrain.support_columns`` (learnt once per champion
    from its training window, :func:`champion_range`); ``span``: the history rows of the newest
    ``retrain.support_hours`` (None: judged on the batch alone). ``served_rows``: history rows
    the estimate's interval is calibrated on (``quality.estimate.served``: the champion's
    labelled served periods)."""
    drift = quality = prediction = predictions = estimated = None
    horizons: tuple[DriftResult, ...] = ()
    seg_quality: tuple[QualityResult, ...] = ()
    seg_estimated: tuple[EstimatedQuality, ...] = ()
    summarised = batch.summary is not None
    if batch.rows and blocks is not None and summarised:
        # A big batch: each horizon on the merged hours of its newest span (monitor/big.py);
        # segments and prediction drift need the rows (see README, "Known limits").
        horizons = tuple(judge_summary_horizon(plan, batch, blocks, t) for t in blocks.thresholds)
        drift = next((h for h in horizons if h.dataset_drift), horizons[0])
    elif batch.rows and blocks is not None:
        horizons = tuple(judge_horizon(plan, batch, blocks, t) for t in blocks.thresholds)
        horizons += tuple(
            judge_segment(plan, batch, blocks, seg, t)
            for seg in blocks.segments
            for t in seg.thresholds
        )
        drift = next((h for h in horizons if h.dataset_drift), horizons[0])
    elif batch.rows and profile is not None:
        thresholds = calibration.tests() if calibration is not None else None
        detector = plan.detector(thresholds).with_profile(profile)
        drift = detector.check(batch.frame, source=",".join(batch.files) or "batch")
    if batch.rows and champion is not None and model is not None:
        spec = plan.settings.model
        frame = batch.frame
        predictions = pd.Series(
            predict(model, frame, spec) if len(frame) else np.empty(0), index=frame.index
        )
        judged = judged_labels(frame, predictions, recent, champion.version, spec, batch.all_files)
        y, p = judged[Y].to_numpy(dtype=float), judged[P].to_numpy(dtype=float)
        q = plan.settings.quality
        segments = (
            [g.segment for g in blocks.segments] if blocks is not None and not summarised else []
        )
        baseline = champion.baseline
        if q.baseline == "served":
            baseline = served.scores if served is not None else {}
        if summarised and batch.summary.quality is not None:  # type: ignore[union-attr]
            # The big files' rows scored per partition: the metrics' sums add up.
            from driftwatch.model.partial_quality import QualitySums

            sums = QualitySums.from_predictions(y, p, spec.task)
            sums = sums.merge(batch.summary.quality)  # type: ignore[union-attr]
            metrics, n_labelled = sums.metrics(), sums.n
        else:
            metrics, n_labelled = score_predictions(y, p, spec), len(y)
        quality = assess_quality(metrics, baseline, n_labelled, plan.metric, q)
        if summarised and n_labelled and plan.metric not in metrics:
            why = f"{plan.metric} is not offered on a summarised batch (it ranks every score)"
            quality = quality.model_copy(update={"reason": why})
        if q.baseline == "served" and served is not None:
            if quality.baseline is None and served.note:
                # Too few labels is said first: it is the reason there is nothing to judge.
                first = quality.reason if quality.degraded is None else "no quality verdict"
                quality = quality.model_copy(update={"reason": f"{first}; {served.note}"})
            elif quality.baseline is not None:
                quality = quality.model_copy(update={"reason": f"{quality.reason} ({served.note})"})
        if segments:
            seg_quality = segment_quality(
                plan,
                judged,
                segments,
                champion.segments,
                champion.version,
                served.segments if q.baseline == "served" and served is not None else None,
            )
        served_interval = None
        if q.estimate.enabled and served_rows is not None and estimator is not None:
            served_interval = fit_served_calibration(
                plan, estimator, model, served_rows, champion.version, batch_times(plan, batch)
            )
        if q.estimate.enabled and summarised:
            estimated = estimate_summarised(
                plan,
                estimator,
                batch.frame,
                predictions,
                batch.summary.estimate,  # type: ignore[union-attr]
                no_estimator,
                served_interval,
            )
        elif q.estimate.enabled:
            estimated = estimate_quality(
                plan,
                estimator,
                model,
                batch.frame,
                predictions,
                no_estimator,
                calibration=served_interval,
            )
            if segments and estimator is not None:  # without one, the batch's line says why
                seg_estimated = segment_estimates(
                    plan,
                    estimator,
                    model,
                    batch.frame,
                    predictions,
                    no_estimator,
                    segments,
                    champion.segments,
                )
        if reference is not None and not summarised:
            prediction = prediction_drift(plan, model, reference, batch.frame)
    outside, judged_span = None, None
    if batch.rows and support is not None and not summarised:
        # (A summarised batch's rows are not at hand: support is not judged on it, said so.)
        judged_span = support_span(plan.settings, batch.frame, span, batch.all_files)
        outside = outside_support(plan.settings, support, judged_span)
        judged_span = judged_span if outside is not None else None
    decision = decide(
        list(horizons) or ([drift] if drift is not None else []),
        quality,
        prediction,
        champion is not None,
        batch.new_rows,
        plan.policy,
        age,
        plan.settings.retrain.max_age_days,
        plan.settings.retrain.min_age_days,
        estimated,
        plan.settings.quality.trigger,
        plan.settings.retrain.triggers,
        segment_quality=seg_quality,
        segment_estimated=seg_estimated,
        outside=outside,
        support_share=plan.settings.retrain.support_share,
        support_span=judged_span.label if judged_span is not None else "the batch",
    )
    return Findings(
        drift,
        quality,
        prediction,
        decision,
        horizons,
        predictions,
        estimated,
        seg_quality,
        seg_estimated,
        outside,
        judged_span,
    )


def newest_hours(rows: pd.DataFrame, ts: str | None, hours: float) -> pd.DataFrame:
    """The rows of the newest ``hours`` up to the newest row (all of them without a timestamp)."""
    if rows.empty or not ts or ts not in rows.columns:
        return rows
    return rows[rows[ts] > rows[ts].max() - pd.Timedelta(hours=hours)]


def champion_age(
    plan: Plan, trained: pd.DataFrame, frame: pd.DataFrame, validated: str | None = None
) -> float | None:
    """Days from the end of the champion's training data (its reference), or of the newest
    holdout it held its own on, to the batch's newest row: data time, so a replay ages its
    champions as the daemon does."""
    ts = plan.settings.model.timestamp
    if not ts or ts not in trained.columns or ts not in frame.columns or trained.empty:
        return None
    fresh = trained[ts].max()
    if validated:
        fresh = max(fresh, pd.Timestamp(validated))
    return float((frame[ts].max() - fresh) / pd.Timedelta(days=1))


def labels_to_judge(
    frame: pd.DataFrame,
    predictions: pd.Series,
    recent: pd.DataFrame | None,
    champion: str,
    spec: ModelSettings,
    in_batch: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and the champion's predictions to judge it on: the batch's labelled rows, plus
    the lookback's history rows this champion served whose labels have arrived since (each
    counted at the time it was predicted, not when its label came). History rows of files in
    the batch (``in_batch``: its context files, judged again) are counted once, as the batch's."""
    judged = judged_labels(frame, predictions, recent, champion, spec, in_batch)
    return judged[Y].to_numpy(dtype=float), judged[P].to_numpy(dtype=float)


def judged_labels(
    frame: pd.DataFrame,
    predictions: pd.Series,
    recent: pd.DataFrame | None,
    champion: str,
    spec: ModelSettings,
    in_batch: list[str] | None = None,
) -> pd.DataFrame:
    """:func:`labels_to_judge`'s rows as a frame: the label (``_y``), the prediction (``_p``)
    and the ``model.segments`` columns, so each segment is judged on its own rows of both."""
    keep = list(spec.segments)

    def judged(rows: pd.DataFrame, p: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                Y: target(rows, spec).to_numpy(dtype=float),
                P: np.asarray(p, dtype=float),
                **{c: rows[c].astype(str).to_numpy() for c in keep},
            }
        )

    parts: list[pd.DataFrame] = []
    if spec.target in frame.columns:  # (a summarised batch of big files alone has no rows here)
        has = frame[spec.target].notna().to_numpy()
        parts.append(judged(frame[has], predictions.to_numpy()[has]))
    if recent is not None and len(recent) and PREDICTED in recent.columns:
        mine = recent[
            (recent[SERVED_BY].astype(str) == champion)
            & recent[spec.target].notna()
            & recent[PREDICTED].notna()
            & ~recent[FROM_FILE].isin(in_batch or [])
        ]
        parts.append(judged(mine, mine[PREDICTED].to_numpy()))
    if not parts:
        return pd.DataFrame({Y: np.empty(0), P: np.empty(0), **{c: np.empty(0, str) for c in keep}})
    return pd.concat(parts, ignore_index=True)


def judge_horizon(
    plan: Plan,
    batch: Batch,
    blocks: BlockJudging,
    thresholds: BlockThresholds,
    newest: pd.Timestamp | None = None,
) -> DriftResult:
    """The newest ``span`` of the batch (its window) against that span's thresholds.
    ``newest``: the end of the span (a segment's rows end where the whole batch does, not at
    the segment's own newest row: a segment with no rows in the newest hour is not judged on
    an older one)."""
    frame = batch.frame
    local = plan.local_times(frame)
    rows = frame
    if plan.settings.drift.horizons and len(frame):  # the newest span of the window
        end = local.max() if newest is None else newest
        rows = frame[local > end - thresholds.span]
    detector = BlockDetector(
        blocks.profile, thresholds, plan.counting, blocks.fingerprint, blocks.profile.n_rows
    )
    least = plan.settings.drift.calibration.min_block_rows
    label = span_label(thresholds.span)
    note = ""
    typical = thresholds.median_rows
    if len(rows) < max(least, typical / 4):
        # Thresholds hold for blocks of about the calibrated size; far fewer rows are noisier.
        note = (
            f"not judged at {label}: {len(rows)} rows in the newest {label}"
            f" (< {max(least, round(typical / 4))}; its quiet blocks hold ~{typical:.0f})"
        )
    elif plan.settings.drift.horizons and not _covered(local, thresholds.span):
        # A day horizon on the first hours of a new deployment: a partial day is not a day.
        held = local.max() - local.min()
        note = f"not judged at {label}: the window holds only {held} of data so far"
    if note:
        result = detector.check(rows.iloc[:0], source=",".join(batch.files) or "batch")
        return result.model_copy(update={"description": note})
    return detector.check(rows, source=",".join(batch.files) or "batch")


def judge_summary_horizon(
    plan: Plan, batch: Batch, blocks: BlockJudging, thresholds: BlockThresholds
) -> DriftResult:
    """:func:`judge_horizon` on a summarised batch (monitor/big.py): the merged summaries of the
    hours of the newest ``span`` against that span's thresholds, with the same rules for "not
    judged" (too few rows for the span, the span not yet covered)."""
    summary = batch.summary
    assert summary is not None
    horizons = bool(plan.settings.drift.horizons)
    window = summary.window(thresholds.span if horizons else None)
    rows = window.rows if window is not None else 0
    detector = BlockDetector(
        blocks.profile, thresholds, plan.counting, blocks.fingerprint, blocks.profile.n_rows
    )
    least = plan.settings.drift.calibration.min_block_rows
    label = span_label(thresholds.span)
    typical = thresholds.median_rows
    source = ",".join(batch.files) or "batch"
    how = f"summarised per hour from {summary.partitions} partition(s)"
    note = ""
    if rows < max(least, typical / 4):
        note = (
            f"not judged at {label}: {rows} rows in the newest {label}"
            f" (< {max(least, round(typical / 4))}; its quiet blocks hold ~{typical:.0f})"
        )
    elif horizons and summary.covered < thresholds.span - min(
        thresholds.span / 4, pd.Timedelta("1h")
    ):
        note = f"not judged at {label}: the window holds only {summary.covered} of data so far"
    if note:
        result = detector.check_summary(None, source=source)
        return result.model_copy(update={"description": f"{note} ({how})"})
    result = detector.check_summary(window, source=source)
    return result.model_copy(update={"description": f"{result.description} ({how})"})


def judge_segment(
    plan: Plan,
    batch: Batch,
    blocks: BlockJudging,
    seg: SegmentJudging,
    thresholds: BlockThresholds,
) -> DriftResult:
    """One segment's rows of the batch against that segment's profile and thresholds (its
    share of the rate); the verdict names the segment. Too few rows: not judged, said so."""
    rows = plan.segment_rows(batch.frame, seg.segment)
    own = BlockJudging(seg.profile, blocks.thresholds, blocks.fingerprint)
    whole = plan.local_times(batch.frame)
    newest = whole.max() if len(whole) else None
    result = judge_horizon(plan, replace(batch, frame=rows), own, thresholds, newest)
    return result.model_copy(
        update={"segment": seg.name, "description": f"segment {seg.name}: {result.description}"}
    )


def _covered(local: pd.Series, span: pd.Timedelta) -> bool:
    """Whether the window reaches back (almost) a whole ``span`` from its newest row: rows are
    stamped by the hour, so a full day of hourly rows spans 23 hours."""
    return bool(local.max() - local.min() >= span - min(span / 4, pd.Timedelta("1h")))


def prediction_drift(
    plan: Plan, model: Any, reference: pd.DataFrame, current: pd.DataFrame
) -> ColumnDrift:
    """The champion's outputs on the batch vs on its reference, through the same drift engine."""
    spec = plan.settings.model
    cur = pd.DataFrame({PREDICTION: predict(model, current, spec)})
    if spec.task == "multiclass":
        cur = _as_classes(cur)
    return _reference_predictions(plan, model, reference).check(cur).columns[0]


def _as_classes(frame: pd.DataFrame) -> pd.DataFrame:
    """Predicted classes of a multiclass model, tested as categories."""
    return frame.astype(np.int64).astype(str).astype("category")


# The champion's outputs on its reference, fitted: the same every tick until the champion or
# the reference changes (both are kept in this process between ticks: the registry's model
# cache, ReferenceFiles' frame cache), so not predicted again per tick (~0.3 s for 52k rows).
# Two entries per model (the champion before and after a promotion), by model name: several
# models of one config share the process (threads of one tick).
_PREDICTED: dict[str, list[tuple[Any, pd.DataFrame, str, Any]]] = {}
_PREDICTED_LOCK = threading.Lock()
# Champions found without an estimator and unable to get one, with why: asked once a process.
_NO_ESTIMATOR: dict[tuple[str, str, str, str], str] = {}


def _reference_predictions(plan: Plan, model: Any, reference: pd.DataFrame) -> Any:
    settings = plan.settings.model_dump_json(include={"model", "drift"})
    with _PREDICTED_LOCK:
        kept = list(_PREDICTED.get(plan.name, []))
    for m, r, s, detector in kept:
        if m is model and r is reference and s == settings:
            return detector
    ref = pd.DataFrame({PREDICTION: predict(model, reference, plan.settings.model)})
    if plan.settings.model.task == "multiclass":
        ref = _as_classes(ref)
    detector = plan.prediction_detector().fit(ref)
    with _PREDICTED_LOCK:
        _PREDICTED[plan.name] = [*kept[-1:], (model, reference, settings, detector)]
    return detector


def challenge(
    plan: Plan, window: pd.DataFrame, champion_model: Any, trigger: str, stale: bool = False
) -> Challenge:
    """Train a challenger on the window's older rows and score it and the champion on the same,
    most recent, holdout; the verdict says whether it earns the promotion.

    With ``retrain.refit`` a winner is then refit on the whole labelled window, holdout included
    (the holdout decided; the newest rows are the most valuable to learn from): that is the
    model registered, and ``train_rows`` are the rows it learnt from.
    """
    s = plan.settings
    train_rows, holdout = split_holdout(window, s)
    model = train(
        train_rows,
        s.model,
        random_state=s.retrain.random_state,
        sample_weight=recency_weights(train_rows, s),
    )
    ch_scores = score(model, holdout, s.model)
    cp_scores = score(champion_model, holdout, s.model) if champion_model is not None else None
    # model.segments: the segment baselines of whichever serves next (before the refit below,
    # as the whole holdout's: the refit model has seen the holdout).
    ch_segments = segment_scores(plan, model, holdout)
    cp_segments = segment_scores(plan, champion_model, holdout) if champion_model else None
    verdict = promotion_decision(
        plan.metric,
        ch_scores,
        cp_scores,
        s.retrain.promotion_margin,
        s.retrain.promote == "always",
        stale=stale,
    )
    estimator = None
    if verdict.promote:
        # Fitted on the holdout with this model's predictions, before the refit below: the
        # refit model has seen the holdout, its errors there are optimistic.
        estimator = fit_estimator_for(plan, model, holdout)
    if verdict.promote and s.retrain.refit:
        train_rows = labelled(window, s.model)
        model = train(
            train_rows,
            s.model,
            random_state=s.retrain.random_state,
            sample_weight=recency_weights(train_rows, s),
        )
    return Challenge(
        model,
        window,
        train_rows,
        holdout,
        ch_scores,
        cp_scores,
        verdict,
        trigger,
        estimator,
        ch_segments,
        cp_segments if s.model.segments else None,
    )


def monitor_result(
    plan: Plan,
    batch: Batch,
    findings: Findings,
    champion: Champion | None,
    ref: ReferenceHandle,
    started: float,
    run_id: str | None,
) -> MonitorResult:
    target, ts = plan.settings.model.target, plan.settings.model.timestamp
    frame = time_frame(plan, batch)
    times = frame[ts].dropna() if ts and ts in frame.columns and batch.rows else None
    labelled = int(batch.frame[target].notna().sum()) if target in batch.frame.columns else 0
    if batch.summary is not None:
        labelled = batch.summary.labelled  # the small files' rows are in it
    return MonitorResult(
        start=str(times.min()) if times is not None and len(times) else None,
        end=str(times.max()) if times is not None and len(times) else None,
        run_id=run_id or uuid.uuid4().hex,
        started=datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        files=batch.files,
        rows=batch.rows,
        window=batch.window,
        labelled_rows=labelled,
        decision=findings.decision,
        drift=findings.drift,
        horizons=list(findings.horizons),
        quality=findings.quality,
        estimated=findings.estimated,
        segment_quality=list(findings.segment_quality),
        segment_estimated=list(findings.segment_estimated),
        support=dict(findings.support or {}),
        support_span=findings.support_span.label if findings.support_span else "",
        support_rows=len(findings.support_span.frame) if findings.support_span else 0,
        support_hours=findings.support_span.hours if findings.support_span else None,
        prediction=findings.prediction,
        champion_version=champion.version if champion else None,
        champion_holdout=dict(champion.baseline) if champion else {},
        reference_version=ref.version,
        warnings=list(batch.warnings),
        labels=list(batch.labels),
        rejected=dict(batch.rejected),
    )


def batch_times(plan: Plan, batch: Batch) -> pd.Series:
    """The batch's timestamps (its rows', or a summarised batch's hours); empty without a
    ``model.timestamp``."""
    ts = plan.settings.model.timestamp
    frame = time_frame(plan, batch)
    if not ts or ts not in frame.columns:
        return pd.Series(dtype="datetime64[ns, UTC]")
    return frame[ts].dropna()


def time_frame(plan: Plan, batch: Batch) -> pd.DataFrame:
    """The batch's rows, or for a summarised batch its oldest and newest timestamps (all that
    the champion's age, the served baseline and the result read of a big batch's rows)."""
    ts = plan.settings.model.timestamp
    summary = batch.summary
    if summary is None or not ts or summary.first_utc is None:
        return batch.frame
    return pd.DataFrame({ts: pd.Series([summary.first_utc, summary.last_utc])})


def retrain_outcome(
    plan: Plan,
    c: Challenge,
    run_id: str,
    version: str,
    champion: Champion | None,
    reference: str,
    started: float,
) -> RetrainOutcome:
    previous = champion.version if champion else None
    promoted = c.verdict.promote
    return RetrainOutcome(
        promoted=promoted,
        reason=c.verdict.reason,
        metric=plan.metric,
        challenger_score=c.verdict.challenger,
        champion_score=c.verdict.champion,
        challenger_version=version,
        champion_version=version if promoted else previous,
        previous_version=previous,
        train_rows=len(c.train_rows),
        holdout_rows=len(c.holdout),
        run_id=run_id,
        reference=reference if promoted else (champion.reference if champion else None),
        seconds=round(time.time() - started, 3),
        challenger_metrics=c.challenger_scores,
        champion_metrics=c.champion_scores,
    )


def completion_message(result: MonitorResult) -> str:
    """The one line a finished run is known by (Prefect's Completed message, the CLI)."""
    reason = result.decision.reason
    return {
        "no-data": "no new data",
        "no-drift": f"no drift: {reason.removeprefix('no drift; ')}",
        "no-verdict": f"no verdict: {reason.removeprefix('no verdict; ')}",
    }.get(result.outcome, f"{result.outcome}: {reason}")


def monitor_metrics(result: MonitorResult) -> dict[str, float]:
    """What goes to MLflow per monitor run, so trends plot in its UI."""
    m: dict[str, float] = {"rows": float(result.rows), "labelled_rows": float(result.labelled_rows)}
    if result.drift is not None:
        m["drifted_share"] = result.drift.share
        m["drifted_columns"] = float(result.drift.n_drifted)
        m["dataset_drift"] = float(result.drift.dataset_drift)
        for c in result.drift.columns:
            if c.score is not None:
                m[f"drift_score.{c.column}"] = float(c.score)
    if result.quality is not None:
        for k, v in result.quality.metrics.items():
            m[f"champion_{k}"] = v
        # With late labels: how many rows (batch + lookback) the realised metric rests on.
        m["quality_labelled_rows"] = float(result.quality.labelled_rows)
    m |= estimated_metrics(result.estimated)
    # model.segments: per segment, named ``segment.origin_EWR.champion_rmse`` (MLflow refuses
    # "=" in a name), with the estimate's beside it.
    for sq in result.segment_quality:
        key = f"segment.{sq.segment}"
        if sq.value is not None:
            m[f"{key}.champion_{sq.metric}"] = float(sq.value)
        m[f"{key}.quality_labelled_rows"] = float(sq.labelled_rows)
    for se in result.segment_estimated:
        m |= {f"segment.{se.segment}.{k}": v for k, v in estimated_metrics(se).items()}
    # retrain.support_columns: how close each column is to retrain.support_share, every tick.
    m |= {f"support_outside.{c}": v for c, v in result.support.items()}
    if result.support:  # the span they were judged on: its rows and hours (0: the batch alone)
        m["support_rows"] = float(result.support_rows)
        m["support_hours"] = float(result.support_hours or 0)
    if result.prediction is not None and result.prediction.score is not None:
        m["prediction_drift_score"] = float(result.prediction.score)
    m["retrained"] = float(result.retrain is not None)
    m["promoted"] = float(bool(result.retrain and result.retrain.promoted))
    return m


# -- the use case --------------------------------------------------------------------------------


class _Isolated(Exception):
    """A cycle's failure whose files the batch source isolated: :meth:`MonitorCycle.run` goes
    on to judge them alone. Never leaves ``run`` (the original error is raised again)."""

    def __init__(
        self, error: Exception, files: list[str], rejected: dict[str, str] | None = None
    ) -> None:
        super().__init__(str(error))
        # rejected: files the failed run left out at reading (already failed in the ledger),
        # reported by the tick as any run's rejected files are
        self.error, self.files, self.rejected = error, files, dict(rejected or {})


class MonitorCycle:
    """One tick of the monitor over its ports; ``steps`` decides how each step runs."""

    def __init__(
        self,
        plan: Plan,
        batches: BatchSource,
        references: ReferenceStore,
        thresholds: ThresholdStore,
        registry: ModelRegistry,
        reporter: Reporter,
        history: History,
        steps: Steps | None = None,
        big: BigBatches | None = None,
    ) -> None:
        self.plan = plan
        self.big = big
        self.batches = batches
        self.history = history
        self.references = references
        self.thresholds = thresholds
        self.registry = registry
        self.reporter = reporter
        self.steps = steps or InlineSteps()

    def run(self, run_id: str | None = None) -> MonitorResult:
        """One tick: a cycle over the batch (:meth:`cycle`), and, when that run of several
        files failed for a cause the batch source could not pin on one of them (it *isolated*
        them), a cycle for each of those files alone, right away (:meth:`judge_alone`).

        So a poison file never holds the good files of its run back to a later tick: they are
        done in this one, and the poison file's failure alone is charged to it alone. At most
        one cycle per isolated file follows the failed one.
        """
        run_id = run_id or uuid.uuid4().hex
        try:
            return self.cycle(run_id)
        except _Isolated as isolated:
            error, files, rejected = isolated.error, isolated.files, isolated.rejected
        # outside the handler: a clean chain
        return self.judge_alone(run_id, error, files, rejected)

    def judge_alone(
        self,
        run_id: str,
        error: Exception,
        files: list[str],
        rejected: dict[str, str] | None = None,
    ) -> MonitorResult:
        """Judge each isolated file alone, one at a time, each in a cycle of its own (its own
        run id, result record and ledger outcome): a file that succeeds is done, one that fails
        is charged by the batch source as any failed run of one file is.

        A fault of the infrastructure (or a stop) ends the loop at once and fails the tick: each
        further run would fail the same way; the files not yet run stay isolated and waiting,
        taking turns with the other files in later ticks.

        What the tick returns: the last cycle that succeeded (the newest file's judgement, with
        the others' rows as context when the plan has horizons), its warnings extended by one
        line naming the failed run and its files, one per other successful cycle of the tick,
        and one per file that failed alone (``failed alone: <file> (run <id>): <error>``); files
        rejected at reading in the failed run (``rejected``) or in any of the cycles stay in
        ``rejected``. So the tick completes
        when any file got through (its events and alerts are that result's; each cycle's own
        result is recorded). If every cycle failed, the first failure is raised, as it was
        before isolation (most likely a fault no file is to blame for).
        """
        names = ", ".join(shown(f) for f in files)
        head = (
            f"run {run_id} of {len(files)} files failed with {describe_failure(error)}; no file"
            f" could be blamed for it, so each is judged alone in this tick: {names}"
        )
        log.warning("%s", head)
        done: list[MonitorResult] = []
        failed: dict[str, str] = {}
        for path in files:
            alone_id = uuid.uuid5(uuid.NAMESPACE_URL, f"driftwatch:{run_id}:alone:{path}").hex
            try:
                done.append(self.cycle(alone_id, alone=path))
            except Exception as exc:
                cause = exc.error if isinstance(exc, _Isolated) else exc
                if infrastructure(cause):
                    raise cause from None
                failed[path] = (
                    f"failed alone: {shown(path)} (run {alone_id}): {describe_failure(cause)}"
                )
        if not done:
            raise error
        last = done[-1]
        others = [
            f"run {r.run_id} ({', '.join(shown(f) for f in r.files) or 'no file'}, alone):"
            f" {completion_message(r)}"
            for r in done[:-1]
        ]
        rejected = {**(rejected or {}), **{k: v for r in done for k, v in r.rejected.items()}}
        return last.model_copy(
            update={
                "warnings": [*last.warnings, head, *others, *failed.values()],
                "rejected": rejected,
            }
        )

    def cycle(self, run_id: str, alone: str | None = None) -> MonitorResult:
        """Read the champion and its reference, take the batch, judge it, report, and retrain
        when the decision says so; the batch's files are finished only after all of that.
        ``alone``: the batch is that isolated file only (see :meth:`judge_alone`)."""
        step, started = self.steps, time.time()
        batch: Batch | None = None
        try:
            champion = step("read champion", self.registry.champion, retry=True)
            ref = step("locate reference", self.references.locate, champion, retry=True)
            step("repair history", self.history.repair, retry=True)
            batch = step("load batch", self.batches.collect, run_id, alone, retry=True)
            notes, warned = step("take late labels", self.history.ingest_labels, batch, retry=True)
            batch = replace(batch, warnings=[*batch.warnings, *warned], labels=notes)
            if batch.big:
                batch = self.summarise_big(batch, champion, ref)
            findings = self.assess(batch, champion, ref)
            result = monitor_result(self.plan, batch, findings, champion, ref, started, run_id)
            result = step("report", self.reporter.report, result, batch, ref)
            served = champion.version if champion else None
            step(
                "add to history",
                self.history.append,
                batch,
                findings.predictions,
                served,
                retry=True,
            )
            checkpoint("after-history")
            if findings.decision.retrain:
                outcome = step.subflow(
                    "retrain",
                    self.retrain,
                    batch.all_files,
                    findings.decision.reason,
                    run_id,
                    bool({"drift", "age", "support"} & findings.decision.triggers),
                )
                result = result.model_copy(
                    update={"retrain": outcome, "champion_version": outcome.champion_version}
                )
            result = result.model_copy(update={"seconds": round(time.time() - started, 3)})
            checkpoint("before-record")
            step("record result", self.reporter.record, result, retry=True)
            checkpoint("before-finish")
            step("finish batch", self.batches.finish, batch, result.outcome)
            if batch.rows:  # a run that judged rows may have added a reference or calibration
                step("prune state", self.references.prune)
                step("prune history", self.history.prune)
        except BaseException as exc:
            isolated = self.batches.fail(batch, exc)
            if isolated and isinstance(exc, Exception):
                raise _Isolated(exc, isolated, batch.rejected if batch else None) from exc
            raise
        return result

    def assess(self, batch: Batch, champion: Champion | None, ref: ReferenceHandle) -> Findings:
        """Load what judging needs (only when there are rows), then the pure ``assess`` step."""
        step, plan = self.steps, self.plan
        model = profile = calibration = reference = blocks = recent = age = served = None
        trained = support = span = served_rows = None
        estimator, no_estimator = None, "no estimator for this champion"
        s = plan.settings
        if batch.rows:
            if champion is not None:
                # One step for both: a Prefect task run costs ~0.35 s, the estimator's read is
                # cached in the process (and a lazy fit happens once per champion).
                model, estimator, no_estimator = step(
                    "load champion model", self.load_champion, champion, ref, retry=True
                )
                span_hours = s.retrain.support_hours if s.retrain.support_columns else None
                served_hours = None
                if estimator is not None and s.quality.estimate.served.enabled:
                    served_hours = self.served_hours(batch)
                if s.quality.lookback_hours or span_hours or served_hours:
                    # One read for the quality lookback, the support span and the served
                    # periods of the estimate's interval (a step costs a task run).
                    hours = max(s.quality.lookback_hours or 0, span_hours or 0, served_hours or 0)
                    rows = step("read recent history", self.recent_history, hours, retry=True)
                    span = rows if span_hours else None
                    served_rows = rows if served_hours else None
                    if s.quality.lookback_hours:
                        recent = newest_hours(rows, s.model.timestamp, s.quality.lookback_hours)
                if s.drift.prediction_drift:
                    reference = step("load reference", self.references.frame, ref, retry=True)
                served_mode = s.quality.baseline == "served"
                needs_window = bool(s.retrain.support_columns)
                if (
                    s.retrain.max_age_days
                    or s.retrain.min_age_days is not None
                    or served_mode
                    or needs_window
                ):
                    trained = reference
                    if trained is None:
                        trained = step("load reference", self.references.frame, ref, retry=True)
                    times = time_frame(plan, batch)
                    age = champion_age(plan, trained, times, champion.validated_until)
                    if needs_window:  # fitted once per champion (cached by its reference)
                        support = champion_range(ref.sha256, trained, s.retrain.support_columns)
                    if served_mode:
                        served = step(
                            "measure served baseline",
                            self.served_baseline,
                            champion,
                            trained,
                            time_frame(plan, batch),
                            retry=True,
                        )
            if plan.time_blocks:
                blocks = self.block_judging(batch, ref)
            else:
                profile = step("load reference profile", self.references.profile, ref, retry=True)
            if plan.rule.needs_calibration and not plan.time_blocks:
                calibration = step(
                    "calibrate thresholds", self.thresholds.thresholds, ref, batch.rows, retry=True
                )
        return step(
            "assess batch",
            assess,
            plan,
            batch,
            champion,
            model,
            profile,
            calibration,
            reference,
            blocks,
            recent,
            age,
            served,
            estimator,
            no_estimator,
            support,
            span,
            served_rows,
        )

    def summarise_big(self, batch: Batch, champion: Champion | None, ref: ReferenceHandle) -> Batch:
        """The batch's big files summarised per local hour where their partitions are (one step
        each), merged with its small files' rows: the batch judged from then on.

        A big file that fails (a corrupt partition, a missing column: the line names the
        partition's file) is charged alone, as a small file that cannot be read is, and the
        others go on. A fault of the infrastructure fails the run as any step's does."""
        step, plan, s = self.steps, self.plan, self.plan.settings
        if not plan.time_blocks or self.big is None:
            from driftwatch.errors import BatchError

            why = (
                "a big batch (a parquet directory, or a file above scale.summary_above_rows) is"
                " judged in the monitor on time-block thresholds only: set"
                " drift.calibration.quiet: time_blocks with drift.method: calibrated and a"
                " model.timestamp, or check it with `driftwatch check`"
            )
            for path in list(batch.big):
                batch = self.batches.reject(batch, path, BatchError(path, why))
            return replace(batch, big=[])
        profile = step("load reference profile", self.references.block_profile, ref, retry=True)
        model = estimator = None
        if champion is not None:
            model, estimator, _ = step(
                "load champion model", self.load_champion, champion, ref, retry=True
            )
            if not hasattr(estimator, "sums"):
                estimator = None  # its estimate does not add up over partitions
        longest = max((pd.Timedelta(h) for h in s.drift.horizons), default=None)
        lattices = None
        merged = None
        for path in list(batch.big):
            try:
                part = step(
                    f"summarise big batch {shown(path)}",
                    self.big.summarise,
                    path,
                    profile,
                    longest,
                    model,
                    estimator,
                )
            except Exception as exc:
                if infrastructure(exc):
                    raise
                batch = self.batches.reject(batch, path, exc)
                continue
            merged = part if merged is None else merged.merge(part)
            batch = replace(
                batch,
                warnings=[
                    *batch.warnings,
                    *part.notes,
                    f"big batch {shown(path)}: {part.rows:,} rows summarised per hour on"
                    f" {part.partitions} partition(s), not kept in history (retraining does not"
                    " learn from them; README, 'Big batches in the hourly monitor')",
                ],
            )
        if merged is None:  # every big file failed: the small files are judged as ever
            return replace(batch, big=[])
        if len(batch.frame):
            from driftwatch.engine.block_summaries import block_lattices

            lattices = block_lattices(profile, s.scale.points)
            merged = merged.merge(summarise_rows(batch.frame, s.model, profile, lattices, longest))
            merged.partitions -= 1  # the small files' rows are not a partition
        notes = ["prediction drift is not judged on a summarised batch"]
        if s.retrain.support_columns:
            notes.append("retrain.support_columns is not judged on a summarised batch")
        if s.model.segments:
            notes.append("segments are not judged on a summarised batch (whole batch only)")
        return replace(
            batch,
            summary=merged,
            new_rows=batch.new_rows + merged.rows - len(batch.frame),
            warnings=[*batch.warnings, *notes],
        )

    def load_champion(self, champion: Champion, ref: ReferenceHandle) -> tuple[Any, Any, str]:
        """The champion's model, its performance estimator (or None) and why it has none."""
        model = self.registry.load_model(champion.version)
        if not self.plan.settings.quality.estimate.enabled:
            return model, None, "estimates are off (quality.estimate.enabled)"
        return (model, *self.champion_estimator(champion, ref, model))

    def champion_estimator(
        self, champion: Champion, ref: ReferenceHandle, model: Any
    ) -> tuple[Any, str]:
        """The champion's estimator: stored with its version at promotion (cached in-process
        by the registry), else fitted once from its training window and stored; (None, why)
        when it has none and its window is not at hand."""
        plan = self.plan
        found = self.registry.load_estimator(champion.version)
        if not fits(plan, found):
            found = None
        elif is_current(found):
            return found, ""

        def kept(why: str) -> tuple[Any, str]:
            # An estimator of an older kind (see ``is_current``) serves until a new one is fitted.
            return (found, "") if found is not None else (None, why)

        key = (plan.name, champion.version, ref.sha256, plan.metric)
        if key in _NO_ESTIMATOR:
            return kept(_NO_ESTIMATOR[key])
        if not champion.reference or ref.version == "shipped":  # its window is not stored
            why = f"champion v{champion.version} has no estimator and its training window is not stored"
            _NO_ESTIMATOR[key] = why
            return kept(why)
        what = "an estimator of an older kind" if found is not None else "no estimator"
        log.info("champion v%s has %s: fitting one from its holdout", champion.version, what)
        fitted = refit_estimator(plan, self.references.frame(ref), model)
        if fitted is None:
            _NO_ESTIMATOR[key] = "its holdout could not fit one (see the log)"
            return kept(_NO_ESTIMATOR[key])
        self.registry.store_estimator(champion.version, fitted)
        return fitted, ""

    def served_baseline(
        self, champion: Champion, trained: pd.DataFrame, frame: pd.DataFrame
    ) -> ServedBaseline:
        """The champion's realised baseline (``quality.baseline: served``), from the history it
        has served since its training data (or the holdout of a challenge it won) ended."""
        ts = self.plan.settings.model.timestamp
        if not ts or ts not in trained.columns or ts not in frame.columns or trained.empty:
            return ServedBaseline(note="no timestamp to place its service in time")
        since = trained[ts].max()
        if champion.validated_until:
            since = max(since, pd.Timestamp(champion.validated_until))
        newest = frame[ts].max()
        days = max(0.0, (newest - since) / pd.Timedelta(days=1))
        rows = self.history.rows(days=days)
        q = self.plan.settings
        whole = served_baseline(rows, champion.version, since, newest, q.model, q.quality)
        segments = {
            self.plan.segment_name((col, str(value))): served_baseline(
                group, champion.version, since, newest, q.model, q.quality
            )
            for col in q.model.segments
            if col in rows.columns
            for value, group in rows.groupby(rows[col].astype(str), sort=True)
        }
        return replace(whole, segments=segments)

    def recent_history(self, hours: float | None = None) -> pd.DataFrame:
        """History rows of the newest ``hours`` (default: the quality lookback,
        ``quality.lookback_hours``)."""
        hours = hours or self.plan.settings.quality.lookback_hours or 0
        rows = self.history.rows(days=hours / 24)
        return newest_hours(rows, self.plan.settings.model.timestamp, hours)

    def served_hours(self, batch: Batch) -> float | None:
        """Hours of history the estimate's served calibration needs (``quality.estimate.served``):
        the periods of the batch's length it replays (3 x ``max_periods``); None without
        timestamps."""
        times = batch_times(self.plan, batch)
        if not len(times):
            return None
        return 24 * read_days(self.plan, period_length(self.plan, times))

    def block_judging(self, batch: Batch, ref: ReferenceHandle) -> BlockJudging:
        """The reference's block profile and each horizon's thresholds (cached per span); with
        ``model.segments``, each segment's too, every verdict at its share of the rate."""
        step, plan = self.steps, self.plan
        profile = step("load reference profile", self.references.block_profile, ref, retry=True)
        segments: list[Segment] = []
        rate = None
        if plan.settings.model.segments and batch.summary is None:
            frame = step("load reference", self.references.frame, ref, retry=True)
            segments = plan.segments(frame)
            rate = plan.segment_rate(len(segments))
        spans = plan.spans(time_frame(plan, batch))
        thresholds = tuple(
            step(
                f"calibrate thresholds {span_label(span)}",
                self.thresholds.block_thresholds,
                ref,
                span,
                rate,
                retry=True,
            )
            for span in spans
        )
        judged = tuple(
            SegmentJudging(
                seg,
                step(
                    f"load reference profile {seg[0]}={seg[1]}",
                    self.references.block_profile,
                    ref,
                    seg,
                    retry=True,
                ),
                tuple(
                    step(
                        f"calibrate thresholds {span_label(span)} {seg[0]}={seg[1]}",
                        self.thresholds.block_thresholds,
                        ref,
                        span,
                        rate,
                        seg,
                        retry=True,
                    )
                    for span in spans
                ),
            )
            for seg in segments
        )
        return BlockJudging(profile, thresholds, ref.sha256[:16], judged)

    def retrain(
        self, files: list[str], reason: str, key: str, stale: bool = False
    ) -> RetrainOutcome:
        """Challenger vs champion on the same holdout; the alias moves last, only if it wins.

        Order matters for atomicity: the challenger is trained, scored, logged and registered
        first; a failure anywhere before the promotion leaves the champion (and so the drift
        reference) as it was. ``key`` makes every write findable on a retry.
        """
        step, plan, started = self.steps, self.plan, time.time()
        champion = step("read champion", self.registry.champion, retry=True)
        window = step("build training window", self.training_window, files, retry=True)
        model = None
        if champion is not None:
            model = step(
                "load champion model", self.registry.load_model, champion.version, retry=True
            )
        c = step("train and score challenger", challenge, plan, window, model, reason, stale)
        self.reporter.report_challenge(c)
        checkpoint("after-train")
        stored = step("store training window", self.references.store, c.window, key, retry=True)
        run_id, version = step(
            "log and register challenger", self.registry.log_challenger, c, stored, key, retry=True
        )
        checkpoint("after-log")
        step("record decision", self.registry.record_verdict, run_id, c.verdict, retry=True)
        checkpoint("after-decision")
        if c.verdict.promote:
            was = champion.version if champion else None  # refused if a rollback moved it since
            refused = step("move champion alias", self.registry.promote, version, was, retry=True)
            if refused:
                c = replace(
                    c, verdict=c.verdict.model_copy(update={"promote": False, "reason": refused})
                )
                # The outcome names the champion serving now (the one the rollback chose).
                champion = step("read champion", self.registry.champion, retry=True)
            checkpoint("after-promote")
        elif champion is not None and c.champion_scores:
            # The champion held its own against a fresh model on the newest data: its score
            # there is its new normal, so the same evidence does not retrain it every tick.
            ts = plan.settings.model.timestamp
            until = str(c.holdout[ts].max()) if ts and ts in c.holdout.columns else None
            step(
                "re-baseline champion",
                self.registry.rebaseline,
                champion.version,
                c.champion_scores,
                until,
                c.champion_segments,
                retry=True,
            )
        outcome = retrain_outcome(plan, c, run_id, version, champion, stored, started)
        step("retrain report", self.reporter.report_retrain, outcome)
        return outcome

    def training_window(self, files: list[str]) -> pd.DataFrame:
        """The last ``retrain.window_days`` of history, this run's files included, topped up
        with the shipped reference while history is shorter than the window."""
        s = self.plan.settings
        rows = self.history.rows(pending=files, days=s.retrain.window_days)
        shipped = None
        if s.retrain.include_reference:
            shipped = self.references.frame(self.references.locate(None))
        return training_window(rows, shipped, s)
