"""The steps of one monitor run as plain functions; ``flows/monitor.py`` wraps each in a task.

Keeping the steps here means every one of them is tested without a Prefect server, and the flow
reads as the list of steps a person would describe.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from driftwatch.config import Settings
from driftwatch.engine.calibration import Calibration, calibration_for
from driftwatch.engine.drift import ColumnDrift, DriftDetector, DriftResult, ReferenceProfile
from driftwatch.errors import BatchError, DriftwatchError
from driftwatch.faults import checkpoint
from driftwatch.model.estimators import predict
from driftwatch.model.quality import QualityResult, assess, score
from driftwatch.monitor.result import Decision, MonitorResult, RetrainOutcome
from driftwatch.store.batches import read_batch, read_validated, validate_batch
from driftwatch.store.ledger import Ledger
from driftwatch.store.references import ActiveReference, detector_for, load_reference


def ledger_for(settings: Settings) -> Ledger:
    return Ledger(settings.paths.state / "ledger.sqlite")


def lock_path(settings: Settings) -> Path:
    return settings.paths.state / "locks" / "landing.lock"


@dataclass
class Batch:
    """The rows of this run and where they came from (files in the ledger, or one given file)."""

    frame: pd.DataFrame
    files: list[str]
    from_landing: bool
    rejected: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Rolling window: files processed earlier whose rows are judged again with the new ones.
    context_files: list[str] = field(default_factory=list)
    new_rows: int = 0
    window: str = ""

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def all_files(self) -> list[str]:
        return [*self.context_files, *self.files]


def collect_batch(settings: Settings, batch_path: str | None, flow_run_id: str | None) -> Batch:
    """Read the given file, or claim every pending landing file (oldest first) and read them.

    A landing file that cannot be read or fails the schema is recorded as failed in the ledger
    (quarantined after ``landing.max_attempts``) and left out; the others go on.
    """
    max_mb = settings.landing.max_file_mb
    if batch_path is not None:
        frame = read_batch(batch_path, max_mb)
        frame = (
            validate_batch(frame, settings.model, str(batch_path)) if len(frame.columns) else frame
        )
        return Batch(frame, [str(batch_path)], False, new_rows=len(frame), window="1 given file")
    ledger = ledger_for(settings)
    warnings = ledger.scan(settings.paths.landing, settings.landing.settle_seconds)
    files = [r.path for r in ledger.pending()][: settings.landing.max_files_per_run]
    ledger.claim(files, flow_run_id)
    checkpoint("after-claim")
    frames, rejected = [], {}
    for path in files:
        try:
            frame = read_validated(path, settings.model, max_mb)
            if not frame.empty:
                frames.append(frame)
        except BatchError as exc:
            rejected[path] = str(exc)
    if rejected:
        moved = ledger.fail(
            list(rejected),
            "; ".join(rejected.values()),
            settings.landing.max_attempts,
            settings.paths.state / "quarantine",
        )
        for path, err in rejected.items():
            warnings.append(f"{'quarantined' if path in moved else 'failed (will retry)'}: {err}")
    good = [f for f in files if f not in rejected]
    new_rows = sum(len(f) for f in frames)
    window = f"{len(good)} new file(s)"
    context: list[str] = []
    hours = settings.landing.window_hours
    if hours and new_rows:
        # An hourly batch can be ~40 rows: judge it together with what arrived in the last hours.
        cutoff = (datetime.now(UTC) - timedelta(hours=hours)).isoformat(timespec="seconds")
        for rec in ledger.records("done"):
            if rec.first_seen < cutoff or rec.path in files or not Path(rec.path).is_file():
                continue
            try:
                earlier = read_validated(rec.path, settings.model, max_mb)
            except BatchError as exc:
                warnings.append(f"window: earlier file left out: {exc}")
                continue
            if not earlier.empty:
                frames.append(earlier)
                context.append(rec.path)
        window = f"last {hours:g} h of arrivals: {len(good)} new + {len(context)} earlier file(s)"
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    ts = settings.model.timestamp
    if ts and ts in frame.columns:
        frame = frame.sort_values(ts, kind="stable").reset_index(drop=True)
    return Batch(
        frame,
        good,
        True,
        rejected,
        warnings,
        context_files=context,
        new_rows=new_rows,
        window=window,
    )


def finish_batch(settings: Settings, batch: Batch, outcome: str) -> None:
    checkpoint("before-finish")
    if batch.from_landing and batch.files:
        ledger_for(settings).finish(batch.files, outcome)


def fail_batch(settings: Settings, batch: Batch | None, exc: BaseException) -> None:
    """Record a failed run against its files.

    Only a fault of the data (a BatchError) counts towards quarantine: when MLflow or the
    disk fails, the files are not to blame and stay to be retried at every tick.
    """
    if batch is None or not batch.from_landing or not batch.files:
        return
    attempts = settings.landing.max_attempts if isinstance(exc, BatchError) else sys.maxsize
    ledger_for(settings).fail(
        batch.files, describe_failure(exc), attempts, settings.paths.state / "quarantine"
    )


def fit_profile(settings: Settings, ref: ActiveReference) -> ReferenceProfile:
    """The expensive part done once per reference: sorted values, counts, std per column.

    Only the profile is cached, never the detector: thresholds and tests come from the
    settings of each run, so tuning config.yaml takes effect at the next run.
    """
    frame = load_reference(settings, ref)
    return detector_for(settings).fit(frame, fingerprint=ref.sha256[:16]).profile_


def drift_calibration(
    settings: Settings, ref: ActiveReference, batch: Batch, log: Any = None
) -> Calibration | None:
    """Calibrated thresholds for this reference and batch size (only for method: calibrated)."""
    if settings.drift.method != "calibrated" or not batch.rows:
        return None
    return calibration_for(settings, ref, batch.rows, log)


def feature_drift(
    settings: Settings,
    profile: ReferenceProfile,
    batch: Batch,
    calibration: Calibration | None = None,
) -> DriftResult:
    thresholds = calibration.tests() if calibration else None
    detector = detector_for(settings, thresholds).with_profile(profile)
    return detector.check(batch.frame, source=",".join(batch.files) or "batch")


def champion_quality(
    settings: Settings, model: Any, baseline: dict[str, float], batch: Batch
) -> QualityResult:
    spec = settings.model
    metrics = score(model, batch.frame, spec)
    n_lab = int(batch.frame[spec.target].notna().sum())
    return assess(metrics, baseline, n_lab, settings.quality_metric, settings.quality)


def prediction_drift(
    settings: Settings, model: Any, reference: pd.DataFrame, batch: Batch
) -> ColumnDrift:
    """The champion's outputs on the batch vs on its reference, through the same drift engine."""
    spec = settings.model
    ref = pd.DataFrame({"prediction": predict(model, reference, spec)})
    cur = pd.DataFrame({"prediction": predict(model, batch.frame, spec)})
    override = settings.drift.columns.get("prediction")
    det = DriftDetector(
        numerical=["prediction"],
        categorical=[],
        tests={"prediction": (override.test, override.threshold)} if override else {},
        min_rows=settings.drift.min_rows,
    ).fit(ref)
    return det.check(cur).columns[0]


def new_result(
    settings: Settings,
    batch: Batch,
    decision: Decision,
    drift: DriftResult | None,
    quality: QualityResult | None,
    prediction: ColumnDrift | None,
    champion_version: str | None,
    reference_version: str | None,
    started: float,
    run_id: str | None,
) -> MonitorResult:
    target = settings.model.target
    labelled = int(batch.frame[target].notna().sum()) if target in batch.frame.columns else 0
    return MonitorResult(
        run_id=run_id or uuid.uuid4().hex,
        started=datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        files=batch.files,
        rows=batch.rows,
        window=batch.window,
        labelled_rows=labelled,
        decision=decision,
        drift=drift,
        quality=quality,
        prediction=prediction,
        champion_version=champion_version,
        reference_version=reference_version,
        warnings=list(batch.warnings),
    )


def complete(
    result: MonitorResult, retrain: RetrainOutcome | None, started: float
) -> MonitorResult:
    result.retrain = retrain
    if retrain is not None:
        result.champion_version = retrain.champion_version
    result.seconds = round(time.time() - started, 3)
    return result


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
    if result.prediction is not None and result.prediction.score is not None:
        m["prediction_drift_score"] = float(result.prediction.score)
    m["retrained"] = float(result.retrain is not None)
    m["promoted"] = float(bool(result.retrain and result.retrain.promoted))
    return m


def describe_failure(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, DriftwatchError) else f"{type(exc).__name__}: {exc}"
