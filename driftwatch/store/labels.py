"""Late labels: label files landing on their own, joined to history rows by ``model.id_column``.

In production a label (an ``air_time``) is known hours after the prediction. Producers drop
files with the id column and the target column (optionally ``label_time``) into
``paths.labels``; each tick takes the new ones with the landing dir's exactly-once ledger
semantics (its own ledger, ``<state>/labels-ledger.sqlite``): a file is read, stored as one
part under ``<state>/history/labels/`` and marked done; a file that cannot be read is retried
and quarantined alone after ``landing.max_attempts``, with its reason.

What each label does, decided when history is read (:func:`driftwatch.monitor.labels.apply_labels`), reported when its
file is taken (:meth:`LabelFiles.ingest`):

- a label for a row in history fills that row's missing target: the row counts in the realised
  quality of the time it was *predicted*, not the time the label came;
- a label whose id is not in history yet waits (labels may come before their features) and is
  applied when the row arrives;
- the same label again (same id, same value) is a duplicate: counted, applied once;
- a different label for an id that has one already is a change: reported, never applied (the
  first label stands; a model's realised quality must not move under it silently);
- a label for a row whose batch file carried a label already: the file's label stands, the
  same rules for duplicates and changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from driftwatch.config import Settings
from driftwatch.engine.drift import as_numeric
from driftwatch.errors import BatchError, SchemaError
from driftwatch.files import atomic_write, shown
from driftwatch.monitor.labels import label_outcomes
from driftwatch.store.batches import read_batch
from driftwatch.store.ledger import Ledger

LABEL_TIME = "label_time"
LABEL_FILE, LABEL_ARRIVED = "_label_file", "_label_arrived"


def read_labels(path: str, settings: Settings) -> tuple[pd.DataFrame, list[str]]:
    """One label file: its ids (as text) and labels (as numbers), rows without either dropped
    and counted; ``label_time`` kept when present."""
    spec = settings.model
    if not spec.id_column:
        raise SchemaError(path, "model.id_column is not set: labels cannot be joined to rows")
    raw = read_batch(
        path,
        settings.landing.max_file_mb,
        columns=[spec.id_column, spec.target, LABEL_TIME],
        max_columns=settings.landing.max_columns,
    )
    for col in (spec.id_column, spec.target):
        if col not in raw.columns:
            raise SchemaError(path, f"missing column {col!r} (a label file holds id + label)", col)
    notes = []
    out = pd.DataFrame(
        {
            spec.id_column: raw[spec.id_column].astype("string"),
            spec.target: as_numeric(raw[spec.target], spec.target, path).astype(np.float64),
        }
    )
    if LABEL_TIME in raw.columns:
        out[LABEL_TIME] = pd.to_datetime(raw[LABEL_TIME], utc=True, errors="coerce")
    bad = out[spec.id_column].isna().to_numpy() | ~np.isfinite(out[spec.target].to_numpy())
    if bad.any():
        notes.append(
            f"{shown(path)}: {int(bad.sum())} label row(s) dropped (missing id, or a label that"
            " is missing or infinite)"
        )
        out = out[~bad].reset_index(drop=True)
    return out, notes


class LabelFiles:
    """The labels landing dir, its ledger and the stored label parts."""

    def __init__(self, settings: Settings, root: Path) -> None:
        self.settings = settings
        self.dir = settings.paths.labels
        self.parts = root / "labels"
        self.ledger = Ledger(settings.paths.state / "labels-ledger.sqlite")

    def ingest(self, known: pd.Series) -> tuple[list[str], list[str]]:
        """Take every new label file: (one line per file saying what its labels did, warnings:
        files refused, rows dropped, labels changed).

        ``known``: the ids of history and of this run's batch with their labels (NaN when the
        row has none yet)."""
        s = self.settings
        if self.dir is None:
            return [], []
        warnings = self.ledger.scan(self.dir, s.landing.settle_seconds, s.landing.duplicates)
        lines: list[str] = []
        files = [r.path for r in self.ledger.pending()][: s.landing.max_files_per_run]
        self.ledger.claim(files, None)
        quarantine = s.paths.state / "quarantine" / "labels"
        for path in files:
            try:
                new, notes = read_labels(path, s)
            except Exception as exc:  # this file's fault, and only this file's
                reason = str(exc) if isinstance(exc, BatchError) else f"{shown(path)}: {exc}"
                moved = self.ledger.fail([path], reason, s.landing.max_attempts, quarantine)
                warnings.append(f"labels {'quarantined' if moved else 'failed'}: {reason}")
                continue
            record = self.ledger.get(path)
            assert record is not None  # scanned above
            out = label_outcomes(new, self.labels(), known, s.model.id_column or "", s.model.target)
            new[LABEL_FILE] = path
            new[LABEL_ARRIVED] = pd.Timestamp(datetime.now(UTC))
            target = self.parts / f"{record.key}.parquet"
            atomic_write(target, lambda tmp, f=new: f.to_parquet(tmp, index=False))
            self.ledger.finish([path], "labels")
            warnings.extend(notes)
            (warnings if out["changed"] else lines).append(
                f"labels from {shown(Path(path).name)}: {out['applied']} applied,"
                f" {out['waiting']} waiting for their rows (ids not in history yet),"
                f" {out['duplicates']} duplicate(s) ignored, {out['changed']} changed"
                + (
                    f" (not applied: the first label stands; e.g. {out['example']})"
                    if out["changed"]
                    else ""
                )
            )
        return lines, warnings

    def labels(self) -> pd.DataFrame:
        """Every committed label, in arrival order (ledger order: oldest file first)."""
        spec = self.settings.model
        frames = []
        for record in self.ledger.records("done"):
            part = self.parts / f"{record.key}.parquet"
            if part.is_file():
                frames.append(pd.read_parquet(part))
        if not frames:
            return pd.DataFrame({spec.id_column or "id": pd.Series(dtype="string"),
                                 spec.target: pd.Series(dtype=np.float64)})  # fmt: skip
        out = pd.concat(frames, ignore_index=True)
        out[spec.id_column] = out[spec.id_column].astype("string")
        return out
