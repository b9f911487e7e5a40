"""driftwatch's own HTML page of a monitor run: the verdict, rule and thresholds it judged with.

Rendered from the stored result alone (plus the model's spec for its name and target), so
``driftwatch report RUN --html`` writes the same page again, and it can never disagree with
the decision. Evidently's data-drift page cannot express driftwatch's verdict: its dataset rule
is a share of columns (0.5) and its thresholds are fixed per test, while driftwatch's are
calibrated per horizon (1h, 6h, 1D) on its own statistics; Evidently's page stays an optional
extra (``report.evidently``, :mod:`driftwatch.report.html`) under a banner that says so.

The page is one self-contained file of a few tens of KB: inline CSS, no script, no external
resource, so it renders in MLflow's sandboxed artifact preview and from a plain file. Templating
is jinja2 (installed with Prefect and MLflow; imported here only, when a page is written) with
autoescaping: column names and file names come from user data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftwatch.config import Settings
from driftwatch.engine.drift import ColumnDrift, DriftResult
from driftwatch.files import atomic_write_bytes
from driftwatch.model.quality import LOWER_IS_BETTER
from driftwatch.monitor.result import MonitorResult
from driftwatch.report.text import estimated_line

TEMPLATE = "page.html.j2"
METRIC_NAMES = {"rmse": "RMSE", "mae": "MAE", "roc_auc": "ROC AUC", "f1": "F1"}
VERDICT = {"drift": "DRIFT", "no_drift": "no drift", "no_verdict": "no verdict"}


@dataclass(frozen=True)
class ColumnRow:
    """One row of the per-column table, with what the severity bar needs."""

    column: str
    kind: str
    test: str
    score: str
    threshold: str
    verdict: str
    css: str
    rows: int
    note: str
    # score past threshold, as a multiple of it (> 1 drifted); None when nothing was judged
    severity: float | None
    bar: int  # width of the severity bar in percent (1 = the threshold at 50%)


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def num(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}g}"


def severity(c: ColumnDrift) -> float | None:
    """How far a column's score is past its threshold, as a multiple (1 = at the threshold).

    p-value tests drift when the p-value falls under the threshold, so their severity is the
    threshold over the p-value; distances and calibrated statistics drift above it."""
    if c.score is None or c.threshold is None or c.drifted is None:
        return None
    if c.p_value is not None and c.score == c.p_value:
        return c.threshold / max(c.score, 1e-300)
    if c.threshold == 0:
        return math.inf if c.score > 0 else 0.0
    return c.score / c.threshold


def column_rows(drift: DriftResult) -> list[ColumnRow]:
    """Drifted columns first, then by severity (most past, or nearest, its threshold first);
    columns with no verdict last."""

    def order(c: ColumnDrift) -> tuple[int, float, str]:
        s = severity(c)
        rank = 0 if c.drifted else (1 if c.drifted is False else 2)
        return rank, -(s if s is not None else -1.0), c.column

    out = []
    for c in sorted(drift.columns, key=order):
        s = severity(c)
        verdict = {True: "DRIFT", False: "ok", None: "n/a"}[c.drifted]
        report_only = c.column in drift.report_only
        out.append(
            ColumnRow(
                column=c.column,
                kind=c.kind,
                test=c.test or "-",
                score=num(c.score),
                threshold=num(c.threshold),
                verdict=verdict + (" (report only)" if c.drifted and report_only else ""),
                css={True: "bad", False: "ok", None: "na"}[c.drifted],
                rows=c.rows_current,
                note=c.note,
                severity=s,
                bar=0 if s is None else round(min(s, 2.0) * 50),
            )
        )
    return out


def horizon_rows(result: MonitorResult) -> list[dict[str, Any]]:
    """The dataset verdict of every horizon judged (one row without time blocks)."""
    judged = result.horizons or ([result.drift] if result.drift is not None else [])
    shown = shown_horizon(result)
    return [
        {
            "span": label(h),
            "verdict": VERDICT[h.verdict],
            "css": {"drift": "bad", "no_drift": "ok", "no_verdict": "na"}[h.verdict],
            "counted": f"{h.n_drifted}/{h.n_tested}",
            "drifted": ", ".join(h.drifted_columns) or "-",
            "rule": h.summary() or h.method,
            "method": h.method,
            "rate": num(h.alpha, 3) if h.alpha is not None else f"share >= {h.drift_share:g}",
            "rows": f"{h.rows_current} vs {h.rows_reference}",
            "shown": shown is not None and (h.span, h.segment) == (shown.span, shown.segment),
        }
        for h in judged
    ]


def label(h: DriftResult) -> str:
    """A verdict's name: its horizon, and its segment when it judged one (``1d origin=EWR``)."""
    return (h.span or "batch") + (f" {h.segment}" if h.segment else "")


def tick_verdict(result: MonitorResult) -> str | None:
    """The tick's dataset verdict over its horizons: drift when any horizon alarmed, no drift
    when one was judged and none alarmed, no verdict when none could be judged."""
    judged = result.horizons or ([result.drift] if result.drift is not None else [])
    verdicts = {h.verdict for h in judged}
    if not verdicts:
        return None
    return next(v for v in ("drift", "no_drift", "no_verdict") if v in verdicts)


def shown_horizon(result: MonitorResult) -> DriftResult | None:
    """The horizon whose columns the main table shows: the alarming one (``result.drift``),
    else the first that could be judged (a quiet 6h beats an empty newest hour)."""
    drift = result.drift
    if drift is None or drift.verdict != "no_verdict":
        return drift
    return next((h for h in result.horizons if h.verdict != "no_verdict"), drift)


def quality_rows(result: MonitorResult, metric: str) -> list[dict[str, str]]:
    """Every metric of the task: the champion on the batch (and lookback) and on its holdout;
    the configured metric first."""
    q = result.quality
    now = q.metrics if q is not None else {}
    holdout = result.champion_holdout
    names = sorted({*now, *holdout}, key=lambda m: (m != metric, m))
    return [
        {
            "metric": metric_name(m),
            "now": num(now.get(m)),
            "holdout": num(holdout.get(m)),
            "better": "lower is better" if LOWER_IS_BETTER.get(m, False) else "higher is better",
            "main": "main" if m == metric else "",
        }
        for m in names
    ]


def segment_rows(result: MonitorResult) -> list[dict[str, str]]:
    """One row per segment (``model.segments``): its realised verdict and its estimate."""
    estimates = {e.segment: e for e in result.segment_estimated}
    names = [q.segment for q in result.segment_quality]
    names += [e.segment for e in result.segment_estimated if e.segment not in names]
    quality = {q.segment: q for q in result.segment_quality}
    rows = []
    for name in names:
        q, e = quality.get(name), estimates.get(name)
        est = "-"
        if e is not None and e.value is not None:
            est = f"{num(e.value)} [{num(e.low)}, {num(e.high)}]" + (
                "" if e.reliable else " (unreliable)"
            )
        degraded = q.degraded if q is not None else None
        rows.append(
            {
                "segment": str(name),
                "value": num(q.value) if q else "-",
                "baseline": num(q.baseline) if q else "-",
                "rows": str(q.labelled_rows) if q else "-",
                "p_value": f"{q.p_value:.2g}" if q and q.p_value is not None else "-",
                "alpha": f"{q.alpha:.2g}" if q and q.alpha is not None else "-",
                "verdict": {True: "DEGRADED", False: "ok", None: "no verdict"}[degraded],
                "css": {True: "bad", False: "ok", None: "na"}[degraded],
                "estimated": est,
                "reason": q.reason if q else (e.reason if e else ""),
            }
        )
    return rows


def context(result: MonitorResult, settings: Settings) -> dict[str, Any]:
    """Everything the template shows, as plain values (the template only lays them out)."""
    spec = settings.model
    metric = result.quality.metric if result.quality is not None else settings.quality.metric
    drift = shown_horizon(result)
    verdict = tick_verdict(result)
    banner = {
        "drift": ("DRIFT", "bad"),
        "no_drift": ("no drift", "ok"),
        "no_verdict": ("no verdict", "na"),
        None: ("no data" if not result.rows else "no drift verdict", "na"),
    }[verdict]
    retrain = result.retrain
    retrain_rows = []
    if retrain is not None:
        champ = retrain.champion_metrics or {}
        retrain_rows = [
            {
                "metric": metric_name(k),
                "challenger": num(v),
                "champion": num(champ.get(k)),
                "main": "main" if k == retrain.metric else "",
            }
            for k, v in sorted(retrain.challenger_metrics.items(), key=lambda kv: kv[0] != metric)
        ]
    q = result.quality
    if not result.champion_holdout and settings.quality.baseline == "holdout" and q and q.baseline:
        # results stored before champion_holdout existed: the holdout baseline is that score
        result = result.model_copy(update={"champion_holdout": {q.metric: q.baseline}})
    return {
        "r": result,
        "model": spec.name,
        "task": spec.task,
        "target": spec.target,
        "timestamp": spec.timestamp,
        "banner": banner,
        "horizons": horizon_rows(result),
        "drift": drift,
        "columns": column_rows(drift) if drift is not None else [],
        "other_horizons": [
            {"span": label(h), "verdict": VERDICT[h.verdict], "columns": column_rows(h)}
            for h in result.horizons
            if h.columns and (drift is None or (h.span, h.segment) != (drift.span, drift.segment))
        ],
        "prediction": result.prediction,
        "prediction_verdict": None
        if result.prediction is None
        else {True: "DRIFT", False: "ok", None: "n/a"}[result.prediction.drifted],
        "num": num,
        "metric": metric_name(metric),
        "quality": q,
        "estimated": estimated_line(result) if result.estimated is not None else None,
        "quality_rows": quality_rows(result, metric),
        "segment_rows": segment_rows(result),
        "quality_css": {True: "bad", False: "ok", None: "na"}[q.degraded] if q else "na",
        "baseline_kind": settings.quality.baseline,
        "holdout_main": num(result.champion_holdout.get(metric)),
        "retrain": retrain,
        "retrain_rows": retrain_rows,
        "triggers": ", ".join(sorted(result.decision.triggers)) or "-",
        "evidently": Path(result.evidently_report).name if result.evidently_report else None,
    }


def render_page(result: MonitorResult, settings: Settings) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(TEMPLATE).render(**context(result, settings))


def write_page(result: MonitorResult, settings: Settings, path: Path) -> Path:
    """The page, written atomically (a reader never sees half of it)."""
    return atomic_write_bytes(path, render_page(result, settings).encode("utf-8"))


def page_path(settings: Settings, result: MonitorResult) -> Path:
    """Where a run's page goes: next to its stored JSON's name, under state/reports/."""
    return settings.paths.state / "reports" / f"{result.stem}.html"
