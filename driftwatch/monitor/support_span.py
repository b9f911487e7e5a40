"""``retrain.support_columns``: how much of the newest data lies beyond the champion's range.

Two parts: the champion's range (the 1st-99th percentile of each support column over its
training window), learnt once per champion and cached by its reference's content hash, not at
every tick; and the span it is judged on: the batch alone, or with ``retrain.support_hours``
the newest N hours of history, the batch included. With hourly or daily ticks one day's
temperatures are not a season's: a single warm day put more than 1% of its rows past the
range and retrained (the 2013 replay with daily files; README, "Replay of 2013"), where the
newest week asks what a weekly file asks.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import pandas as pd

from driftwatch.config import Settings
from driftwatch.model.support import Support
from driftwatch.monitor.ports import FROM_FILE


@dataclass(frozen=True)
class SupportSpan:
    """The rows support is judged on, and how they are named in the result and the log."""

    frame: pd.DataFrame
    hours: float | None  # None: the batch alone

    @property
    def label(self) -> str:
        """``the batch (2,345 rows)`` or ``the newest 168 h (6,789 rows)``."""
        where = "the batch" if self.hours is None else f"the newest {self.hours:g} h"
        return f"{where} ({len(self.frame):,} rows)"


# Champions' ranges by (reference content hash, columns): a daemon serves one champion per
# model for many ticks (two around a promotion), and a year's replay crosses tens of them. A
# Support is a few numbers per column: 256 covers a deployment of a hundred models.
_RANGES: OrderedDict[tuple[str, tuple[str, ...]], Support] = OrderedDict()
_RANGES_LOCK = threading.Lock()
_KEEP = 256


def champion_range(sha256: str, trained: pd.DataFrame, columns: list[str]) -> Support | None:
    """The champion's range in ``columns`` (those its window has), fitted once per reference
    (``sha256``: its content hash, so the same window is the same range); None without one."""
    cols = tuple(c for c in columns if c in trained.columns)
    if not cols:
        return None
    key = (sha256, cols)
    with _RANGES_LOCK:
        if key in _RANGES:
            _RANGES.move_to_end(key)
            return _RANGES[key]
    fitted = Support().fit(trained[list(cols)])
    with _RANGES_LOCK:
        _RANGES[key] = fitted
        while len(_RANGES) > _KEEP:
            _RANGES.popitem(last=False)
    return fitted


def support_span(
    settings: Settings,
    frame: pd.DataFrame,
    history: pd.DataFrame | None,
    in_batch: list[str] | None = None,
) -> SupportSpan:
    """The batch alone (``retrain.support_hours`` null), or every row, history's and the
    batch's, in the newest ``support_hours`` up to the batch's newest row. Features are in
    history whether or not their labels have come. History rows of files in the batch
    (``in_batch``: its context files, judged again) are counted once, as the batch's."""
    hours = settings.retrain.support_hours
    ts = settings.model.timestamp
    if hours is None or not ts or ts not in frame.columns or frame[ts].isna().all():
        return SupportSpan(frame, None)
    newest = frame[ts].max()
    start = newest - pd.Timedelta(hours=hours)
    parts = [frame[frame[ts] > start]]
    if history is not None and len(history) and ts in history.columns:
        older = history[(history[ts] > start) & (history[ts] <= newest)]
        if FROM_FILE in older.columns:
            older = older[~older[FROM_FILE].isin(in_batch or [])]
        parts.insert(0, older)
    # The batch's support columns; a history part without one of them (written before the
    # column existed) is left out rather than the span given up.
    cols = [c for c in settings.retrain.support_columns if c in frame.columns]
    parts = [p for p in parts if all(c in p.columns for c in cols)]
    rows = pd.concat([p[cols] for p in parts], ignore_index=True)
    return SupportSpan(rows, hours)


def outside_support(
    settings: Settings, support: Support | None, span: SupportSpan
) -> dict[str, float] | None:
    """Per ``retrain.support_columns`` column, the share of the span's rows beyond the champion's
    range (None when no column is set or the span is too short to judge). The estimate's support
    check measures the same thing against the holdout; here it is the whole window the champion
    learnt from."""
    # A handful of rows is no evidence (one warm flight of five is 20%): as few rows as a
    # horizon would not judge give no shares.
    if support is None or len(span.frame) < settings.drift.calibration.min_block_rows:
        return None
    return support.outside(span.frame[[c for c in support.ranges_ if c in span.frame.columns]])
