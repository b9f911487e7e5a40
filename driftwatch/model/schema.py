"""What the model expects of a frame: features typed, timestamp in UTC, labels optional.

Pure functions over frames (no files): the monitor, the backtest and the stores all coerce
batches through here, so a batch is judged the same way whoever reads it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftwatch.config import ModelSettings
from driftwatch.engine.drift import as_categorical, as_numeric
from driftwatch.errors import SchemaError


def validate_batch(frame: pd.DataFrame, spec: ModelSettings, source: str) -> pd.DataFrame:
    """Coerce a batch to the model spec: features typed, timestamp in UTC, target optional.

    The target may be missing (labels often arrive later): those rows are scored for drift only.
    """
    dup = frame.columns[frame.columns.duplicated()].unique().tolist()
    if dup:
        raise SchemaError(source, f"duplicated column name {dup[0]!r}", column=str(dup[0]))
    missing = [c for c in spec.features if c not in frame.columns]
    if missing:
        raise SchemaError(
            source,
            f"missing required column(s) {missing} (model.numerical / model.categorical)",
            column=missing[0],
        )
    out = frame.copy()
    for col in spec.numerical:
        out[col] = as_numeric(out[col], col, source).astype(np.float64)
    for col in spec.categorical:
        out[col] = as_categorical(out[col])
    if spec.target in out.columns:
        out[spec.target] = as_numeric(out[spec.target], spec.target, source).astype(np.float64)
    else:
        out[spec.target] = np.nan
    if spec.timestamp and spec.timestamp in out.columns:
        out[spec.timestamp] = to_utc(out[spec.timestamp], spec.timestamp, source)
    return out


def to_utc(values: pd.Series, column: str, source: str) -> pd.Series:
    """Any time zone in, UTC out; naive timestamps are taken to be UTC already."""
    try:
        if pd.api.types.is_datetime64_any_dtype(values):
            ts = values
        else:
            ts = pd.to_datetime(values, utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise SchemaError(source, f"not a timestamp column: {exc}", column=column) from None
    if getattr(ts.dt, "tz", None) is None:
        return ts.dt.tz_localize("UTC")
    return ts.dt.tz_convert("UTC")


def labelled(frame: pd.DataFrame, spec: ModelSettings) -> pd.DataFrame:
    """The rows whose label has arrived (the others are scored for drift only)."""
    return frame[frame[spec.target].notna()]
