"""The champion's quality baseline measured the way its verdict is: from what it served.

With ``quality.baseline: served`` the verdict's yardstick is the champion's realised metric over
its first lookback in service (``quality.lookback_hours``; its first labelled batch without a
lookback), read from history, where each row keeps the prediction of the champion that served
it. The holdout score it replaces is measured on another span (the newest ~12 days of the
training window) by a model that has not served yet: on the 2013 replay with daily ticks and a
7-day lookback, a lookback harder than that holdout fired the quality trigger day after day (73
quality-only retrains in 306 days, README "Replay of 2013").

The span starts after ``since``: the end of the champion's training data, or of the newest
holdout it held its own on (a lost challenge: its error from then on is its new normal, and the
quality trigger waits for a full lookback of fresh labelled time before it may fire again).
Computed from history at every tick (nothing stored), so the backtest and the daemon agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from driftwatch.config import ModelSettings, QualitySettings
from driftwatch.model.estimators import target
from driftwatch.model.quality import score_predictions
from driftwatch.monitor.ports import FROM_FILE, PREDICTED, SERVED_BY


@dataclass(frozen=True)
class ServedBaseline:
    """The champion's realised scores over its baseline span; empty ``scores`` while the span
    is still filling (``note`` says why)."""

    scores: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    start: str | None = None
    end: str | None = None
    note: str = ""
    # model.segments: each segment's own (``origin=EWR`` -> its served baseline), measured the
    # same way on the segment's rows of history.
    segments: dict[str, ServedBaseline] = field(default_factory=dict)


def served_baseline(
    history: pd.DataFrame,
    champion: str,
    since: pd.Timestamp | None,
    newest: pd.Timestamp,
    spec: ModelSettings,
    quality: QualitySettings,
) -> ServedBaseline:
    """The champion's realised metric over its first lookback in service after ``since``
    (rows it served, with labels arrived); ``newest``: the batch's newest row, the clock that
    says whether the span is over."""
    ts, hours = spec.timestamp, quality.lookback_hours
    what = f"its first {hours:g} h in service" if hours else "its first batch in service"
    mine = history.iloc[:0]
    if not history.empty and ts and ts in history.columns and SERVED_BY in history.columns:
        mine = history[(history[SERVED_BY].astype(str) == champion) & history[PREDICTED].notna()]
        if since is not None:
            mine = mine[mine[ts] > since]
    if mine.empty:
        return ServedBaseline(note=f"baseline: measuring {what} (none served yet)")
    first = mine[ts].min()
    if hours:
        end = first + pd.Timedelta(hours=hours)
        span = mine[mine[ts] <= end]
    else:  # the first file it served, judged as a batch is
        span = mine[mine[FROM_FILE] == mine.loc[mine[ts].idxmin(), FROM_FILE]]
        end = span[ts].max()
    if newest <= end:
        return ServedBaseline(note=f"baseline: measuring {what} (until {end})")
    rows = span[span[spec.target].notna()]
    if len(rows) < quality.min_labelled_rows:
        note = f"baseline: {len(rows)} labelled rows in {what} (< {quality.min_labelled_rows})"
        return ServedBaseline(rows=len(rows), note=note)
    y = target(rows, spec).to_numpy(dtype=float)
    scores = score_predictions(y, rows[PREDICTED].to_numpy(dtype=float), spec)
    return ServedBaseline(scores, len(rows), str(first), str(end), f"baseline: {what}")
