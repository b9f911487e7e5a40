"""Renderings of drift and monitor results: log lines, a text table, markdown, table rows."""

from __future__ import annotations

from typing import Any

from driftwatch.engine.drift import ColumnDrift, DriftResult
from driftwatch.files import shown
from driftwatch.monitor.result import MonitorResult, RetrainOutcome
from driftwatch.report import tables


def _reference(result: MonitorResult) -> str:
    """The reference by what it is: the user's ``paths.reference`` file until a model exists
    (stored as version "shipped"), then the id of the training window it is."""
    version = result.reference_version
    if version == "shipped":
        return "paths.reference (the first reference)"
    return version or "-"


def _num(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}g}"


def column_rows(drift: DriftResult) -> list[dict[str, Any]]:
    return [
        {
            "column": c.column,
            "type": c.kind,
            "test": c.test or "-",
            "score": _num(c.score),
            "threshold": _num(c.threshold),
            "drifted": {True: "DRIFT", False: "ok", None: "n/a"}[c.drifted],
            "rows": c.rows_current,
            "note": c.note,
        }
        for c in drift.columns
    ]


def drift_table(drift: DriftResult) -> str:
    """A plain table: readable in a terminal and in the Prefect UI's log view."""
    headers = ["column", "type", "test", "score", "threshold", "drifted", "rows", "note"]
    t = tables.table(*headers, right=("score", "threshold", "rows"))
    for r in column_rows(drift):
        t.add_row(*(str(r[h]) for h in headers))
    verdict = {
        "drift": "DATASET DRIFT",
        "no_drift": "no dataset drift",
        "no_verdict": "NO VERDICT (nothing to judge)",
    }[drift.verdict]
    return (
        f"{tables.render(t)}\n{verdict}: {drift.summary()};"
        f" {drift.rows_current} rows vs {drift.rows_reference} reference rows"
    )


def prediction_line(p: ColumnDrift | None) -> str:
    if p is None:
        return "prediction drift: not computed (no champion)"
    verdict = {True: "DRIFT", False: "ok", None: "n/a"}[p.drifted]
    return f"prediction drift: {p.test} score {_num(p.score)} threshold {_num(p.threshold)} -> {verdict}"


def report_lines(result: MonitorResult) -> list[str]:
    """The drift report as log records: a header, the table, the verdicts, the outcome."""
    lines = [
        f"batch: {result.window or f'{len(result.files)} file(s)'}, {result.rows} rows,"
        f" {result.labelled_rows} labelled;"
        f" champion v{result.champion_version or '-'}, reference {_reference(result)}"
    ]
    if len(result.horizons) > 1:
        lines += horizon_lines(result)
    if result.drift is not None:
        head = f"feature drift per column ({result.drift.span})" if result.drift.span else ""
        lines.append((head or "feature drift per column") + ":\n" + drift_table(result.drift))
    if result.prediction is not None or result.drift is not None:
        lines.append(prediction_line(result.prediction))
    if result.quality is not None:
        lines.append(f"quality: {result.quality.reason}")
    lines += [q.line() for q in result.segment_quality]
    if result.estimated is not None:
        lines.append(estimated_line(result))
    lines += [e.line() for e in result.segment_estimated]
    if result.support:
        lines.append(support_line(result))
    lines += result.labels
    for w in result.warnings:
        lines.append(f"warning: {w}")
    if result.html_report:
        lines.append(f"report page: {result.html_report}")
    if result.evidently_report:
        lines.append(f"Evidently's page (its own rule, not the verdict): {result.evidently_report}")
    lines.append(f"outcome: {result.outcome}: {result.decision.reason}")
    if result.retrain is not None:
        lines.append(retrain_line(result))
    return lines


def support_line(result: MonitorResult) -> str:
    """``retrain.support_columns``: each column's share of rows beyond the champion's range,
    and the span judged (the batch, or the newest ``retrain.support_hours``)."""
    shares = ", ".join(f"{c} {v:.1%}" for c, v in sorted(result.support.items()))
    span = f" of {result.support_span}" if result.support_span else ""
    return f"support: rows{span} beyond the champion's training range: {shares}"


def estimated_line(result: MonitorResult) -> str:
    """The estimate beside the realised metric when labels exist, so the two can be compared:
    ``estimated rmse 12.3 [11.1, 13.6] on 1,234 rows (reliable): ...; realised rmse 12.9 on
    1,100 labelled rows``."""
    e, q = result.estimated, result.quality
    assert e is not None
    line = e.line()
    if q is not None and q.value is not None and q.metric == e.metric:
        line += f"; realised {q.metric} {q.value:.4g} on {q.labelled_rows:,} labelled rows"
    return line


def horizon_lines(result: MonitorResult) -> list[str]:
    """One line per horizon judged at this tick (the table below is the alarming one)."""
    return [verdict_line(h) for h in result.horizons]


def verdict_line(h: DriftResult) -> str:
    """A horizon's (or, without time blocks, the batch's) dataset verdict in one line."""
    word = {"drift": "DRIFT", "no_drift": "ok", "no_verdict": "not judged"}[h.verdict]
    cols = f" ({', '.join(h.drifted_columns)})" if h.drifted_columns else ""
    where = (f"horizon {h.span}" if h.span else "dataset") + (
        f" segment {h.segment}" if h.segment else ""
    )
    return f"{where}: {word}{cols}: {h.summary()}; {h.rows_current} rows"


def retrain_line(result: MonitorResult) -> str:
    r = result.retrain
    assert r is not None
    return (
        f"retrain: challenger v{r.challenger_version} {r.metric} {_num(r.challenger_score)} vs "
        f"champion {_num(r.champion_score)} on the same {r.holdout_rows}-row holdout -> "
        f"{'PROMOTED' if r.promoted else 'kept champion'} ({r.reason})"
    )


def markdown(result: MonitorResult) -> str:
    lines = [
        f"# driftwatch monitor: {result.outcome}",
        "",
        f"**{result.decision.reason}**",
        "",
        f"- batch: {result.window or f'{len(result.files)} file(s)'}, {result.rows} rows"
        f" ({result.labelled_rows} labelled)",
        f"- champion: v{result.champion_version or '-'}; reference: {_reference(result)}",
    ]
    if result.quality is not None:
        lines.append(f"- quality: {result.quality.reason}")
    lines += [f"- {q.line()}" for q in result.segment_quality]
    if result.estimated is not None:
        lines.append(f"- {estimated_line(result)}")
    lines += [f"- {e.line()}" for e in result.segment_estimated]
    if result.support:
        lines.append(f"- {support_line(result)}")
    lines.append(f"- {prediction_line(result.prediction)}")
    if result.retrain is not None:
        lines.append(f"- {retrain_line(result)}")
    if len(result.horizons) > 1:
        lines += [f"- {line}" for line in horizon_lines(result)]
    elif result.drift is not None:
        lines.append(f"- {verdict_line(result.drift)}")
    if result.html_report:
        # A path as text, never a file:// link: browsers refuse those from the Prefect UI, and
        # with an MLflow server the run also gets an http link artifact to the page.
        lines.append(f"- report page (on the machine that ran it): `{shown(result.html_report)}`")
    if result.drift is not None:
        lines += [
            "",
            "| column | type | test | score | threshold | drifted |",
            "|---|---|---|---|---|---|",
        ]
        for r in column_rows(result.drift):
            lines.append(
                f"| {r['column']} | {r['type']} | {r['test']} | {r['score']} | {r['threshold']} | {r['drifted']} |"
            )
    return "\n".join(lines)


def batch_row(result: MonitorResult) -> dict[str, Any]:
    """One row of the demo's per-batch table."""
    q = result.quality
    return {
        "files": ",".join(shown(f.rsplit("/", 1)[-1]) for f in result.files) or "-",
        "rows": result.rows,
        # Columns that count towards the alarm (report-only columns are not in n_tested).
        "drifted": f"{result.drift.n_drifted}/{result.drift.n_tested}" if result.drift else "-",
        "trigger": _trigger(result),
        "rmse": _num(q.value) if q else "-",
        "baseline": _num(q.baseline) if q else "-",
        "outcome": result.outcome,
        "champion": f"v{result.champion_version}" if result.champion_version else "-",
    }


def _trigger(result: MonitorResult) -> str:
    """What started the retrain, from the decision's triggers (data, not re-parsed text)."""
    order = ["bootstrap", "drift", "support", "quality", "estimated", "age", "schedule"]
    return "+".join(t for t in order if t in result.decision.triggers) or "-"


def retrain_markdown(o: RetrainOutcome) -> str:
    challenger, champion = o.challenger_metrics, o.champion_metrics
    lines = [
        f"# retrain: {'challenger PROMOTED' if o.promoted else 'champion kept'}",
        "",
        f"**{o.reason}**",
        "",
        f"holdout: {o.holdout_rows} most recent labelled rows; trained on {o.train_rows} rows",
        "",
        f"| metric | challenger v{o.challenger_version} | champion {('v' + o.previous_version) if o.previous_version else '-'} |",
        "|---|---|---|",
    ]
    for k, v in challenger.items():
        c = (champion or {}).get(k)
        lines.append(f"| {k} | {v:.4g} | {'-' if c is None else f'{c:.4g}'} |")
    return "\n".join(lines)
