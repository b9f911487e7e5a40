"""Big batches in the hourly monitor: one mergeable summary per local hour of a batch's rows.

A landing item too big to read whole (a partitioned parquet directory, or a parquet file above
``scale.summary_above_rows``) is summarised where its partitions are: each partition's worker
validates its rows as any batch file is validated, then gives one block summary
(:mod:`driftwatch.engine.block_summaries`) per local hour of ``model.timestamp`` (in
``model.timezone``, the clock the time-block thresholds were cut on), its model's quality sums
(:mod:`driftwatch.model.partial_quality`) and its time range. Summaries merge by addition, and
only the hours of the longest horizon before the newest hour are kept while merging (each
partition keeps its own newest ones: any hour of the batch's newest span is among them), so what
reaches the monitor is at most a day of hourly summaries, whatever the batch's size. Each horizon
then merges the hours of its newest span and judges them on its thresholds
(:func:`driftwatch.monitor.pipeline.judge_summary_horizon`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftwatch.engine.block_summaries import BlockSummary, summarise_block

if TYPE_CHECKING:
    from driftwatch.config import ModelSettings
    from driftwatch.engine.blocks import BlockProfile
    from driftwatch.model.partial_quality import QualitySums

# Notes (repaired or dropped rows) kept from the partitions of one batch.
MAX_NOTES = 20


@dataclass
class HourSummaries:
    """A batch's rows as per-hour block summaries (the newest ``keep`` of them), with what the
    monitor says about a batch: rows, time range, quality sums, notes.

    ``keep`` None (no ``drift.horizons``): the batch is judged whole at its own span, so all its
    rows go into one summary (key None)."""

    hours: dict[pd.Timestamp | None, BlockSummary]
    keep: pd.Timedelta | None
    rows: int = 0
    partitions: int = 1
    first: pd.Timestamp | None = None  # local wall-clock time of the oldest row
    last: pd.Timestamp | None = None  # ... and of the newest
    first_utc: pd.Timestamp | None = None
    last_utc: pd.Timestamp | None = None
    quality: QualitySums | None = None
    labelled: int = 0
    notes: list[str] = field(default_factory=list)
    # The champion's estimator's sums (a regression's LossSums), when it can add up
    estimate: Any = None

    def merge(self, other: HourSummaries) -> HourSummaries:
        hours = dict(self.hours)
        for h, s in other.hours.items():
            hours[h] = hours[h].merge(s) if h in hours else s
        quality = self.quality
        if other.quality is not None:
            quality = other.quality if quality is None else quality.merge(other.quality)
        estimate = self.estimate
        if other.estimate is not None:
            estimate = other.estimate if estimate is None else estimate.merge(other.estimate)
        out = HourSummaries(
            hours,
            self.keep,
            self.rows + other.rows,
            self.partitions + other.partitions,
            _pick(min, self.first, other.first),
            _pick(max, self.last, other.last),
            _pick(min, self.first_utc, other.first_utc),
            _pick(max, self.last_utc, other.last_utc),
            quality,
            self.labelled + other.labelled,
            [*self.notes, *other.notes][:MAX_NOTES],
            estimate,
        )
        out._trim()
        return out

    def _trim(self) -> None:
        """Only the hours any horizon can still judge: newer than the newest hour minus the
        longest horizon (so memory is a day of summaries, not the batch's)."""
        if self.keep is None or self.last is None:
            return
        start = self.last.floor("h") - self.keep
        self.hours = {h: s for h, s in self.hours.items() if h is not None and h > start}

    def window(self, span: pd.Timedelta | None) -> BlockSummary | None:
        """The merged summary of the hours of the newest ``span`` (hours newer than the newest
        row's hour minus ``span``: for rows stamped on the hour, the rows the in-memory check
        takes, ``local > newest - span``), or of the whole batch (None)."""
        if span is None or self.keep is None:
            picked = list(self.hours.values())
        else:
            assert self.last is not None
            start = self.last.floor("h") - span
            picked = [s for h, s in sorted(self.hours.items()) if h is not None and h > start]
        if not picked:
            return None
        out = picked[0]
        for s in picked[1:]:
            out = out.merge(s)
        return out

    @property
    def covered(self) -> pd.Timedelta:
        """How much time the batch's rows span (newest minus oldest)."""
        if self.first is None or self.last is None:
            return pd.Timedelta(0)
        return self.last - self.first


def _pick(f: Any, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return f(a, b)


def summarise_rows(
    frame: pd.DataFrame,
    spec: ModelSettings,
    profile: BlockProfile,
    lattices: dict[str, np.ndarray],
    keep: pd.Timedelta | None,
    model: Any = None,
    notes: list[str] | None = None,
    estimator: Any = None,
) -> HourSummaries:
    """Validated rows (one partition's, or a run's small files) as hour summaries; with
    ``model``, its quality sums on the labelled rows too, and with ``estimator`` (one whose
    estimate adds up: ``sums``) the estimate's sums on every row."""
    from driftwatch.model.estimators import features, predict, target
    from driftwatch.model.partial_quality import QualitySums
    from driftwatch.model.schema import labelled

    ts = spec.timestamp
    assert ts, "hour summaries need model.timestamp"
    stamps = frame[ts]
    local = stamps.dt.tz_convert(spec.timezone).dt.tz_localize(None)
    hours: dict[pd.Timestamp | None, BlockSummary] = {}
    if len(frame):
        if keep is None:
            hours[None] = summarise_block(profile, frame, lattices)
        else:
            hour = local.dt.floor("h")
            start = hour.max() - keep
            for h, rows in frame[(hour > start).to_numpy()].groupby(hour[hour > start]):
                hours[pd.Timestamp(h)] = summarise_block(profile, rows, lattices)
    quality = estimate = None
    if model is not None and len(frame):
        p = np.asarray(predict(model, frame, spec))  # once, for both
        has = frame.index.isin(labelled(frame, spec).index)
        y = target(frame[has], spec).to_numpy()
        quality = QualitySums.from_predictions(y, p[has], spec.task)
        if estimator is not None and hasattr(estimator, "sums"):
            estimate = estimator.sums(features(frame, spec), p)
    return HourSummaries(
        hours,
        keep,
        rows=len(frame),
        first=local.min() if len(frame) else None,
        last=local.max() if len(frame) else None,
        first_utc=stamps.min() if len(frame) else None,
        last_utc=stamps.max() if len(frame) else None,
        quality=quality,
        labelled=int(frame[spec.target].notna().sum()) if spec.target in frame.columns else 0,
        notes=list(notes or [])[:MAX_NOTES],
        estimate=estimate,
    )


__all__ = ["HourSummaries", "summarise_rows"]
