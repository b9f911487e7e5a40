"""What the model expects of a frame: features typed, timestamp in UTC, labels optional.

Pure functions over frames (no files): the monitor, the backtest and the stores all coerce
batches through here, so a batch is judged the same way whoever reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from driftwatch.engine.drift import as_categorical, as_numeric
from driftwatch.errors import SchemaError
from driftwatch.files import shown

if TYPE_CHECKING:  # annotations only: config pulls in pydantic-settings (~0.15 s)
    from driftwatch.config import ModelSettings


def validate_batch(
    frame: pd.DataFrame,
    spec: ModelSettings,
    source: str,
    notes: list[str] | None = None,
    max_future_days: float | None = None,
) -> pd.DataFrame:
    """Coerce a batch to the model spec: features typed, timestamp in UTC, target optional.

    The target may be missing (labels often arrive later): those rows are scored for drift only.
    Values are checked too (:func:`check_values`): what is repaired or dropped is said in
    ``notes``, one line each naming the file, column and count.
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
    used = [
        *spec.features,
        spec.target,
        *([spec.timestamp] if spec.timestamp else []),
        *([spec.id_column] if spec.id_column else []),
    ]
    for col in used:
        if col in frame.columns:
            reject_non_scalars(frame[col], col, source)
    # Only the model's columns go on: every reader (landing files, the reference, the
    # backtest's frames) hands the monitor the same frame, and nothing else is carried along.
    out = frame[[c for c in dict.fromkeys(used) if c in frame.columns]].copy()
    # Bools in a numerical feature or the target are taken as 0/1 (as_numeric), never refused.
    for col in spec.numerical:
        out[col] = as_numeric(out[col], col, source).astype(np.float64)
    for col in spec.categorical:
        out[col] = as_categorical(out[col])
    if spec.id_column and spec.id_column in out.columns:  # joined as text with late labels
        out[spec.id_column] = out[spec.id_column].astype("string")
    if spec.target in out.columns:
        out[spec.target] = as_numeric(out[spec.target], spec.target, source).astype(np.float64)
    else:
        out[spec.target] = np.nan
    return check_values(out, spec, source, notes, max_future_days)


NON_SCALAR = (list, tuple, dict, set, np.ndarray)


def reject_non_scalars(values: pd.Series, column: str, source: str) -> None:
    """A list or dict in a cell (a nested parquet column, a JSON export) is refused by name: no
    feature, label or timestamp can hold one, and pandas or scikit-learn would fail somewhere
    further on without saying which file it was."""
    if values.dtype != object:
        return
    bad = values[values.map(lambda v: isinstance(v, NON_SCALAR))]
    if len(bad):
        example = bad.iloc[0]
        shown = repr(example.tolist() if isinstance(example, np.ndarray) else example)
        raise SchemaError(
            source,
            f"{len(bad)} non-scalar value(s) (lists or dicts) such as {shown[:80]};"
            " a cell must hold one value",
            column=column,
        )


def check_values(
    out: pd.DataFrame,
    spec: ModelSettings,
    source: str,
    notes: list[str] | None = None,
    max_future_days: float | None = None,
) -> pd.DataFrame:
    """Values that are typed right but unusable (on a frame already typed by validate_batch).

    - ±inf in a numerical feature or the target: set to missing, counted in ``notes``.
    - a timestamp pandas cannot hold (out of its range), or more than ``max_future_days`` ahead
      of now: the row is dropped, counted in ``notes``; a file whose rows all go is refused.
    """
    notes = notes if notes is not None else []
    for col in [*spec.numerical, spec.target]:
        inf = np.isinf(out[col].to_numpy())
        if inf.any():
            out.loc[inf, col] = np.nan
            notes.append(
                f"column {col!r} in {shown(source)}: {int(inf.sum())} infinite value(s) set to missing"
            )
    ts = spec.timestamp
    if not ts or ts not in out.columns:
        return out
    times, out_of_range = to_utc_checked(out[ts], ts, source)
    drop = out_of_range.copy()
    if out_of_range.any():
        notes.append(
            f"column {ts!r} in {shown(source)}: {int(out_of_range.sum())} row(s) dropped, timestamp"
            " out of the range pandas can hold"
        )
    if max_future_days is not None:
        limit = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=max_future_days)
        future = (times > limit).to_numpy() & ~drop
        if future.any():
            notes.append(
                f"column {ts!r} in {shown(source)}: {int(future.sum())} row(s) dropped, timestamp more"
                f" than landing.max_future_days = {max_future_days:g} day(s) in the future"
                f" (e.g. {times[future].iloc[0]})"
            )
            drop |= future
    if drop.any() and drop.all():
        raise SchemaError(
            source,
            f"all {len(out)} row(s) have unusable timestamps (out of range or in the future)",
            column=ts,
        )
    # One unit for every batch (parquet may bring microseconds), so frames concatenate.
    out[ts] = times.astype("datetime64[ns, UTC]") if not drop.any() else times
    if drop.any():
        out = out[~drop].reset_index(drop=True)
        out[ts] = out[ts].astype("datetime64[ns, UTC]")
    return out


def to_utc_checked(values: pd.Series, column: str, source: str) -> tuple[pd.Series, np.ndarray]:
    """:func:`to_utc`, but a timestamp beyond pandas' range is flagged (a row to drop) rather
    than failing the column; text that is no timestamp at all still refuses the column."""
    none = np.zeros(len(values), dtype=bool)
    try:
        times = to_utc(values, column, source)
        if times.dt.unit == "ns":
            return times, none
        # Seconds/ms/us from parquet hold years pandas' nanoseconds cannot: flag those.
        lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
        bad = (times.notna() & ((times < lo) | (times > hi))).to_numpy()
        return times.where(~bad), bad
    except SchemaError:
        if pd.api.types.is_datetime64_any_dtype(values):
            raise
    coerced = pd.to_datetime(values, utc=True, format="mixed", errors="coerce")
    failed = values[coerced.isna() & values.notna()]
    bad = np.zeros(len(values), dtype=bool)
    for pos, v in zip(
        np.flatnonzero((coerced.isna() & values.notna()).to_numpy()), failed, strict=True
    ):
        try:
            pd.to_datetime(v, utc=True)
        except pd.errors.OutOfBoundsDatetime:
            bad[pos] = True
        except (ValueError, TypeError) as exc:
            raise SchemaError(source, f"not a timestamp column: {exc}", column=column) from None
        else:
            # Parses alone but not with the others (mixed formats): refuse as before.
            raise SchemaError(source, f"not a timestamp column: {v!r}", column=column)
    return coerced, bad


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
