"""Reading and validating batch files: every bad file gets a message naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftwatch.config import ModelSettings
from driftwatch.errors import BatchError, SchemaError
from driftwatch.store.batches import read_batch, validate_batch

SPEC = ModelSettings(
    name="flights-air-time",
    numerical=["distance", "temp"],
    categorical=["origin"],
    target="air_time",
    timestamp="time_hour",
)


def frame(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time_hour": pd.date_range("2013-02-01", periods=n, freq="h", tz="UTC"),
            "distance": np.linspace(100, 500, n),
            "temp": np.linspace(20, 40, n),
            "origin": ["JFK", "LGA", "EWR", "JFK", "LGA"][:n],
            "air_time": np.linspace(30, 90, n),
        }
    )


def test_empty_file_is_an_empty_batch(tmp_path: Path) -> None:
    for name in ("e.csv", "e.parquet"):
        (tmp_path / name).write_bytes(b"")
        assert read_batch(tmp_path / name).empty


def test_header_only_csv_and_zero_row_parquet_are_empty(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("time_hour,distance,temp,origin,air_time\n")
    frame().head(0).to_parquet(tmp_path / "z.parquet")
    for name in ("h.csv", "z.parquet"):
        df = validate_batch(read_batch(tmp_path / name), SPEC, name)
        assert len(df) == 0 and "distance" in df.columns


def test_corrupt_parquet_names_the_file(tmp_path: Path) -> None:
    frame().to_parquet(tmp_path / "ok.parquet")
    data = (tmp_path / "ok.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(BatchError, match=r"cut.parquet: not a readable parquet file"):
        read_batch(tmp_path / "cut.parquet")


def test_wrong_file_type(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(BatchError, match=r"b.json: unsupported file type .json"):
        read_batch(tmp_path / "b.json")


def test_non_utf8_csv(tmp_path: Path) -> None:
    (tmp_path / "l1.csv").write_bytes("origin,city\nJFK,Montr\xe9al\n".encode("latin-1"))
    with pytest.raises(BatchError, match=r"l1.csv: not UTF-8"):
        read_batch(tmp_path / "l1.csv")


def test_missing_column_and_duplicated_column(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"column 'temp' in f.csv: missing required column"):
        validate_batch(frame().drop(columns="temp"), SPEC, "f.csv")
    (tmp_path / "d.csv").write_text("distance,distance,temp,origin\n1,2,3,JFK\n")
    raw = pd.read_csv(tmp_path / "d.csv")  # pandas renames: distance.1 -> not a duplicate
    assert list(raw.columns) == ["distance", "distance.1", "temp", "origin"]
    dup = pd.concat([frame(), frame()[["temp"]]], axis=1)
    with pytest.raises(SchemaError, match="duplicated column name 'temp'"):
        validate_batch(dup, SPEC, "d.parquet")


def test_extra_columns_are_dropped() -> None:
    # Only the model's columns go on, whoever reads the batch (landing, reference, backtest).
    df = validate_batch(frame().assign(tailnum="N1"), SPEC, "x")
    assert "tailnum" not in df.columns and set(SPEC.features) <= set(df.columns)


def test_strings_in_numeric_feature() -> None:
    bad = frame().astype({"temp": object})
    bad.loc[2, "temp"] = "warm"
    with pytest.raises(
        SchemaError, match=r"column 'temp' in x.csv: expected a numerical column.*'warm'"
    ):
        validate_batch(bad, SPEC, "x.csv")


def test_missing_target_means_unlabelled_rows() -> None:
    df = validate_batch(frame().drop(columns="air_time"), SPEC, "x")
    assert df["air_time"].isna().all()


def test_timestamps_in_another_zone_become_utc() -> None:
    f = frame()
    f["time_hour"] = f["time_hour"].dt.tz_convert("America/New_York").astype(str)
    df = validate_batch(f, SPEC, "x")
    assert str(df["time_hour"].dt.tz) == "UTC"
    assert df["time_hour"].iloc[0] == pd.Timestamp("2013-02-01T00:00Z")


def test_bad_timestamp_names_the_column() -> None:
    f = frame().astype({"time_hour": object})
    f.loc[1, "time_hour"] = "yesterday-ish"
    with pytest.raises(SchemaError, match="column 'time_hour'"):
        validate_batch(f, SPEC, "x")


def test_parquet_read_column_by_column_checks_as_the_whole_file(tmp_path: Path) -> None:
    """`check` reads parquet one column at a time (ParquetColumns): the same columns, dtypes,
    verdicts and fingerprint as reading the whole file, a stored index stays the index, and a
    corrupt file is named."""
    from driftwatch.engine.drift import DriftDetector, frame_fingerprint
    from driftwatch.store.batches import ParquetColumns, open_columns

    ref = pd.read_parquet(Path(__file__).parents[1] / "reference_data" / "flights_2013_01.parquet")
    path = tmp_path / "ref.parquet"
    ref.set_index(pd.RangeIndex(3, 3 + len(ref) * 2, 2)).to_parquet(path)  # index stored
    cur_path = tmp_path / "cur.parquet"
    ref.iloc[::7].to_parquet(cur_path, index=False)
    lazy = open_columns(path)
    assert isinstance(lazy, ParquetColumns)
    assert list(lazy.columns) == list(ref.columns) and len(lazy) == len(ref)
    for col in ref.columns:
        assert lazy[col].dtype == ref[col].dtype
    assert frame_fingerprint(lazy) == frame_fingerprint(ref)
    whole = DriftDetector().fit(ref).check(pd.read_parquet(cur_path))
    parts = DriftDetector().fit(lazy).check(ParquetColumns(cur_path))
    assert parts.reference_fingerprint == whole.reference_fingerprint
    for a, b in zip(parts.columns, whole.columns, strict=True):
        # Sums may differ in the last bit (SIMD reductions depend on memory alignment).
        assert (a.column, a.test, a.drifted, a.rows_current) == (
            b.column,
            b.test,
            b.drifted,
            b.rows_current,
        )
        assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
    assert list(ParquetColumns(path, ["temp", "origin", "nope"]).columns) == ["origin", "temp"]
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(BatchError, match=r"bad\.parquet"):
        open_columns(bad)


def test_columns_on_threads_give_the_same_verdicts(tmp_path: Path) -> None:
    """`check --jobs` (DriftDetector n_jobs): columns judged on threads (52k rows, above the
    50,000-row floor), in column order, with the fingerprint folded in the same order."""
    from driftwatch.engine.drift import DriftDetector
    from driftwatch.store.batches import ParquetColumns

    path = Path(__file__).parents[1] / "reference_data" / "flights_2013_01_02.parquet"
    cur = tmp_path / "cur.parquet"
    pd.read_parquet(path).iloc[::-1].to_parquet(cur, index=False)  # 52k rows too
    one, two = (
        DriftDetector(n_jobs=jobs).fit(ParquetColumns(path)).check(ParquetColumns(cur))
        for jobs in (1, 2)
    )
    assert one.reference_fingerprint == two.reference_fingerprint
    assert [(c.column, c.drifted) for c in one.columns] == [
        (c.column, c.drifted) for c in two.columns
    ]
    for a, b in zip(one.columns, two.columns, strict=True):
        assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
