"""The driftwatch events a run gives rise to, built from its result objects: plain Python, no
Prefect. The names and payloads are a stable contract (README, "Events"): users write Prefect
automations and webhook receivers against them, so a field is added, never renamed or removed.

Every event concerns one monitored model (resource ``driftwatch.model.<name>``). Events that
describe a condition which lasts (drift, degraded quality, a data incident, failing runs) carry an
``incident`` key: the server-less notifier sends one message when it opens and one when it ends,
not one per tick while it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from driftwatch.config import QualitySettings
from driftwatch.engine.drift import DriftResult
from driftwatch.model.quality import EstimatedQuality, QualityResult, better
from driftwatch.monitor.result import MonitorResult, RetrainOutcome

PREFIX = "driftwatch"
DRIFT = "driftwatch.drift.detected"
QUALITY = "driftwatch.quality.degraded"
DATA = "driftwatch.data.incident"
PROMOTED = "driftwatch.model.promoted"
KEPT = "driftwatch.model.kept"
ROLLED_BACK = "driftwatch.model.rolled-back"
FAILED = "driftwatch.monitor.failed"
# A run that completed: the heartbeat the "monitor went silent" automation expects.
COMPLETED = "driftwatch.monitor.completed"
ALL = (DRIFT, QUALITY, DATA, PROMOTED, KEPT, ROLLED_BACK, FAILED, COMPLETED)

# Incident kinds (the de-duplication keys of the server-less notifier), by event.
INCIDENTS = {DRIFT: "drift", QUALITY: "quality", DATA: "data", FAILED: "failed"}


@dataclass(frozen=True)
class DriftwatchEvent:
    """One event: its name, the model it concerns, its payload and a line for people."""

    event: str
    model: str
    payload: dict[str, Any]
    summary: str
    related_run: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def resource_id(self) -> str:
        return f"{PREFIX}.model.{self.model}"

    @property
    def incident(self) -> str | None:
        """The lasting condition this event reports (None: a one-off, like a promotion)."""
        return INCIDENTS.get(self.event)


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def _shown(score: float | None) -> str:
    """A score in a message; "undefined" where the metric could not be computed (ROC AUC on a
    holdout with one class)."""
    return "undefined" if score is None else f"{score:.4g}"


def judged_kinds(result: MonitorResult, trigger: str = "realised") -> set[str]:
    """Which incident kinds this run could have seen, so only those can end: drift when a
    verdict was reached, quality when a verdict on it was, data whenever rows were read. A run
    with no verdict (too few rows or labels) says nothing about an open incident. ``trigger``
    (``quality.trigger``): with estimated or either, a verdict on the estimate counts too."""
    kinds = {"data"} if result.rows > 0 else set()
    verdicts = [h.verdict for h in result.horizons] or (
        [result.drift.verdict] if result.drift is not None else []
    )
    if any(v != "no_verdict" for v in verdicts):
        kinds.add("drift")
    if result.quality is not None and result.quality.degraded is not None:
        kinds.add("quality")
    if any(q.degraded is not None for q in result.segment_quality):
        kinds.add("quality")
    e = result.estimated
    realised_verdict = result.quality is not None and result.quality.degraded is not None
    if (trigger == "estimated" and e is not None and e.degraded is not None) or (
        # either: only when the labels gave no verdict, and only a reliable estimate that says
        # degraded or is no worse than its baseline; one that is merely inconclusive (its
        # interval holds the baseline) must not end an incident the realised metric opened.
        trigger == "either"
        and e is not None
        and e.degraded is not None
        and e.reliable
        and not realised_verdict
        and (e.degraded or not _worse(e))
    ):
        kinds.add("quality")
    return kinds


def _worse(e: EstimatedQuality) -> bool:
    """The estimate's point value is worse than its baseline (by any amount)."""
    if e.baseline is None or e.value is None:
        return True
    return better(e.metric, e.baseline, e.value, 0.0)  # the baseline beats the estimate


def drift_payload(result: MonitorResult, drift: DriftResult) -> dict[str, Any]:
    """The horizon (or window) that alarmed, its drifted columns with score and threshold, the
    rule and the false-alarm rate it holds."""
    alarmed = [h.span for h in result.horizons if h.dataset_drift and h.span and not h.segment]
    segments = sorted({h.segment for h in result.horizons if h.dataset_drift and h.segment})
    return {
        "run_id": result.run_id,
        "files": result.files,
        "start": result.start,
        "end": result.end,
        "horizon": drift.span,
        "horizons_alarmed": alarmed,
        # model.segments: the segment this verdict is about (None: the whole batch), and every
        # segment that alarmed at this tick.
        "segment": drift.segment,
        "segments_alarmed": segments,
        "window": result.window,
        "rule": drift.method,
        "rate": drift.alpha,
        "drift_share": drift.drift_share,
        "share": drift.share,
        "n_drifted": drift.n_drifted,
        "n_tested": drift.n_tested,
        "rows": drift.rows_current,
        "columns": [
            {
                "column": c.column,
                "test": c.test,
                "score": _round(c.score),
                "threshold": _round(c.threshold),
                "report_only": c.column in drift.report_only,
            }
            for c in drift.columns
            if c.drifted
        ],
        "description": drift.description,
        "decision": result.decision.action,
    }


def quality_payload(
    result: MonitorResult, tolerance: QualitySettings, q: QualityResult | None = None
) -> dict[str, Any]:
    """``q``: the verdict the event is about (default: the whole batch's)."""
    q = q or result.quality
    assert q is not None
    return {
        "run_id": result.run_id,
        "metric": q.metric,
        "value": _round(q.value),
        "baseline": _round(q.baseline),
        "baseline_kind": tolerance.baseline,
        "tolerance": {
            "relative": tolerance.relative_tolerance,
            "absolute": tolerance.absolute_tolerance,
        },
        # Labels arrived: a realised metric ("estimated": estimated_payload).
        "source": "realised",
        "labelled_rows": q.labelled_rows,
        "champion_version": result.champion_version,
        "reason": q.reason,
        # model.segments: the segment this verdict is about (None: the whole batch), every
        # segment degraded at this tick, and the segment verdict's test (p-value, its rate).
        "segment": q.segment,
        "segments_degraded": sorted(str(x.segment) for x in result.segment_quality if x.degraded),
        "p_value": _round(q.p_value),
        "rate": q.alpha,
    }


def estimated_payload(
    result: MonitorResult, tolerance: QualitySettings, e: EstimatedQuality | None = None
) -> dict[str, Any]:
    """The quality event of an estimate (no labels): its interval and reliability too. ``e``:
    the estimate the event is about (default: the whole batch's)."""
    e = e or result.estimated
    assert e is not None
    return {
        "run_id": result.run_id,
        "metric": e.metric,
        "value": _round(e.value),
        "low": _round(e.low),
        "high": _round(e.high),
        "level": e.level,
        "baseline": _round(e.baseline),
        "baseline_kind": "estimator_holdout",
        "tolerance": {
            "relative": tolerance.relative_tolerance,
            "absolute": tolerance.absolute_tolerance,
        },
        "source": "estimated",
        "rows": e.rows,
        "reliable": e.reliable,
        "champion_version": result.champion_version,
        "reason": e.reason,
        "segment": e.segment,
        "segments_degraded": sorted(str(x.segment) for x in result.segment_estimated if x.degraded),
    }


def data_problems(result: MonitorResult) -> list[dict[str, Any]]:
    """What went wrong with the data itself: files rejected (schema, unreadable, too large) or
    quarantined, a batch of files with no rows, a jump in the share of missing values."""
    problems: list[dict[str, Any]] = []
    for path, reason in sorted(result.rejected.items()):
        quarantined = any(w.startswith("quarantined:") and path in w for w in result.warnings)
        # The reason is the reader's one line; a column named in it is a schema problem.
        schema = "schema" in reason.lower() or "column" in reason.lower()
        problems.append(
            {
                "kind": "schema_error" if schema else "rejected",
                "file": path,
                "reason": reason,
                "quarantined": quarantined,
            }
        )
    if result.files and result.rows == 0 and not result.rejected:
        problems.append({"kind": "empty", "files": result.files, "reason": "no rows"})
    drifts = result.horizons or ([result.drift] if result.drift is not None else [])
    seen: set[str] = set()
    for d in drifts:
        for c in d.columns:
            if c.drifted and (c.test or "") == "missing" and c.column not in seen:
                seen.add(c.column)
                problems.append(
                    {
                        "kind": "missing_values",
                        "column": c.column,
                        "score": _round(c.score),
                        "threshold": _round(c.threshold),
                        "horizon": d.span,
                    }
                )
    return problems


def retrain_payload(result: MonitorResult | None, r: RetrainOutcome) -> dict[str, Any]:
    return {
        "run_id": result.run_id if result is not None else None,
        "trigger": sorted(result.decision.triggers) if result is not None else [],
        "metric": r.metric,
        "challenger_score": _round(r.challenger_score),
        "champion_score": _round(r.champion_score),
        "challenger_version": r.challenger_version,
        "champion_version": r.champion_version,
        "previous_version": r.previous_version,
        "train_rows": r.train_rows,
        "holdout_rows": r.holdout_rows,
        "reason": r.reason,
    }


def run_events(
    result: MonitorResult, model: str, quality: QualitySettings
) -> list[DriftwatchEvent]:
    """Every event of one completed monitor run, in the order they happened."""
    run = result.run_id
    out: list[DriftwatchEvent] = []
    problems = data_problems(result)
    if problems:
        what = "; ".join(
            f"{p['kind']}: {p.get('file') or p.get('column') or ', '.join(p.get('files', []))}"
            for p in problems
        )
        out.append(
            DriftwatchEvent(
                DATA, model, {"run_id": run, "problems": problems}, f"data incident: {what}", run
            )
        )
    d = result.drift
    if d is not None and d.dataset_drift:
        cols = ", ".join(d.drifted_columns) or "-"
        at = f" at {d.span}" if d.span else ""
        at += f" in segment {d.segment}" if d.segment else ""
        out.append(
            DriftwatchEvent(
                DRIFT,
                model,
                drift_payload(result, d),
                f"drift detected{at}: {d.description or cols} (drifted: {cols})",
                run,
            )
        )
    # The whole batch's verdict first, else the first degraded segment's (model.segments).
    realised = [q for q in [result.quality, *result.segment_quality] if q is not None]
    estimates = [e for e in [result.estimated, *result.segment_estimated] if e is not None]
    bad = next((q for q in realised if q.degraded), None)
    worse = next((e for e in estimates if e.degraded), None)
    if bad is not None:
        where = f" in segment {bad.segment}" if bad.segment else ""
        out.append(
            DriftwatchEvent(
                QUALITY,
                model,
                quality_payload(result, quality, bad),
                f"quality degraded{where}: {bad.reason}",
                run,
            )
        )
    elif quality.trigger != "realised" and worse is not None:
        # The estimate is a verdict the config acts on (quality.trigger): an event as well.
        out.append(
            DriftwatchEvent(
                QUALITY,
                model,
                estimated_payload(result, quality, worse),
                f"quality degraded (estimated, no labels): {worse.line()}",
                run,
            )
        )
    if result.retrain is not None:
        r = result.retrain
        name = PROMOTED if r.promoted else KEPT
        verb = "promoted" if r.promoted else "kept (challenger lost)"
        line = (
            f"model {verb}: challenger v{r.challenger_version} {r.metric}="
            f"{_shown(r.challenger_score)} vs champion "
            + (
                f"v{r.previous_version} {_shown(r.champion_score)}"
                if r.previous_version is not None
                else "(none)"
            )
        )
        out.append(DriftwatchEvent(name, model, retrain_payload(result, r), line, run))
    out.append(
        DriftwatchEvent(
            COMPLETED,
            model,
            {
                "run_id": run,
                "outcome": result.outcome,
                "rows": result.rows,
                "files": result.files,
                "champion_version": result.champion_version,
            },
            f"monitor run completed: {result.outcome}",
            run,
        )
    )
    return out


def failed_event(model: str, run_id: str | None, state: str, message: str) -> DriftwatchEvent:
    return DriftwatchEvent(
        FAILED,
        model,
        {"run_id": run_id, "state": state, "message": message},
        f"monitor run {state.lower()}: {message}",
        run_id,
    )


def rolled_back_event(model: str, frm: str, to: str, reference: str | None) -> DriftwatchEvent:
    return DriftwatchEvent(
        ROLLED_BACK,
        model,
        {"from_version": frm, "to_version": to, "reference": reference},
        f"champion rolled back from v{frm} to v{to}",
    )
