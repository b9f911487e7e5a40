"""Champion vs challenger, as plain functions: the training window, the holdout, the verdict.

The retrain subflow calls these in order; keeping them here means the promotion rule is tested
without Prefect or MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from driftwatch.config import Settings
from driftwatch.model.quality import better
from driftwatch.store.batches import labelled, read_validated
from driftwatch.store.references import active_reference, load_reference


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


def read_batches(settings: Settings, files: list[str]) -> pd.DataFrame:
    frames = [read_validated(f, settings.model, settings.landing.max_file_mb) for f in files]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def prepare_window(
    settings: Settings, champion_reference: str | None, batch_files: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(window, train, holdout): the champion's reference plus the new files, split by time."""
    reference = load_reference(settings, active_reference(settings, champion_reference))
    return split_window(reference, read_batches(settings, batch_files), settings)


def split_window(
    reference: pd.DataFrame, batch: pd.DataFrame, settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(window, train, holdout) from the reference and the new rows already in memory."""
    window = training_window(reference, batch, settings)
    train, holdout = split_holdout(window, settings)
    return window, train, holdout


def split_holdout(window: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The holdout is the most recent labelled slice: the data the next hours will look like."""
    lab = labelled(window, settings.model)
    n_hold = max(1, round(len(lab) * settings.retrain.holdout_fraction))
    if len(lab) - n_hold < 1:
        raise ValueError(f"only {len(lab)} labelled rows: too few to train and hold out")
    return lab.iloc[:-n_hold], lab.iloc[-n_hold:]


@dataclass
class PromotionDecision:
    promote: bool
    metric: str
    challenger: float
    champion: float | None
    margin: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def promotion_decision(
    metric: str, challenger: dict[str, float], champion: dict[str, float] | None, margin: float
) -> PromotionDecision:
    ch = challenger[metric]
    if champion is None:
        return PromotionDecision(True, metric, ch, None, margin, "no champion yet: bootstrap")
    cp = champion[metric]
    if better(metric, ch, cp, margin):
        return PromotionDecision(
            True,
            metric,
            ch,
            cp,
            margin,
            f"challenger {metric} {ch:.4g} beats champion {cp:.4g} by more than {margin:.0%}",
        )
    return PromotionDecision(
        False,
        metric,
        ch,
        cp,
        margin,
        f"challenger {metric} {ch:.4g} does not beat champion {cp:.4g} by {margin:.0%}: kept champion",
    )
