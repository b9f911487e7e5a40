"""Quality per segment (``model.segments``): realised and estimated, each against the segment's
own baseline.

A segment's error is not the whole batch's (long-haul routes from JFK, one airport's weather),
so it is compared with the champion's score on *that segment's* rows of its holdout, stored
with the model version at the challenge that promoted it (or re-baselined it). A champion stored
before segment baselines were gets no segment verdict, said so: its baselines would have to be
measured by retraining the challenger it was (``retrain.refit``: the deployed model has seen its
holdout), and its next challenge or re-baseline stores them anyway.

The verdict rule: degraded only when the segment is worse than its baseline beyond the
tolerance AND that excess is significant at the segment's share of the false-alarm rate
(``Plan.quality_segment_rate``: the Bonferroni split drift uses). Per-segment labelled counts
are small, and a tolerance alone alarms on a quiet segment whose metric merely wobbles: on the
even days of January-February 2013 (three origins, 10% tolerance, rate 0.05), of the 24 days
whose whole batch stayed within tolerance, 5 had a segment beyond it, none a significant one
(README, "Segments"). The whole batch's verdict keeps its rule (tolerance only): it is the one
every existing config and the replay figures rest on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.model.quality import (
    LOWER_IS_BETTER,
    EstimatedQuality,
    QualityResult,
    score,
    score_predictions,
    worst_allowed,
)
from driftwatch.model.quality import assess as assess_quality
from driftwatch.model.schema import labelled
from driftwatch.model.significance import worse_p_value
from driftwatch.monitor.estimated import estimate_quality
from driftwatch.monitor.plan import Plan, Segment

# The column of judged labels (see pipeline.judged_labels) holding the label and the prediction.
Y, P = "_y", "_p"


def segment_scores(plan: Plan, model: Any, holdout: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``model``'s scores on each segment's labelled rows of ``holdout`` (``origin=EWR`` ->
    metrics): the segment baselines. A segment with fewer labelled rows there than
    ``quality.min_labelled_rows`` gets none (a baseline on a few rows is noise)."""
    spec = plan.settings.model
    if not spec.segments or model is None:
        return {}
    rows = labelled(holdout, spec)
    least = plan.settings.quality.min_labelled_rows
    out: dict[str, dict[str, float]] = {}
    for col in spec.segments:
        for value, group in rows.groupby(rows[col].astype(str), sort=True):
            if len(group) >= least:
                out[plan.segment_name((col, str(value)))] = score(model, group, spec)
    return out


def segment_quality(
    plan: Plan,
    judged: pd.DataFrame,
    segments: Sequence[Segment],
    baselines: Mapping[str, dict[str, float]] | None,
    version: str,
    served: Mapping[str, Any] | None = None,
) -> tuple[QualityResult, ...]:
    """Each segment's realised verdict on its labelled rows of ``judged`` (the batch's and the
    lookback's, columns ``_y``, ``_p`` and the segment columns). ``baselines``: the champion's
    segment baselines (None: it has none); ``served`` (``quality.baseline: served``): each
    segment's :class:`driftwatch.monitor.baseline.ServedBaseline` instead."""
    s = plan.settings
    spec, metric, q = s.model, plan.metric, s.quality
    alpha = plan.quality_segment_rate(len(segments))
    out = []
    for seg in segments:
        name = plan.segment_name(seg)
        rows = plan.segment_rows(judged, seg)
        y, p = rows[Y].to_numpy(dtype=float), rows[P].to_numpy(dtype=float)
        metrics = score_predictions(y, p, spec)
        note = ""
        if served is not None:
            found = served.get(name)
            base = found.scores if found is not None else {}
            note = found.note if found is not None else "baseline: none served in this segment yet"
        elif baselines is None:
            base = {}
            note = (
                f"champion v{version} was stored before segment baselines were (its next"
                " challenge or re-baseline stores them)"
            )
        else:
            base = baselines.get(name, {})
            if not base:
                note = (
                    f"fewer than {q.min_labelled_rows} labelled rows of it in the champion's"
                    " holdout"
                )
        result = assess_quality(metrics, base, len(y), metric, q).model_copy(
            update={"segment": name, "alpha": alpha}
        )
        if result.baseline is None and result.degraded is None and note:
            first = result.reason if result.value is None or len(y) < q.min_labelled_rows else ""
            why = f"no baseline for this segment: {note}"
            result = result.model_copy(update={"reason": f"{first}; {why}" if first else why})
        elif result.degraded is not None:
            result = _significance(result, y, p, spec.task, q, note)
        out.append(result)
    return tuple(out)


def _significance(
    r: QualityResult, y: np.ndarray, p: np.ndarray, task: str, q: Any, note: str
) -> QualityResult:
    """The tolerance verdict made a tolerance-and-significance one (see the module's doc)."""
    assert r.value is not None and r.baseline is not None and r.alpha is not None
    worst = worst_allowed(r.metric, r.baseline, q)
    pv = worse_p_value(r.metric, y, p, worst, task)
    beyond = bool(r.degraded)
    degraded = beyond and pv < r.alpha
    worse_by = (r.value - r.baseline) * (1 if LOWER_IS_BETTER[r.metric] else -1)
    rel = worse_by / abs(r.baseline) if r.baseline else float("inf")
    how = f"+{rel:.1%} worse" if rel >= 0 else f"{-rel:.1%} better"
    if degraded:
        word = "degraded"
    elif beyond:
        word = "within tolerance: worse beyond it, but not significantly"
    else:
        word = "within tolerance"
    reason = (
        f"{r.metric} {r.value:.4g} vs baseline {r.baseline:.4g} ({how}; {word}, limit"
        f" {abs(worst - r.baseline):.4g}; p={pv:.2g} vs {r.alpha:.2g} on {r.labelled_rows:,}"
        " labelled rows)"
    )
    if note:
        reason += f" ({note})"
    return r.model_copy(update={"degraded": degraded, "p_value": pv, "reason": reason})


def segment_estimates(
    plan: Plan,
    estimator: Any,
    model: Any,
    frame: pd.DataFrame,
    predictions: pd.Series,
    why: str,
    segments: Sequence[Segment],
    baselines: Mapping[str, dict[str, float]] | None,
) -> tuple[EstimatedQuality, ...]:
    """The champion's estimator on each segment's rows of the batch (its interval from the
    segment's row count, its reliability from the segment's rows), against the segment's
    baseline: its score on the segment's rows of the holdout (the predictions the estimator
    learnt the errors of, for a promoted champion). A segment without rows in the batch is
    left out (nothing to estimate)."""
    out = []
    for seg in segments:
        name = plan.segment_name(seg)
        mask = (frame[seg[0]].astype(str) == seg[1]).to_numpy()
        if not mask.any():
            continue
        base = (baselines or {}).get(name, {}).get(plan.metric)
        e = estimate_quality(
            plan, estimator, model, frame[mask], predictions[mask], why, baseline=base
        )
        out.append(e.model_copy(update={"segment": name}))
    return tuple(out)
