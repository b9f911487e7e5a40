"""The monitor flow: one check of the newest data against the champion's reference.

Steps: load settings, read the champion, load the reference profile (cached by content hash),
load the new batch, validate it, feature drift, champion quality and prediction drift, decide,
report; then either stop (Completed "no new data" / "no drift") or run the retrain subflow.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Completed

from driftwatch.config import Settings
from driftwatch.engine.calibration import Calibration
from driftwatch.engine.drift import ColumnDrift, DriftResult, ReferenceProfile
from driftwatch.errors import BatchError
from driftwatch.faults import checkpoint
from driftwatch.model.quality import QualityResult
from driftwatch.monitor import steps as steps
from driftwatch.monitor.result import Decision, MonitorResult, RetrainOutcome, decide
from driftwatch.orchestration.retrain_flow import retrain_flow
from driftwatch.orchestration.tasks import (
    champion_task,
    load_model_task,
    load_settings_task,
    with_retries,
)
from driftwatch.report.html import write_html
from driftwatch.report.text import artifact_key, column_rows, markdown, report_lines
from driftwatch.store import lock
from driftwatch.store.references import (
    ActiveReference,
    active_reference,
    load_reference,
    profile_key,
)
from driftwatch.store.registry import ChampionInfo, Registry


@task(name="locate reference", cache_policy=NO_CACHE)
def reference_task(settings: Settings, champion: ChampionInfo | None) -> ActiveReference:
    return active_reference(settings, champion.reference if champion else None)


@task(
    name="load reference profile",
    # Keyed by the reference's content hash (and the column spec): hourly runs reuse the profile.
    cache_key_fn=lambda ctx, params: params["key"],
    persist_result=True,
)
def profile_task(settings: Settings, ref: ActiveReference, key: str) -> ReferenceProfile:
    return steps.fit_profile(settings, ref)


@task(name="load batch", cache_policy=NO_CACHE)
def load_batch_task(settings: Settings, batch: str | None, run_id: str | None) -> steps.Batch:
    return steps.collect_batch(settings, batch, run_id)


@task(name="calibrate thresholds", cache_policy=NO_CACHE)
def calibration_task(
    settings: Settings, ref: ActiveReference, batch: steps.Batch
) -> Calibration | None:
    return steps.drift_calibration(settings, ref, batch, get_run_logger())


@task(name="feature drift", cache_policy=NO_CACHE)
def drift_task(
    settings: Settings,
    profile: ReferenceProfile,
    batch: steps.Batch,
    calibration: Calibration | None,
) -> DriftResult:
    return steps.feature_drift(settings, profile, batch, calibration)


@task(name="champion quality", cache_policy=NO_CACHE)
def quality_task(
    settings: Settings, model: Any, champion: ChampionInfo, ref: ActiveReference, batch: steps.Batch
) -> tuple[QualityResult, ColumnDrift | None]:
    q = steps.champion_quality(settings, model, champion.baseline, batch)
    pred = None
    if settings.drift.prediction_drift:
        pred = steps.prediction_drift(settings, model, load_reference(settings, ref), batch)
    return q, pred


@task(name="evidently html report", cache_policy=NO_CACHE)
def html_task(
    settings: Settings, model: Any, ref: ActiveReference, batch: steps.Batch, stem: str
) -> str:
    path = settings.paths.state / "reports" / f"{stem}.html"
    return str(write_html(settings, load_reference(settings, ref), batch.frame, model, path))


@task(name="report", cache_policy=NO_CACHE)
def report_task(settings: Settings, result: MonitorResult) -> None:
    log = get_run_logger()
    for line in report_lines(result):
        log.warning(line) if line.startswith("warning") else log.info(line)
    if settings.report.artifacts:
        key = artifact_key(settings)
        create_markdown_artifact(
            key=f"{key}-drift-summary",
            markdown=markdown(result),
            description=result.decision.reason,
        )
        if result.html_report:
            create_link_artifact(
                key=f"{key}-evidently-report",
                link=Path(result.html_report).as_uri(),
                link_text=f"Evidently report {Path(result.html_report).name}",
                description="Evidently data drift (and quality) report of this run",
            )
        if result.drift is not None:
            create_table_artifact(
                key=f"{key}-drift-columns",
                table=column_rows(result.drift),
                description=result.drift.summary(),
            )


@task(name="record result", cache_policy=NO_CACHE)
def record_task(settings: Settings, result: MonitorResult) -> str:
    """Stored JSON (for `driftwatch report`) and MLflow metrics (for trends in its UI)."""
    path = result.save(settings.paths.state / "runs")
    Registry(settings).log_monitor(
        steps.monitor_metrics(result),
        params={"files": ",".join(result.files)[:500], "outcome": result.outcome},
        tags={"driftwatch.outcome": result.outcome, "driftwatch.prefect_run": result.run_id},
        artifacts=[result.html_report] if result.html_report else [],
    )
    return str(path)


@flow(name="driftwatch-monitor", validate_parameters=True)
def monitor_flow(config_path: str = "config.yaml", batch: str | None = None) -> Any:
    """Check the newest data; retrain when features drift or the champion's quality degrades.

    ``batch``: one file to check. Without it, every pending file in the landing dir is taken
    (oldest first), under a lock so two monitors never work on the same landing dir.
    """
    started = time.time()
    log = get_run_logger()
    settings = load_settings_task(config_path)
    run_id = str(flow_run.id) if flow_run.id else None
    with lock.exclusive(steps.lock_path(settings)):
        batch_data: steps.Batch | None = None
        try:
            champion = with_retries(champion_task, settings)(settings)
            ref = with_retries(reference_task, settings)(settings, champion)
            batch_data = with_retries(load_batch_task, settings)(settings, batch, run_id)
            drift = quality = prediction = model = None
            if batch_data.rows and champion is not None:
                model = with_retries(load_model_task, settings)(settings, champion.version)
                quality, prediction = quality_task(settings, model, champion, ref, batch_data)
            if batch_data.rows:
                profile = profile_task(settings, ref, profile_key(settings, ref))
                calibration = calibration_task(settings, ref, batch_data)
                drift = drift_task(settings, profile, batch_data, calibration)
            decision: Decision = decide(
                drift, quality, prediction, champion is not None, batch_data.new_rows
            )
            result = steps.new_result(
                settings,
                batch_data,
                decision,
                drift,
                quality,
                prediction,
                champion.version if champion else None,
                ref.version,
                started,
                run_id,
            )
            if settings.report.html and batch_data.rows:
                result.html_report = html_task(settings, model, ref, batch_data, result.stem)
            report_task(settings, result)
            retrain: RetrainOutcome | None = None
            if decision.retrain:
                outcome = retrain_flow(config_path, batch_data.all_files, decision.reason)
                retrain = RetrainOutcome(**outcome)
            result = steps.complete(result, retrain, started)
            checkpoint("before-record")
            with_retries(record_task, settings)(settings, result)
            steps.finish_batch(settings, batch_data, result.outcome)
        except BaseException as exc:
            steps.fail_batch(settings, batch_data, exc)
            raise
    if batch_data.rejected:
        raise BatchError(", ".join(batch_data.rejected), "; ".join(batch_data.rejected.values()))
    log.info("outcome: %s (%.1f s)", result.outcome, result.seconds)
    message = {
        "no-data": "no new data",
        "no-drift": f"no drift: {decision.reason.removeprefix('no drift; ')}",
    }.get(result.outcome, f"{result.outcome}: {decision.reason}")
    return Completed(message=message, data=result.to_dict())
