"""The training window and its holdout, as plain functions of frames already in memory."""

from __future__ import annotations

import pandas as pd

from driftwatch.config import Settings
from driftwatch.errors import NotEnoughData
from driftwatch.model.schema import labelled


def training_window(
    reference: pd.DataFrame, batch: pd.DataFrame, settings: Settings
) -> pd.DataFrame:
    """Reference (optionally) plus the new batch, cut to the last ``window_days`` of time."""
    parts = [reference, batch] if settings.retrain.include_reference else [batch]
    # drop_duplicates: with a rolling drift window, earlier files may already be in the reference.
    pool = pd.concat([p for p in parts if not p.empty], ignore_index=True).drop_duplicates()
    ts = settings.model.timestamp
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
