"""The history store: every processed batch's rows, with the champion's prediction for each,
and the labels that arrived later, under ``<state>/history/``.

Layout (a partitioned parquet dataset, readable by pandas, pyarrow, DuckDB or Spark as it is)::

    history/rows/date=2013-03-01/<key>.parquet     rows of one landing file on one (UTC) day
    history/labels/<key>.parquet                   one label file's rows (id, label, times)

Why partitioned parquet and not DuckDB or sqlite: history is append-only and read by time range
(the training window, a quality lookback), which is exactly what date partitions give, with
pruning as deleting directories; each batch is written once, immutable, by the process that
holds the landing lock, so no concurrent writer needs a database; and the commit record already
exists: the ledger. A part counts only when its landing file is ``done`` in the ledger (its key
is derived from the file's path and content hash as the ledger recorded them). The monitor writes
a batch's parts before it marks the batch done; a crash in between leaves parts of a file that is
not done, which the next run removes (:meth:`HistoryFiles.repair`) before it processes the file
again. So a batch is in history exactly when it is done: both or neither.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from driftwatch.engine.drift import as_categorical
from driftwatch.files import atomic_write
from driftwatch.monitor.labels import apply_labels
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import ARRIVED, BATCH_KEY, FROM_FILE, PREDICTED, SERVED_BY, Batch
from driftwatch.store.batches import read_validated
from driftwatch.store.labels import LabelFiles
from driftwatch.store.ledger import Ledger

log = logging.getLogger("driftwatch.history")


def history_dir(state: Path) -> Path:
    return state / "history"


class HistoryFiles:
    """The monitor's History port over ``<state>/history`` and the landing ledger."""

    def __init__(self, plan: Plan, ledger: Ledger) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.ledger = ledger
        self.root = history_dir(self.settings.paths.state)
        self.rows_dir = self.root / "rows"
        self.labels = LabelFiles(self.settings, self.root)

    # -- writing --------------------------------------------------------------------------

    def append(self, batch: Batch, predictions: pd.Series | None, champion: str | None) -> str:
        """Write the batch's new rows (not its context rows), one part per file and day.

        Idempotent: a retried or repeated append rewrites the same parts with the same rows.
        Rows of a file not in the ledger (a single file given to ``run --batch``) are not kept:
        history is what the landing dir delivered.
        """
        if not batch.from_landing or not batch.files or not batch.rows:
            return "history: nothing to add"
        frame = batch.frame
        origin = batch.origin if batch.origin is not None else pd.Series("", index=frame.index)
        arrived = pd.Timestamp(datetime.now(UTC))
        ts = self.settings.model.timestamp
        written = 0
        for path in batch.files:
            record = self.ledger.get(path)
            if record is None:
                continue
            rows = frame[(origin == path).to_numpy()]
            if rows.empty:
                continue
            part = rows.copy()
            for col in self.settings.model.categorical:  # plain text: one schema in every part
                part[col] = part[col].astype(object).where(part[col].notna(), None)
            part[FROM_FILE] = path
            part[BATCH_KEY] = record.key
            part[ARRIVED] = arrived
            part[SERVED_BY] = champion
            part[PREDICTED] = (
                predictions.reindex(rows.index).astype(float) if predictions is not None else None
            )
            if ts and ts in part.columns and part[ts].notna().any():
                days = part[ts].dt.strftime("%Y-%m-%d").fillna(arrived.strftime("%Y-%m-%d"))
            else:
                days = pd.Series(arrived.strftime("%Y-%m-%d"), index=part.index)
            for day, group in part.groupby(days, sort=True):
                target = self.rows_dir / f"date={day}" / f"{record.key}.parquet"
                table = pa.Table.from_pandas(
                    group, schema=self._schema(group), preserve_index=False
                )
                atomic_write(target, lambda tmp, t=table: pq.write_table(t, tmp))
            written += len(part)
        return f"history: {written} row(s) of {len(batch.files)} file(s) added"

    def _schema(self, part: pd.DataFrame) -> pa.Schema:
        """One schema for every part, whatever its values: a batch whose champion is None, or
        whose categorical column is all missing, must not write a ``null`` column that the
        next part's strings cannot be read together with."""
        spec = self.settings.model
        types: dict[str, pa.DataType] = {c: pa.float64() for c in [*spec.numerical, spec.target]}
        types |= {c: pa.string() for c in spec.categorical}
        if spec.timestamp:
            types[spec.timestamp] = pa.timestamp("ns", tz="UTC")
        if spec.id_column:
            types[spec.id_column] = pa.string()
        types |= {
            FROM_FILE: pa.string(),
            BATCH_KEY: pa.string(),
            ARRIVED: pa.timestamp("ns", tz="UTC"),
            SERVED_BY: pa.string(),
            PREDICTED: pa.float64(),
        }
        return pa.schema([(c, types.get(c, pa.string())) for c in part.columns])

    def repair(self) -> str:
        """Remove parts whose file is not ``done`` in the ledger (a run that crashed between
        writing history and finishing its files); those files are processed again. Run under
        the landing lock, before the files are claimed."""
        committed = self._committed()
        removed = 0
        for part in self._parts():
            if part.stem not in committed:
                part.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.warning("history: removed %d part(s) of files not finished by their run", removed)
            return f"history: removed {removed} uncommitted part(s)"
        return "history: consistent"

    def prune(self) -> str:
        """Day partitions older than ``history.keep_days`` before the newest day go."""
        days = self._days()
        if not days:
            return "history: empty"
        cutoff = days[-1] - pd.Timedelta(days=self.settings.history.keep_days)
        gone = [d for d in days if d < cutoff]
        for d in gone:
            shutil.rmtree(self.rows_dir / f"date={d:%Y-%m-%d}", ignore_errors=True)
        return f"history: {len(gone)} day(s) pruned, {len(days) - len(gone)} kept"

    # -- reading --------------------------------------------------------------------------

    def rows(self, pending: list[str] | None = None, days: float | None = None) -> pd.DataFrame:
        """Committed rows (plus those of ``pending`` files of the current run), newest ``days``
        of partitions only when given; categories typed as the model expects."""
        keys = self._committed()
        given = []  # a file given to ``run --batch`` is in no ledger: read as it is
        for path in pending or []:
            record = self.ledger.get(path)
            if record is not None:
                keys.add(record.key)
            elif Path(path).is_file():
                given.append(read_validated(path, self.settings.model))
        all_days = self._days()
        if days is not None and all_days:
            start = all_days[-1] - pd.Timedelta(days=days + 1)
            all_days = [d for d in all_days if d >= start]
        # Without a timestamp the rows' order is the order they arrived in (the holdout is the
        # newest slice): files by the time they were committed, not by their (hashed) names.
        timed = bool(self.settings.model.timestamp)

        def order(p: Path) -> tuple:
            return (p.name,) if timed else (p.stat().st_mtime_ns, p.name)

        files = [
            p
            for d in all_days
            for p in sorted((self.rows_dir / f"date={d:%Y-%m-%d}").glob("*.parquet"), key=order)
            if p.stem in keys
        ]
        frames = [f for f in [_read(files), *given] if not f.empty]
        if not frames:
            return pd.DataFrame()
        frame = pd.concat(frames, ignore_index=True)
        for col in self.settings.model.categorical:
            if col in frame.columns:
                frame[col] = as_categorical(frame[col])
        spec = self.settings.model
        if spec.id_column and spec.id_column in frame.columns:
            labels = self.labels.labels()
            frame = apply_labels(frame, labels, spec.id_column, spec.target)
        if spec.timestamp and spec.timestamp in frame.columns:
            frame = frame.sort_values(spec.timestamp, kind="stable").reset_index(drop=True)
        return frame

    def ingest_labels(self, batch: Batch) -> tuple[list[str], list[str]]:
        """Take the new label files (``paths.labels``): (one line per file on what its labels
        did, warnings). Ids of this run's batch count as known."""
        spec = self.settings.model
        if self.settings.paths.labels is None or not spec.id_column:
            return [], []
        keys = self._committed()
        files = [p for p in self._parts() if p.stem in keys]
        known = _read(files, [spec.id_column, spec.target])
        if batch.rows and spec.id_column in batch.frame.columns:
            mine = batch.frame[[spec.id_column, spec.target]]
            known = pd.concat([known, mine], ignore_index=True) if len(known) else mine
        if known.empty:
            ids = pd.Series(dtype=np.float64)
        else:
            ids = known.set_index(known[spec.id_column].astype("string"))[spec.target]
        return self.labels.ingest(ids)

    def _committed(self) -> set[str]:
        return {r.key for r in self.ledger.records("done")}

    def _parts(self) -> list[Path]:
        return sorted(self.rows_dir.glob("date=*/*.parquet")) if self.rows_dir.is_dir() else []

    def _days(self) -> list[pd.Timestamp]:
        if not self.rows_dir.is_dir():
            return []
        out = []
        for d in self.rows_dir.glob("date=*"):
            try:
                out.append(pd.Timestamp(d.name.removeprefix("date=")))
            except ValueError:
                continue
        return sorted(out)


def _read(files: list[Path], columns: list[str] | None = None) -> pd.DataFrame:
    """The parts as one frame, read by pyarrow's dataset reader (in parallel, one schema)."""
    if not files:
        return pd.DataFrame()
    import pyarrow.dataset as ds

    dataset = ds.dataset([str(f) for f in files], format="parquet")
    names = None if columns is None else [c for c in columns if c in dataset.schema.names]
    return dataset.to_table(columns=names).to_pandas()


def read_realised(plan: Plan, freq: str = "D") -> pd.DataFrame:
    """The realised metric per period from the state dir's history (for ``driftwatch realised``
    and the report's plot)."""
    from driftwatch.monitor.realised import realised
    from driftwatch.store.landing import ledger_for

    history = HistoryFiles(plan, ledger_for(plan.settings.paths.state))
    return realised(history.rows(), plan, freq)
