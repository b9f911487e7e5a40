"""Reading batch files; each is checked against the model spec by :mod:`driftwatch.model.schema`.

Every failure here names the file (and the column when there is one), because the person reading
it at 3 a.m. needs to know which of forty landing files to look at.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from driftwatch.errors import BatchError
from driftwatch.files import file_hash
from driftwatch.model.schema import labelled, to_utc, validate_batch

BATCH_SUFFIXES = (".parquet", ".pq", ".csv")

if TYPE_CHECKING:  # annotations only: config pulls in pydantic-settings (~0.15 s)
    from driftwatch.config import LandingSettings, ModelSettings


def read_batch(
    path: str | Path,
    max_mb: float | None = None,
    columns: list[str] | None = None,
    max_columns: int | None = None,
    max_rows: int | None = None,
) -> pd.DataFrame:
    """Read one parquet or csv batch. An empty file is an empty batch, not an error.

    ``max_mb`` bounds memory: a file far larger than usual is refused before it is read.
    ``columns``: only these are read (those present); the others are never loaded.
    ``max_columns``: a file with more columns is refused from its header (parquet schema, csv
    first line) before anything else is read.
    ``max_rows``: a parquet file with more rows is refused from its footer, unread; a csv is read
    up to one row past the limit and then refused (memory holds at most ``max_rows + 1`` rows).
    """
    path = Path(path)
    suffix = _checked_suffix(path, max_mb)
    if path.stat().st_size == 0:
        return pd.DataFrame()
    wanted = None if columns is None else set(columns)
    if max_columns is not None:
        names = header(path)
        if names is not None and len(names) > max_columns:
            raise BatchError(
                str(path),
                f"{len(names)} columns, above landing.max_columns = {max_columns}: refused"
                " unread (send only the model's columns, or raise the limit)",
            )
    if suffix == ".csv":
        nrows = None if max_rows is None else max_rows + 1
        try:
            if wanted is not None:
                frame = pd.read_csv(
                    path, encoding="utf-8", usecols=lambda c: c in wanted, nrows=nrows
                )
            else:
                frame = pd.read_csv(path, encoding="utf-8", nrows=nrows)
            if max_rows is not None and len(frame) > max_rows:
                raise BatchError(
                    str(path),
                    f"more than landing.max_rows = {max_rows:,} rows: refused (the read stopped"
                    " there; split the file, or raise the limit if this size is expected)",
                )
            return frame
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except UnicodeDecodeError as exc:
            raise BatchError(
                str(path), f"not UTF-8 text ({exc.encoding}: {exc.reason}); re-export as UTF-8"
            ) from None
        except pd.errors.ParserError as exc:
            raise BatchError(str(path), f"malformed csv: {exc}") from None
    if max_rows is not None:
        rows = parquet_rows(path)
        if rows is not None and rows > max_rows:
            raise BatchError(
                str(path),
                f"{rows:,} rows, above landing.max_rows = {max_rows:,}: refused unread (split"
                " the file, or raise the limit if this size is expected)",
            )
    try:
        if wanted is not None:
            names = header(path) or []
            return pd.read_parquet(path, columns=[c for c in names if c in wanted])
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise BatchError(
            str(path), f"not a readable parquet file ({type(exc).__name__}: {exc})"
        ) from None


def _checked_suffix(path: Path, max_mb: float | None = None) -> str:
    """The file's type, after the checks every read makes first (exists, size, type)."""
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
    return suffix


class ParquetColumns:
    """A parquet file read one column at a time: a ``ColumnSource`` for the drift engine.

    ``driftwatch check`` on two 1M-row files of 22 columns held both files whole (~350 MB of
    values, plus pyarrow's copies while converting); the engine summarises one column at a time,
    so reading lazily keeps only the column in hand. Each column comes out as
    ``pd.read_parquet`` would give it (the file's pandas metadata restores categories and time
    zones). ``columns``: only these (those present) are offered; the others are never read.
    """

    def __init__(self, path: str | Path, columns: list[str] | None = None) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        try:
            self._file = pq.ParquetFile(self.path)
            schema = self._file.schema_arrow
            # A stored pandas index is the index, not a column (as pd.read_parquet reads it).
            index = {
                c
                for c in (schema.pandas_metadata or {}).get("index_columns", [])
                if isinstance(c, str)
            }
            names = [c for c in schema.names if c not in index]
            self._rows = int(self._file.metadata.num_rows)
        except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
            raise BatchError(
                str(self.path), f"not a readable parquet file ({type(exc).__name__}: {exc})"
            ) from None
        wanted = None if columns is None else set(columns)
        self.columns = pd.Index([c for c in names if wanted is None or c in wanted], dtype=object)
        self._lock = threading.Lock()  # one reader: a ParquetFile is not documented thread-safe

    def __len__(self) -> int:
        return self._rows

    @property
    def empty(self) -> bool:
        """No rows (a file without the wanted columns is not empty: the check says what is
        missing)."""
        return self._rows == 0

    def __getitem__(self, column: str) -> pd.Series:
        if column not in self.columns:
            raise KeyError(column)
        try:
            with self._lock:
                table = self._file.read(columns=[column], use_pandas_metadata=False)
            return table.to_pandas().iloc[:, 0].rename(column)
        except Exception as exc:
            raise BatchError(
                str(self.path),
                f"not a readable parquet file ({type(exc).__name__}: {exc})",
                column=column,
            ) from None


def open_columns(
    path: str | Path, columns: list[str] | None = None
) -> pd.DataFrame | ParquetColumns:
    """A batch file for the drift engine: a parquet file is read column by column as the engine
    asks (see ``ParquetColumns``), a csv whole (its columns cannot be read apart cheaply).
    ``columns``: only these are read (those present). An empty file is an empty frame."""
    path = Path(path)
    if _checked_suffix(path) == ".csv" or path.stat().st_size == 0:
        frame = read_batch(path, columns=columns)
        if columns is not None and frame.shape[1] == 0 and header(path):
            # None of the wanted columns: read it all, so the check names what is missing
            # rather than calling a file with rows empty.
            frame = read_batch(path)
        return frame
    return ParquetColumns(path, columns)


def header(path: Path) -> list[str] | None:
    """The column names, from the parquet footer or the csv's first line (None: unreadable, the
    read itself will say why)."""
    try:
        if path.suffix.lower() == ".csv":
            return list(pd.read_csv(path, encoding="utf-8", nrows=0).columns)
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except Exception:  # the full read reports it, with the file's name
        return None


def parquet_rows(path: Path) -> int | None:
    """The row count in a parquet file's footer (None: unreadable, the read will say why)."""
    try:
        import pyarrow.parquet as pq

        return int(pq.read_metadata(path).num_rows)
    except Exception:  # the full read reports it, with the file's name
        return None


def model_columns(spec: ModelSettings) -> list[str]:
    """What a batch is read for: the features, the target, the timestamp and the row id."""
    return [
        *spec.features,
        spec.target,
        *([spec.timestamp] if spec.timestamp else []),
        *([spec.id_column] if spec.id_column else []),
    ]


def read_validated(
    path: str | Path,
    spec: ModelSettings,
    max_mb: float | None = None,
    notes: list[str] | None = None,
    landing: LandingSettings | None = None,
) -> pd.DataFrame:
    """A batch file read and checked against the model spec; an empty file stays empty.

    Only the model's columns are read. With ``landing`` its limits apply (max_columns, max_rows,
    max_future_days); repairs and dropped rows are said in ``notes``.
    """
    raw = read_batch(
        path,
        max_mb,
        columns=model_columns(spec),
        max_columns=landing.max_columns if landing else None,
        max_rows=landing.max_rows if landing else None,
    )
    if raw.empty and not (len(raw.columns) == 0 and header(Path(path))):
        return raw  # an empty file, or no rows: nothing to check
    # (A file with columns but none of the model's reads as no columns: refused below.)
    future = landing.max_future_days if landing else None
    return validate_batch(raw, spec, str(path), notes, future)


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


__all__ = [
    "BATCH_SUFFIXES",
    "ParquetColumns",
    "file_hash",
    "labelled",
    "open_columns",
    "read_batch",
    "read_validated",
    "split_batches",
    "to_utc",
    "validate_batch",
]
