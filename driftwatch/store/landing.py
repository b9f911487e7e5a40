"""The landing dir as the monitor's BatchSource: claim pending files in the ledger, read and
validate each alone, and finish or fail them with the run's outcome.

A landing file that cannot be read or fails the schema (any error while reading or validating it,
not only a BatchError) is recorded as failed in the ledger with its own reason (quarantined after
``landing.max_attempts``) and left out; the others go on in the same run. A claimed file that
disappeared is marked missing once; rows repaired or dropped are counted in the batch's warnings.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from driftwatch.errors import BatchError, DriftwatchError
from driftwatch.faults import checkpoint
from driftwatch.files import escaped, shown
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Batch
from driftwatch.store.batches import read_validated
from driftwatch.store.ledger import Ledger


def ledger_for(state: Path) -> Ledger:
    return Ledger(state / "ledger.sqlite")


def lock_path(state: Path) -> Path:
    return state / "locks" / "landing.lock"


def describe_failure(exc: BaseException) -> str:
    return escaped(str(exc) if isinstance(exc, DriftwatchError) else f"{type(exc).__name__}: {exc}")


def file_failure(path: str, exc: BaseException) -> str:
    """One line naming the file (a BatchError names it already, with the column when known)."""
    if isinstance(exc, BatchError):
        return str(exc)
    text = escaped(" ".join(str(exc).split())[:300])
    return f"{shown(path)}: could not be read or validated ({type(exc).__name__}: {text})"


def stack(
    frames: list[pd.DataFrame], names: list[str], ts: str | None
) -> tuple[pd.DataFrame, pd.Series]:
    """The files' rows as one frame, oldest first, and per row the file it came from."""
    if not frames:
        return pd.DataFrame(), pd.Series([], dtype="category")
    frame = pd.concat(frames, ignore_index=True)
    origin = pd.Series(np.repeat(names, [len(f) for f in frames])).astype("category")
    if ts and ts in frame.columns:
        order = frame.sort_values(ts, kind="stable").index.to_numpy()
        frame = frame.iloc[order].reset_index(drop=True)
        origin = origin.iloc[order].reset_index(drop=True)
    return frame, origin


class LandingFiles:
    """Every pending landing file (oldest first), or one given file (``batch_path``)."""

    def __init__(self, plan: Plan, batch_path: str | None = None) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.batch_path = batch_path
        self.ledger = ledger_for(self.settings.paths.state)

    def collect(self, run_id: str | None) -> Batch:
        s = self.settings
        max_mb = s.landing.max_file_mb
        if self.batch_path is not None:
            notes: list[str] = []
            frame = read_validated(self.batch_path, s.model, max_mb, notes, s.landing)
            return Batch(
                frame,
                [str(self.batch_path)],
                False,
                warnings=notes,
                new_rows=len(frame),
                window="1 given file",
            )
        warnings = self.ledger.scan(s.paths.landing, s.landing.settle_seconds)
        files = [r.path for r in self.ledger.pending()][: s.landing.max_files_per_run]
        # A Prefect retry of this step runs it again with the same run id: the same attempt.
        self.ledger.claim(files, run_id, once_per_run=True)
        checkpoint("after-claim")
        frames, names, rejected, gone = [], [], {}, []
        quarantine = s.paths.state / "quarantine"
        for path in files:
            if self._gone(path, warnings):
                gone.append(path)
                continue
            notes = []
            try:
                frame = self._read(path, notes)
            except Exception as exc:  # any error reading one file is that file's fault
                if self._gone(path, warnings):
                    gone.append(path)
                    continue
                rejected[path] = file_failure(path, exc)
                # Each file is charged with its own reason, alone.
                moved = self.ledger.fail([path], rejected[path], s.landing.max_attempts, quarantine)
                state = "quarantined" if moved else "failed (will retry)"
                warnings.append(f"{state}: {rejected[path]}")
                continue
            warnings.extend(notes)
            if not frame.empty:
                frames.append(frame)
                names.append(path)
        good = [f for f in files if f not in rejected and f not in gone]
        new_rows = sum(len(f) for f in frames)
        window = f"{len(good)} new file(s)"
        context: list[str] = []
        hours = self.plan.context_hours
        if hours and new_rows:
            # An hourly batch can be ~40 rows: judge it together with what arrived recently.
            cutoff = (datetime.now(UTC) - timedelta(hours=hours)).isoformat(timespec="seconds")
            for rec in self.ledger.records("done"):
                if rec.first_seen < cutoff or rec.path in files or not Path(rec.path).is_file():
                    continue
                try:
                    earlier = self._read(rec.path, [])  # its notes were reported in its run
                except Exception as exc:
                    warnings.append(f"window: earlier file left out: {file_failure(rec.path, exc)}")
                    continue
                if not earlier.empty:
                    frames.append(earlier)
                    names.append(rec.path)
                    context.append(rec.path)
            window = (
                f"last {hours:g} h of arrivals: {len(good)} new + {len(context)} earlier file(s)"
            )
        frame, origin = stack(frames, names, s.model.timestamp)
        return Batch(frame, good, True, rejected, warnings, context, new_rows, window, origin)

    def _read(self, path: str, notes: list[str]) -> pd.DataFrame:
        s = self.settings
        if Path(path).is_symlink():
            raise BatchError(path, "is now a symlink; refused, not followed")
        return read_validated(path, s.model, s.landing.max_file_mb, notes, s.landing)

    def _gone(self, path: str, warnings: list[str]) -> bool:
        """A claimed file deleted or made unreadable since: marked missing once, never again."""
        p = Path(path)
        if p.is_symlink():
            return False
        if not p.exists():
            reason = "deleted after it was claimed"
        elif not p.is_file():
            reason = "no longer a regular file (replaced after it was claimed)"
        elif not os.access(p, os.R_OK):
            reason = "no longer readable (permissions changed after it was claimed)"
        else:
            return False
        warnings.append(f"missing: {self.ledger.missing(path, reason)}")
        return True

    def read(self, ids: list[str]) -> pd.DataFrame:
        frames = [self._read(f, []) for f in ids if Path(f).is_file()]
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def finish(self, batch: Batch, outcome: str) -> None:
        if batch.from_landing and batch.files:
            self.ledger.finish(batch.files, outcome)

    def fail(self, batch: Batch | None, exc: BaseException) -> None:
        """Record a failed run against its files.

        Only a fault of the data (a BatchError) counts towards quarantine: when MLflow or the
        disk fails, the files are not to blame and stay to be retried at every tick.
        """
        if batch is None or not batch.from_landing or not batch.files:
            return
        s = self.settings
        error = describe_failure(exc)
        quarantine = s.paths.state / "quarantine"
        if isinstance(exc, BatchError):
            self.ledger.fail(batch.files, error, s.landing.max_attempts, quarantine)
            return
        # Not the data's fault as far as we know: retried at every tick. But the same error
        # from the same files again and again is a file that always breaks the run (a retrain
        # that always raises on it): after landing.max_same_failures it is quarantined too.
        limit = s.landing.max_same_failures
        for path in batch.files:
            repeated = self.ledger.same_failures(path, error) + 1 >= limit
            reason = f"{error} (the same failure {limit} runs in a row)" if repeated else error
            self.ledger.fail(
                [path], reason if repeated else error, 0 if repeated else sys.maxsize, quarantine
            )
