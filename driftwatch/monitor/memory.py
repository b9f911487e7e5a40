"""In-memory ports: the monitor use case with no ledger, no files and no MLflow.

The backtest replays history through these, so it runs exactly the daemon's decisions; the
tests use them to check the use case without a server. Models, references and calibrations
live in dicts for the life of the object.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import EllipsisType
from typing import Any

import pandas as pd

from driftwatch.engine.blocks import BlockProfile, BlockThresholds
from driftwatch.engine.calibration import Calibration
from driftwatch.engine.drift import ReferenceProfile, frame_fingerprint
from driftwatch.errors import BatchError, ChampionChanged
from driftwatch.model.schema import validate_batch
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Batch, Challenge, Champion, ReferenceHandle
from driftwatch.monitor.result import MonitorResult, PromotionDecision, RetrainOutcome


class MemoryBatches:
    """Hands out one labelled frame per ``collect``; a frame that fails the schema is rejected
    alone (named in the warnings), as a landing file would be."""

    def __init__(self, plan: Plan, batches: Iterable[tuple[str, pd.DataFrame]]) -> None:
        self.plan = plan
        self._queue = list(batches)
        self._seen: dict[str, pd.DataFrame] = {}
        self.finished: dict[str, str] = {}
        self.failed: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._queue)

    def collect(self, run_id: str | None) -> Batch:
        label, raw = self._queue.pop(0)
        try:
            frame = (
                validate_batch(raw, self.plan.settings.model, label) if len(raw.columns) else raw
            )
        except BatchError as exc:
            return Batch(pd.DataFrame(), [], True, {label: str(exc)}, [f"rejected: {exc}"])
        context = self._context(frame)
        self._seen[label] = frame
        files = [label] if not frame.empty else []
        if not context:
            return Batch(frame, files, True, new_rows=len(frame), window=label)
        window = pd.concat([*(self._seen[c] for c in context), frame], ignore_index=True)
        return Batch(window, files, True, context_files=context, new_rows=len(frame), window=label)

    def _context(self, frame: pd.DataFrame) -> list[str]:
        """Earlier batches within the plan's context hours of this one's newest row."""
        hours, ts = self.plan.context_hours, self.plan.settings.model.timestamp
        if not hours or frame.empty or ts not in frame.columns:
            return []
        # One hour more than the horizon: the window must reach back past its start to show
        # that the horizon is whole (a day horizon is not judged on the first hours of data).
        since = frame[ts].max() - pd.Timedelta(hours=hours + 1)
        return [k for k, f in self._seen.items() if len(f) and f[ts].max() > since]

    def read(self, ids: list[str]) -> pd.DataFrame:
        frames = [self._seen[i] for i in ids if i in self._seen]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def finish(self, batch: Batch, outcome: str) -> None:
        self.finished.update(dict.fromkeys(batch.files, outcome))

    def fail(self, batch: Batch | None, exc: BaseException) -> None:
        if batch is not None:
            self.failed.update(dict.fromkeys(batch.files, str(exc)))


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

    def block_profile(self, ref: ReferenceHandle) -> BlockProfile:
        key = f"blocks-{ref.sha256}"
        if key not in self._block_profiles:
            self._block_profiles[key] = self.plan.block_profile(self.frame(ref))
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

    def block_thresholds(self, ref: ReferenceHandle, span: pd.Timedelta) -> BlockThresholds:
        key = (ref.sha256, span)
        if key not in self._cache:
            frame = self.references.frame(ref)
            self._cache[key] = self.plan.calibrate_blocks(frame, span).thresholds_
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
        self.versions[version] = Champion(
            version, f"run-{version}", dict(challenge.challenger_scores), reference, None
        )
        self._by_key[key] = (f"run-{version}", version)
        return self._by_key[key]

    def record_verdict(self, run_id: str, verdict: PromotionDecision) -> None:
        self.verdicts[run_id] = verdict

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
        self.versions[version] = Champion(c.version, c.run_id, c.baseline, c.reference, previous)
        self.champion_version = version
        return None


class ResultLog:
    """A reporter that keeps the results and renders nothing."""

    def __init__(self) -> None:
        self.results: list[MonitorResult] = []
        self.retrains: list[RetrainOutcome] = []

    def report(self, result: MonitorResult, batch: Batch, ref: ReferenceHandle) -> MonitorResult:
        return result

    def report_challenge(self, challenge: Challenge) -> None:
        pass

    def report_retrain(self, outcome: RetrainOutcome) -> None:
        self.retrains.append(outcome)

    def record(self, result: MonitorResult) -> None:
        self.results.append(result)
