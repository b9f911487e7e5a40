"""The monitor's ports: what the use case needs from the outside world, as small interfaces.

Production implements them over the landing dir + ledger, reference files, calibration files,
MLflow and Prefect (:mod:`driftwatch.store`, :mod:`driftwatch.report`); the backtest and the
tests implement them in memory (:mod:`driftwatch.monitor.memory`). The use case
(:mod:`driftwatch.monitor.pipeline`) sees only these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd

from driftwatch.engine.blocks import BlockProfile, BlockThresholds
from driftwatch.engine.calibration import Calibration
from driftwatch.engine.drift import ReferenceProfile
from driftwatch.monitor.big import HourSummaries
from driftwatch.monitor.result import MonitorResult, PromotionDecision, RetrainOutcome

T = TypeVar("T")

# What history keeps next to each row's model columns: its file, the file's history key, when
# it arrived, the champion that served it, and that champion's prediction for it.
FROM_FILE, BATCH_KEY, ARRIVED, SERVED_BY, PREDICTED = (
    "_file", "_batch", "_arrived", "_champion", "_prediction",
)  # fmt: skip


@dataclass(frozen=True)
class Batch:
    """The rows of this run and where they came from (ledger files, or one given file)."""

    frame: pd.DataFrame
    files: list[str]
    from_landing: bool
    rejected: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Rolling window: files processed earlier whose rows are judged again with the new ones.
    context_files: list[str] = field(default_factory=list)
    new_rows: int = 0
    window: str = ""
    # Per row of ``frame``: the file it came from (history keeps the new files' rows by file).
    origin: pd.Series | None = None
    # What the late labels taken at this tick did, one line per label file.
    labels: list[str] = field(default_factory=list)
    # Files of ``files`` too big to read whole (a parquet directory, a parquet file above
    # scale.summary_above_rows): summarised per hour where they are (monitor/big.py) ...
    big: list[str] = field(default_factory=list)
    # ... into this (with ``frame``'s rows merged in), once summarised
    summary: HourSummaries | None = None

    @property
    def rows(self) -> int:
        """The rows read (``frame``) and, for big files, the rows summarised but not read."""
        if self.summary is not None:
            return self.summary.rows
        return len(self.frame)

    @property
    def all_files(self) -> list[str]:
        return [*self.context_files, *self.files]


@dataclass(frozen=True)
class Champion:
    """What the registry says about the serving model (not the model itself)."""

    version: str
    run_id: str
    baseline: dict[str, float]
    reference: str | None  # the id of its training window in the reference store
    previous: str | None
    # When a challenger lost to it: the newest time of that holdout (it is as fresh as that).
    validated_until: str | None = None
    # model.segments: its scores on each segment's rows of that holdout (``origin=EWR`` ->
    # {"rmse": ...}); None for a version stored before segment baselines were (no segment
    # quality verdict then, said so).
    segments: dict[str, dict[str, float]] | None = None


@dataclass(frozen=True)
class ReferenceHandle:
    """Which reference is active: the shipped one, or a champion's training window."""

    path: Path
    sha256: str
    version: str  # "shipped" or the model version whose training window it is


@dataclass(frozen=True)
class Challenge:
    """A trained challenger, both models' scores on the same holdout, and the verdict."""

    model: Any
    window: pd.DataFrame
    train_rows: pd.DataFrame
    holdout: pd.DataFrame
    challenger_scores: dict[str, float]
    champion_scores: dict[str, float] | None
    verdict: PromotionDecision
    trigger: str
    # The estimator of the challenger's performance (fitted on the holdout when it is promoted;
    # stored with its version, see driftwatch.monitor.estimated), or None.
    estimator: Any = None
    # model.segments: both models' scores on each segment's rows of the holdout (the segment
    # baselines of the one that serves next).
    challenger_segments: dict[str, dict[str, float]] = field(default_factory=dict)
    champion_segments: dict[str, dict[str, float]] | None = None


class BatchSource(Protocol):
    """Where batches come from. ``fail`` records a failed run against its files and returns the
    files it *isolated* (a run of several files that failed for no cause it can attribute):
    the use case judges each of them alone right away, ``collect(run_id, alone=path)``."""

    def collect(self, run_id: str | None, alone: str | None = None) -> Batch: ...
    def finish(self, batch: Batch, outcome: str) -> None: ...
    def fail(self, batch: Batch | None, exc: BaseException) -> list[str]: ...
    def reject(self, batch: Batch, path: str, exc: BaseException) -> Batch:
        """One big file of the batch failed to summarise: charged alone (as a file that fails
        to read), and the batch without it."""
        ...


class BigBatches(Protocol):
    """Where big landing items are summarised: per partition, on a Dask cluster or here."""

    def summarise(
        self,
        path: str,
        profile: BlockProfile,
        keep: pd.Timedelta | None,
        model: Any = None,
        estimator: Any = None,
    ) -> HourSummaries: ...


class ReferenceStore(Protocol):
    def locate(self, champion: Champion | None) -> ReferenceHandle: ...
    def frame(self, ref: ReferenceHandle) -> pd.DataFrame: ...
    def profile(self, ref: ReferenceHandle) -> ReferenceProfile: ...
    def block_profile(
        self, ref: ReferenceHandle, segment: tuple[str, str] | None = None
    ) -> BlockProfile: ...
    def store(self, frame: pd.DataFrame, key: str) -> str: ...
    def prune(self) -> str: ...


class History(Protocol):
    """Every processed batch's rows with the champion's predictions (and late labels joined):
    what the retrain learns from. ``pending``: files of the current run, not yet committed."""

    def repair(self) -> str: ...
    def append(self, batch: Batch, predictions: pd.Series | None, champion: str | None) -> str: ...
    def rows(self, pending: list[str] | None = None, days: float | None = None) -> pd.DataFrame: ...
    def ingest_labels(self, batch: Batch) -> tuple[list[str], list[str]]: ...
    def prune(self) -> str: ...


class ThresholdStore(Protocol):
    def thresholds(self, ref: ReferenceHandle, batch_rows: int) -> Calibration: ...
    def block_thresholds(
        self,
        ref: ReferenceHandle,
        span: pd.Timedelta,
        rate: float | None = None,
        segment: tuple[str, str] | None = None,
    ) -> BlockThresholds: ...


class ModelRegistry(Protocol):
    def champion(self) -> Champion | None: ...
    def load_model(self, version: str) -> Any: ...
    def log_challenger(self, challenge: Challenge, reference: str, key: str) -> tuple[str, str]: ...
    def record_verdict(self, run_id: str, verdict: PromotionDecision) -> None: ...
    def promote(self, version: str, expected: str | None) -> str | None:
        """Move the alias unless the champion is no longer ``expected``: None, or why not."""
        ...

    def rebaseline(
        self,
        version: str,
        scores: dict[str, float],
        until: str | None,
        segments: dict[str, dict[str, float]] | None = None,
    ) -> None: ...
    def load_estimator(self, version: str) -> Any | None:
        """The performance estimator stored with ``version`` (None if it has none)."""
        ...

    def store_estimator(self, version: str, estimator: Any) -> None: ...


class Reporter(Protocol):
    """Renders results (logs, artifacts, HTML) and records them (run JSON, MLflow metrics)."""

    def report(
        self, result: MonitorResult, batch: Batch, ref: ReferenceHandle
    ) -> MonitorResult: ...
    def report_challenge(self, challenge: Challenge) -> None: ...
    def report_retrain(self, outcome: RetrainOutcome) -> None: ...
    def record(self, result: MonitorResult) -> None: ...


class Steps(Protocol):
    """How the use case runs each step: inline, or as a Prefect task with retries.

    ``retry``: the step talks to something that can fail for a while (MLflow, the disk) and is
    safe to repeat. ``subflow`` runs a whole sub-use-case (the retrain) as a child run.
    """

    def __call__(self, name: str, fn: Callable[..., T], *args: Any, retry: bool = False) -> T: ...
    def subflow(self, name: str, fn: Callable[..., T], *args: Any) -> T: ...


class InlineSteps:
    """Run every step as a plain call: the backtest, the tests, any caller without Prefect."""

    def __call__(self, name: str, fn: Callable[..., T], *args: Any, retry: bool = False) -> T:
        return fn(*args)

    def subflow(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)
