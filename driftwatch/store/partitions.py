"""Big batches as partitions: a directory of parquet files, or one big file cut by row groups.

A partition is what one Dask worker reads and summarises (engine/summaries.py); it is read one
column at a time, so a worker holds one column of one partition, never the batch. Every failure
names the file (and the column), as for ordinary batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftwatch.errors import BatchError

if TYPE_CHECKING:
    from driftwatch.config import ModelSettings
    from driftwatch.engine.blocks import BlockProfile
    from driftwatch.engine.stattests import Kind
    from driftwatch.engine.summaries import BatchSummary
    from driftwatch.model.partial_quality import QualitySums
    from driftwatch.monitor.big import HourSummaries

PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Partition:
    """Row groups ``row_groups`` of one parquet file (all of them when None)."""

    path: str
    row_groups: tuple[int, ...] | None
    rows: int

    @property
    def label(self) -> str:
        if self.row_groups is None:
            return self.path
        return f"{self.path} (row groups {self.row_groups[0]}-{self.row_groups[-1]})"


def is_dataset(path: str | Path) -> bool:
    """A directory is a partitioned dataset (every parquet file under it is one batch)."""
    return Path(path).is_dir()


def parquet_files(path: str | Path) -> list[Path]:
    """The parquet files of a dataset (sorted; hidden and ``_``-prefixed files skipped, as
    Spark and pyarrow write ``_SUCCESS`` and ``_metadata``), or the file itself."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix.lower() in PARQUET_SUFFIXES
        and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )
    if not files:
        raise BatchError(str(path), f"a directory without parquet files ({PARQUET_SUFFIXES})")
    return files


def partitions(path: str | Path, partition_rows: int = 1_000_000) -> list[Partition]:
    """The partitions of a file or a dataset: each file's row groups gathered into runs of
    about ``partition_rows`` rows (a file's single row group is one partition however big)."""
    import pyarrow.parquet as pq

    out: list[Partition] = []
    for file in parquet_files(path):
        try:
            meta = pq.read_metadata(file)
        except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
            raise BatchError(
                str(file), f"not a readable parquet file ({type(exc).__name__}: {exc})"
            ) from None
        groups: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            groups.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= partition_rows:
                out.append(Partition(str(file), tuple(groups), rows))
                groups, rows = [], 0
        if groups:
            out.append(Partition(str(file), tuple(groups), rows))
        if meta.num_row_groups == 0:
            out.append(Partition(str(file), None, 0))
    return out


def dataset_rows(path: str | Path) -> int:
    """Rows of a parquet file or dataset, from the footers alone."""
    return sum(p.rows for p in partitions(path, partition_rows=1 << 62))


def sample_rows(
    path: str | Path, rows: int, columns: list[str] | None = None, partition_rows: int = 100_000
) -> pd.DataFrame:
    """About ``rows`` rows of a big parquet file or dataset for fitting a detector on (its test
    choice and lattices): whole partitions spread evenly over the data, so the sample spans the
    whole period (rows of one period share their context: a random row sample would be no
    better and reads everything)."""
    import pyarrow.parquet as pq

    parts = partitions(path, partition_rows)
    total = sum(p.rows for p in parts)
    take = max(1, round(len(parts) * min(1.0, rows / max(total, 1))))
    picked = [parts[int(i)] for i in np.unique(np.linspace(0, len(parts) - 1, take).round())]
    frames = []
    for part in picked:
        f = pq.ParquetFile(part.path)
        names = [c for c in f.schema_arrow.names if columns is None or c in columns]
        groups = list(part.row_groups) if part.row_groups is not None else None
        table = f.read(columns=names) if groups is None else f.read_row_groups(groups, names)
        frames.append(table.to_pandas())
    return pd.concat(frames, ignore_index=True)


def read_column(part: Partition, column: str) -> pd.Series:
    """One column of one partition (as ``pd.read_parquet`` would give it)."""
    import pyarrow.parquet as pq

    try:
        if column not in pq.read_schema(part.path).names:
            raise BatchError(part.path, "missing required column", column=column)
        # Text is read as a dictionary (pandas categories): counted without a Python string
        # per row.
        f = pq.ParquetFile(part.path, read_dictionary=[column])
        if part.row_groups is None:
            table = f.read(columns=[column])
        else:
            table = f.read_row_groups(list(part.row_groups), columns=[column])
        return table.to_pandas().iloc[:, 0].rename(column)
    except BatchError:
        raise
    except Exception as exc:
        raise BatchError(
            part.label, f"not a readable parquet file ({type(exc).__name__}: {exc})", column=column
        ) from None


def summarise_partition(
    part: Partition, kinds: Mapping[str, Kind], lattices: Mapping[str, np.ndarray]
) -> BatchSummary:
    """One partition's summary, read and summarised one column at a time (a Dask task)."""
    from driftwatch.engine.drift import _prepare
    from driftwatch.engine.summaries import BatchSummary, ColumnSummary

    cols = {}
    for col, kind in kinds.items():
        raw = read_column(part, col)
        if kind == "numerical" and isinstance(raw.dtype, pd.CategoricalDtype):
            raw = raw.astype(object)  # numbers stored as text: checked value by value
        values = _prepare(raw, kind, col, part.label)
        del raw
        cols[col] = ColumnSummary.of(values, kind, lattices.get(col))
        del values
    return BatchSummary(cols, part.rows)


def score_partition(part: Partition, model: Any, spec: ModelSettings) -> QualitySums:
    """The model's sufficient statistics on one partition's labelled rows (a Dask task)."""
    from driftwatch.model.partial_quality import QualitySums
    from driftwatch.model.schema import validate_batch
    from driftwatch.store.batches import model_columns

    wanted = [c for c in model_columns(spec) if c != spec.id_column]
    frame = pd.concat([read_column(part, c) for c in wanted if c], axis=1)
    frame = validate_batch(frame, spec, part.label)
    return QualitySums.of(model, frame, spec)


def summarise_partition_hours(
    part: Partition,
    spec: ModelSettings,
    profile: BlockProfile,
    lattices: Mapping[str, np.ndarray],
    keep: pd.Timedelta | None,
    model: Any = None,
    estimator: Any = None,
) -> HourSummaries:
    """One partition's rows as hour summaries for the monitor (a Dask task): read with the
    model's columns, validated as any landing file (every failure names the partition's file),
    summarised per local hour, and scored by ``model`` where labelled."""
    from driftwatch.model.schema import validate_batch
    from driftwatch.monitor.big import summarise_rows
    from driftwatch.store.batches import model_columns

    wanted = [c for c in dict.fromkeys(model_columns(spec)) if c and c != spec.id_column]
    frame = pd.concat([read_column(part, c) for c in wanted], axis=1)
    notes: list[str] = []
    frame = validate_batch(frame, spec, part.label, notes)
    return summarise_rows(frame, spec, profile, dict(lattices), keep, model, notes, estimator)


def is_big(path: str | Path, summary_above_rows: int) -> bool:
    """A directory (a partitioned dataset), or a parquet file of more than
    ``summary_above_rows`` rows (read from its footer)."""
    from driftwatch.store.batches import parquet_rows

    path = Path(path)
    if is_dataset(path):
        return True
    if path.suffix.lower() not in PARQUET_SUFFIXES or not path.is_file():
        return False
    rows = parquet_rows(path)
    return rows is not None and rows > summary_above_rows


def manifest(path: str | Path) -> tuple[int, str]:
    """A dataset directory's size (its parquet files' bytes) and a hash of its manifest: every
    parquet file's relative name, size and modification time. Hashing the content would read a
    big batch whole once more; a file rewritten in place changes its size or time."""
    import hashlib

    root = Path(path)
    h = hashlib.sha256()
    size = 0
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in PARQUET_SUFFIXES:
            continue
        rel = p.relative_to(root)
        if any(part.startswith((".", "_")) for part in rel.parts):
            continue
        st = p.stat()
        size += st.st_size
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return size, h.hexdigest()


def dataset_state(path: str | Path) -> tuple[bool, float]:
    """Whether a dataset directory has Spark's ``_SUCCESS`` marker, and the newest
    modification time of anything under it (to tell whether it is still being written)."""
    root = Path(path)
    newest = root.stat().st_mtime
    for p in root.rglob("*"):
        try:
            newest = max(newest, p.stat().st_mtime)
        except OSError:  # removed while listed: it was changing
            newest = float("inf")
    return (root / "_SUCCESS").is_file(), newest
