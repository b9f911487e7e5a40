"""The training window and its holdout, as plain functions of frames already in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftwatch.config import Settings
from driftwatch.errors import NotEnoughData
from driftwatch.model.schema import labelled


def training_window(
    history: pd.DataFrame, shipped: pd.DataFrame | None, settings: Settings
) -> pd.DataFrame:
    """The last ``retrain.window_days`` of history (every batch processed, labels joined), plus
    the shipped reference's rows older than history while history is shorter than the window
    (``retrain.include_reference``), oldest first; without a timestamp the whole reference
    comes first. Columns are the model's; history's own
    bookkeeping columns (file, prediction, ...) stay behind."""
    ts = settings.model.timestamp
    history = history[[c for c in history.columns if not str(c).startswith("_")]]
    has_time = bool(ts) and ts in history.columns and history[ts].notna().any()
    parts = [history]
    if shipped is not None and settings.retrain.include_reference and not shipped.empty:
        if has_time and ts in shipped.columns:
            # Only what history does not cover yet: the reference fills the window's older end.
            parts.insert(0, shipped[shipped[ts] < history[ts].min()])
        elif not has_time:
            # Data without time has no window to fill by age: the reference is always its
            # older end (an `init` user's reference is trained on at the bootstrap, and stays).
            parts.insert(0, shipped)
    filled = [p for p in parts if not p.empty]
    pool = pd.concat(filled, ignore_index=True) if filled else history
    if ts and ts in pool.columns and pool[ts].notna().any():
        pool = pool.sort_values(ts, kind="stable").reset_index(drop=True)
        start = pool[ts].max() - pd.Timedelta(days=settings.retrain.window_days)
        pool = pool[pool[ts] > start].reset_index(drop=True)
    return pool


def split_holdout(window: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The holdout is the most recent labelled slice: the data the next hours will look like."""
    lab = labelled(window, settings.model)
    n_hold = max(1, round(len(lab) * settings.retrain.holdout_fraction))
    if len(lab) - n_hold < 1:
        raise NotEnoughData(
            f"only {len(lab)} labelled rows in the training window"
            f" (retrain.window_days = {settings.retrain.window_days:g}): too few to train and"
            " hold out; wait for labels or widen the window"
        )
    return lab.iloc[:-n_hold], lab.iloc[-n_hold:]


def recency_weights(rows: pd.DataFrame, settings: Settings) -> np.ndarray | None:
    """Sample weights 2^(-age / retrain.half_life_days), age in days back from the newest row
    of ``rows`` (None when unset: every row counts the same). The newest rows are what the next
    batches look like most; the older ones still count, less. A row without a time gets the
    weight of the oldest row (it is at least as old as anything known)."""
    half_life = settings.retrain.half_life_days
    ts = settings.model.timestamp
    if half_life is None or not ts or ts not in rows.columns or rows.empty:
        return None
    times = rows[ts]
    age = (times.max() - times).dt.total_seconds().to_numpy(dtype=np.float64) / 86_400.0
    age = np.where(np.isnan(age), np.nanmax(age) if np.isfinite(age).any() else 0.0, age)
    return np.exp2(-age / half_life)
