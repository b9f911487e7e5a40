"""The active drift reference: the shipped file at first, then the champion's training window.

Drift is only meaningful against what the champion learned from, so each retrain stores its
training window as a reference version under the state dir, and the champion's model version
carries the path of its window as a tag. The active reference is *derived* from the champion:
moving the alias (promotion or rollback) is the single commit point, so the model and its
reference can never disagree, and a crash leaves the old pair or the new one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from driftwatch.config import Settings
from driftwatch.engine.drift import PROFILE_FORMAT, DriftDetector
from driftwatch.files import atomic_write, file_hash
from driftwatch.store.batches import read_batch, validate_batch


@dataclass(frozen=True)
class ActiveReference:
    path: Path
    sha256: str
    version: str  # "shipped" or the model version whose training window it is


def reference_dir(settings: Settings) -> Path:
    return settings.paths.state / "reference"


def active_reference(settings: Settings, champion_reference: str | None = None) -> ActiveReference:
    """The champion's window if it has one, else the shipped reference (before the bootstrap)."""
    if champion_reference:
        path = Path(champion_reference)
        if not path.is_file():
            raise FileNotFoundError(
                f"the champion's reference {path} is missing from the state dir; restore it from"
                " the champion's MLflow run (artifact 'reference/') or run `driftwatch rollback`"
            )
        return ActiveReference(path, file_hash(path), path.stem.removeprefix("reference-"))
    path = settings.paths.reference
    return ActiveReference(path, file_hash(path), "shipped")


def load_reference(settings: Settings, ref: ActiveReference | None = None) -> pd.DataFrame:
    ref = ref or active_reference(settings)
    return validate_batch(read_batch(ref.path), settings.model, str(ref.path))


def store_reference(settings: Settings, frame: pd.DataFrame, version: str) -> Path:
    """Write a reference version (atomically); does not activate it."""
    target = reference_dir(settings) / f"reference-{version}.parquet"
    return atomic_write(target, lambda tmp: frame.to_parquet(tmp, index=False))


def detector_for(
    settings: Settings, thresholds: dict[str, tuple[str | None, float | None]] | None = None
) -> DriftDetector:
    """The configured detector; ``thresholds`` (from a calibration) fill what config.yaml leaves
    open, never override a test or threshold set there."""
    d = settings.drift
    tests = dict(thresholds or {})
    for c, o in d.columns.items():
        base_test, base_thr = tests.get(c, (None, None))
        if o.test and o.test != base_test:
            base_thr = None  # a calibrated threshold belongs to the calibrated test only
        tests[c] = (o.test or base_test, o.threshold if o.threshold is not None else base_thr)
    return DriftDetector(
        numerical=list(settings.model.numerical),
        categorical=list(settings.model.categorical),
        tests=tests,
        ignore=list(d.ignore),
        drift_share=d.drift_share,
        min_rows=d.min_rows,
        method=d.method,
        alpha=d.false_alarm_rate,
        report_only=list(d.report_only),
    )


def profile_key(settings: Settings, ref: ActiveReference) -> str:
    """Cache key of the fitted profile: the reference's content and the settings that shape it."""
    # The profile format is part of the key: an upgraded driftwatch never reuses an old object.
    h = hashlib.sha256(f"{PROFILE_FORMAT}:{ref.sha256}".encode())
    h.update(settings.model.model_dump_json(include={"numerical", "categorical"}).encode())
    h.update(settings.drift.model_dump_json(include={"ignore"}).encode())
    return f"profile-{h.hexdigest()[:24]}"
