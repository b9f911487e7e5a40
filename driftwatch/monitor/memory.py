"""In-memory ports: the monitor use case with no ledger, no files and no MLflow.

The backtest replays history through these, so it runs exactly the daemon's decisions; the
tests use them to check the use case without a server. Models, references and calibrations
live in dicts for the life of the object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from types import EllipsisType
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.engine.blocks import BlockProfile, BlockThresholds
from driftwatch.engine.calibration import Calibration
from driftwatch.engine.drift import ReferenceProfile, frame_fingerprint
from driftwatch.errors import BatchError, ChampionChanged
from driftwatch.model.schema import validate_batch
from driftwatch.monitor.labels import apply_labels
from driftwatch.monitor.plan import Plan, Segment
from driftwatch.monitor.ports import (
    FROM_FILE,
    PREDICTED,
    SERVED_BY,
    Batch,
    Challenge,
    Champion,
    ReferenceHandle,
)
from driftwatch.monitor.result import MonitorResult, PromotionDecision, RetrainOutcome


class MemoryLabels:
    """Late labels in a replay: each batch arrives without its labels, and each label is
    released when the replay's clock (the newest row seen) passes its label time."""

    def __init__(self, plan: Plan, label_time: str) -> None:
        self.plan = plan
        self.label_time = label_time
        self.waiting: list[pd.DataFrame] = []
        self.arrived = pd.DataFrame()
        self.now: pd.Timestamp | None = None

    def withhold(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The batch as it lands (no labels); its labels wait for their time."""
        spec = self.plan.settings.model
        assert spec.id_column, "late labels in a replay need model.id_column"
        if spec.target in raw.columns and self.label_time in raw.columns:
            lab = raw[[spec.id_column, spec.target, self.label_time]].dropna()
            self.waiting.append(
                lab.assign(**{spec.id_column: lab[spec.id_column].astype("string")})
            )
        ts = spec.timestamp
        if ts and ts in raw.columns and len(raw):
            newest = pd.to_datetime(raw[ts], utc=True).max()
            self.now = newest if self.now is None else max(self.now, newest)
        return raw.drop(columns=[c for c in (spec.target, self.label_time) if c in raw.columns])

    def release(self) -> int:
        """Labels whose time has come join the arrived ones (in label-time order)."""
        if not self.waiting or self.now is None:
            return 0
        pool = pd.concat(self.waiting, ignore_index=True)
        due = pool[self.label_time] <= self.now
        self.waiting = [pool[~due]] if (~due).any() else []
        new = pool[due].sort_values(self.label_time, kind="stable")
        self.arrived = pd.concat([self.arrived, new], ignore_index=True)
        return len(new)


class MemoryBatches:
    """Hands out one labelled frame per ``collect``; a frame that fails the schema is rejected
    alone (named in the warnings), as a landing file would be. With ``labels`` the frames
    arrive without their labels, which come later (:class:`MemoryLabels`)."""

    def __init__(
        self,
        plan: Plan,
        batches: Iterable[tuple[str, pd.DataFrame]],
        labels: MemoryLabels | None = None,
    ) -> None:
        self.plan = plan
        self._queue = list(batches)
        self._seen: dict[str, pd.DataFrame] = {}
        self.finished: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.labels = labels

    def __len__(self) -> int:
        return len(self._queue)

    def collect(self, run_id: str | None, alone: str | None = None) -> Batch:
        label, raw = self._queue.pop(0)
        if self.labels is not None:
            raw = self.labels.withhold(raw)
        try:
            frame = (
                validate_batch(raw, self.plan.settings.model, label) if len(raw.columns) else raw
            )
        except BatchError as exc:
            return Batch(pd.DataFrame(), [], True, {label: str(exc)}, [f"rejected: {exc}"])
        context = self._context(frame)
        self._seen[label] = frame
        files = [label] if not frame.empty else []
        parts = [*context, label]
        window = pd.concat([self._seen[c] for c in parts], ignore_index=True)
        origin = pd.Series(np.repeat(parts, [len(self._seen[c]) for c in parts]), dtype="category")
        return Batch(
            window if context else frame,
            files,
            True,
            context_files=context,
            new_rows=len(frame),
            window=label,
            origin=origin,
        )

    def _context(self, frame: pd.DataFrame) -> list[str]:
        """Earlier batches within the plan's context hours of this one's newest row."""
        hours, ts = self.plan.context_hours, self.plan.settings.model.timestamp
        if not hours or frame.empty or ts not in frame.columns:
            return []
        # One hour more than the horizon: the window must reach back past its start to show
        # that the horizon is whole (a day horizon is not judged on the first hours of data).
        since = frame[ts].max() - pd.Timedelta(hours=hours + 1)
        return [k for k, f in self._seen.items() if len(f) and f[ts].max() > since]

    def finish(self, batch: Batch, outcome: str) -> None:
        self.finished.update(dict.fromkeys(batch.files, outcome))

    def reject(self, batch: Batch, path: str, exc: BaseException) -> Batch:
        """In-memory batches are frames, never big files: nothing is summarised here."""
        self.failed[path] = str(exc)
        return replace(batch, files=[f for f in batch.files if f != path])

    def fail(self, batch: Batch | None, exc: BaseException) -> list[str]:
        """One batch per run: nothing to isolate."""
        if batch is not None:
            self.failed.update(dict.fromkeys(batch.files, str(exc)))
        return []


class MemoryHistory:
    """History in a dict of frames by batch label: appended, read, pruned as the files are."""

    def __init__(self, plan: Plan, labels: MemoryLabels | None = None) -> None:
        self.plan = plan
        self.parts: dict[str, pd.DataFrame] = {}
        self.labels = labels

    def repair(self) -> str:
        return "history: in memory"

    def append(self, batch: Batch, predictions: pd.Series | None, champion: str | None) -> str:
        if not batch.files or not batch.rows or batch.origin is None:
            return "history: nothing to add"
        for label in batch.files:
            mine = (batch.origin == label).to_numpy()
            rows = batch.frame[mine].copy()
            rows[FROM_FILE] = label
            rows[SERVED_BY] = champion
            rows[PREDICTED] = predictions[mine].to_numpy() if predictions is not None else np.nan
            self.parts[label] = rows
        return f"history: {len(batch.files)} batch(es) added"

    def rows(self, pending: list[str] | None = None, days: float | None = None) -> pd.DataFrame:
        frames = [f for f in self.parts.values() if not f.empty]
        if not frames:
            return pd.DataFrame()
        frame = pd.concat(frames, ignore_index=True)
        spec = self.plan.settings.model
        if self.labels is not None and spec.id_column and len(self.labels.arrived):
            frame = apply_labels(frame, self.labels.arrived, spec.id_column, spec.target)
        ts = spec.timestamp
        if ts and ts in frame.columns:
            frame = frame.sort_values(ts, kind="stable").reset_index(drop=True)
            if days is not None:
                frame = frame[frame[ts] > frame[ts].max() - pd.Timedelta(days=days + 1)]
        return frame

    def ingest_labels(self, batch: Batch) -> tuple[list[str], list[str]]:
        if self.labels is None:
            return [], []  # the replay's labels come with its batches
        n = self.labels.release()
        return ([f"{n} labels arrived"] if n else []), []

    def prune(self) -> str:
        ts, keep = self.plan.settings.model.timestamp, self.plan.settings.history.keep_days
        if not ts or not self.parts:
            return "history: nothing to prune"
        newest = max(f[ts].max() for f in self.parts.values() if len(f))
        old = [
            k
            for k, f in self.parts.items()
            if len(f) and f[ts].max() < newest - pd.Timedelta(days=keep)
        ]
        for k in old:
            del self.parts[k]
        return f"history: {len(old)} batch(es) pruned"


class MemoryReferences:
    """The first reference, then each champion's training window, by id; profiles cached."""

    def __init__(self, plan: Plan, first: pd.DataFrame) -> None:
        self.plan = plan
        self.frames: dict[str, pd.DataFrame] = {"shipped": first}
        self._profiles: dict[str, ReferenceProfile] = {}
        self._block_profiles: dict[str, BlockProfile] = {}

    def locate(self, champion: Champion | None) -> ReferenceHandle:
        key = champion.reference if champion and champion.reference else "shipped"
        frame = self.frames[key]
        version = "shipped" if key == "shipped" else key.removeprefix("window-")
        return ReferenceHandle(Path(f"memory:{key}"), frame_fingerprint(frame), version)

    def frame(self, ref: ReferenceHandle) -> pd.DataFrame:
        return self.frames[str(ref.path).removeprefix("memory:")]

    def profile(self, ref: ReferenceHandle) -> ReferenceProfile:
        if ref.sha256 not in self._profiles:
            detector = self.plan.detector().fit(self.frame(ref), fingerprint=ref.sha256)
            self._profiles[ref.sha256] = detector.profile_
        return self._profiles[ref.sha256]

    def block_profile(self, ref: ReferenceHandle, segment: Segment | None = None) -> BlockProfile:
        key = f"blocks-{ref.sha256}-{segment}"
        if key not in self._block_profiles:
            rows = self.plan.segment_rows(self.frame(ref), segment)
            self._block_profiles[key] = self.plan.block_profile(rows)
        return self._block_profiles[key]

    def store(self, frame: pd.DataFrame, key: str) -> str:
        self.frames[f"window-{key}"] = frame
        return f"window-{key}"

    def prune(self) -> str:
        return "nothing to prune in memory"


class MemoryBlockThresholds:
    """Time-block thresholds computed in memory, once per (reference, span)."""

    def __init__(self, plan: Plan, references: MemoryReferences) -> None:
        self.plan = plan
        self.references = references
        self._cache: dict[tuple[str, pd.Timedelta], BlockThresholds] = {}

    def block_thresholds(
        self,
        ref: ReferenceHandle,
        span: pd.Timedelta,
        rate: float | None = None,
        segment: Segment | None = None,
    ) -> BlockThresholds:
        key = (ref.sha256, span, rate, segment)
        if key not in self._cache:
            frame = self.plan.segment_rows(self.references.frame(ref), segment)
            self._cache[key] = self.plan.calibrate_blocks(frame, span, rate).thresholds_
        return self._cache[key]


class MemoryThresholds(MemoryBlockThresholds):
    """Calibrations computed in memory, once per (reference, batch-size bucket or span)."""

    def __init__(self, plan: Plan, references: MemoryReferences) -> None:
        super().__init__(plan, references)
        self._rows: dict[tuple[str, int], Calibration] = {}

    def thresholds(self, ref: ReferenceHandle, batch_rows: int) -> Calibration:
        rows = self.plan.calibration_rows(batch_rows)
        key = (ref.sha256, rows)
        if key not in self._rows:
            self._rows[key] = self.plan.calibrate_rows(self.references.frame(ref), ref.sha256, rows)
        return self._rows[key]


class MemoryRegistry:
    """Model versions 1, 2, ... and a champion pointer; each version keeps its holdout scores."""

    def __init__(self) -> None:
        self.models: dict[str, Any] = {}
        # Each version's performance estimator (fitted at promotion), as MLflow keeps it.
        self.estimators: dict[str, Any] = {}
        self.versions: dict[str, Champion] = {}
        self.verdicts: dict[str, PromotionDecision] = {}
        self.champion_version: str | None = None
        self._by_key: dict[str, tuple[str, str]] = {}

    def champion(self) -> Champion | None:
        return self.versions.get(self.champion_version) if self.champion_version else None

    def load_model(self, version: str) -> Any:
        return self.models[version]

    def log_challenger(self, challenge: Challenge, reference: str, key: str) -> tuple[str, str]:
        if key in self._by_key:  # a retried write finds what the first try made
            return self._by_key[key]
        version = str(len(self.versions) + 1)
        self.models[version] = challenge.model
        if challenge.estimator is not None:
            self.estimators[version] = challenge.estimator
        self.versions[version] = Champion(
            version,
            f"run-{version}",
            dict(challenge.challenger_scores),
            reference,
            None,
            segments=dict(challenge.challenger_segments),
        )
        self._by_key[key] = (f"run-{version}", version)
        return self._by_key[key]

    def record_verdict(self, run_id: str, verdict: PromotionDecision) -> None:
        self.verdicts[run_id] = verdict

    def load_estimator(self, version: str) -> Any | None:
        return self.estimators.get(version)

    def store_estimator(self, version: str, estimator: Any) -> None:
        self.estimators[version] = estimator

    def rebaseline(
        self,
        version: str,
        scores: dict[str, float],
        until: str | None,
        segments: dict[str, dict[str, float]] | None = None,
    ) -> None:
        c = self.versions[version]
        new = replace(c, baseline=dict(scores), validated_until=until)
        if segments is not None:
            new = replace(new, segments=dict(segments))
        self.versions[version] = new

    def promote(self, version: str, expected: str | None | EllipsisType = ...) -> str | None:
        """Point the champion at ``version``; None when moved. With ``expected`` (the champion the
        challenge was scored against), a champion moved since (a rollback?) is left alone: the
        reason is returned, and recorded as the version's verdict."""
        previous = self.champion_version
        c = self.versions[version]
        if expected is not ... and previous not in (expected, version):
            reason = str(ChampionChanged(expected, previous))
            run_verdict = self.verdicts.get(c.run_id)
            if run_verdict is not None:
                update = {"promote": False, "reason": reason}
                self.verdicts[c.run_id] = run_verdict.model_copy(update=update)
            return reason
        self.versions[version] = replace(c, previous=previous)
        self.champion_version = version
        return None


class ResultLog:
    """A reporter that keeps the results and renders nothing."""

    def __init__(self) -> None:
        self.results: list[MonitorResult] = []
        self.retrains: list[RetrainOutcome] = []
        self.challenges: list[Challenge] = []

    def report(self, result: MonitorResult, batch: Batch, ref: ReferenceHandle) -> MonitorResult:
        return result

    def report_challenge(self, challenge: Challenge) -> None:
        self.challenges.append(challenge)

    def report_retrain(self, outcome: RetrainOutcome) -> None:
        self.retrains.append(outcome)

    def record(self, result: MonitorResult) -> None:
        self.results.append(result)
