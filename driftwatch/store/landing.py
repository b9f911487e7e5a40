"""The landing dir as the monitor's BatchSource: claim pending files in the ledger, read and
validate each alone, and finish or fail them with the run's outcome.

A landing file that cannot be read or fails the schema (any error while reading or validating it,
not only a BatchError) is recorded as failed in the ledger with its own reason (quarantined after
``landing.max_attempts``) and left out; the others go on in the same run. A claimed file that
disappeared is marked missing once; rows repaired or dropped are counted in the batch's warnings.
A claimed file whose size or content (sha256) is no longer what the scan recorded, or that
changes while it is read, is not used: it goes back to pending (the attempt given back) with a
warning, and the next run reads its new content.

One landing dir has one owner: a run holds the lock in the landing dir itself (whatever its state
dir), and the first state dir to process the landing dir is written into it
(``.driftwatch-owner``); a config with another state dir is refused there with one line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from driftwatch.config import Settings
from driftwatch.errors import BatchError, DriftwatchError
from driftwatch.faults import checkpoint
from driftwatch.files import atomic_write_bytes, escaped, file_hash, shown
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Batch
from driftwatch.store import lock
from driftwatch.store.batches import read_validated
from driftwatch.store.ledger import FileRecord, Ledger

OWNER_FILE = ".driftwatch-owner"
LANDING_LOCK = ".driftwatch.lock"


def ledger_for(state: Path) -> Ledger:
    return Ledger(state / "ledger.sqlite")


def lock_path(state: Path) -> Path:
    """The state dir's lock: a monitor run, ``rollback`` and ``requeue`` each hold it."""
    return state / "locks" / "landing.lock"


def landing_lock_path(landing: Path) -> Path:
    """The landing dir's lock, in the landing dir itself (hidden: never taken as a batch)."""
    return landing / LANDING_LOCK


class LandingOwned(DriftwatchError):
    """The landing dir is processed by a driftwatch with another state dir."""


class ChangedFile(DriftwatchError):
    """A landing file is no longer the content the ledger recorded for it."""

    def __init__(self, path: str, what: str) -> None:
        self.path, self.what = path, what
        super().__init__(f"{shown(path)}: {what}")


@contextmanager
def owning(settings: Settings) -> Iterator[None]:
    """Hold the landing dir (its lock, then the state dir's) for one run over its files.

    The lock in the landing dir keeps two monitors off the same files at once whatever their
    state dirs; the owner marker keeps a second state dir off them for good (each would keep
    its own ledger and process every file again). ``LockBusy`` / ``LandingOwned`` say which.
    """
    landing, state = settings.paths.landing, settings.paths.state
    landing.mkdir(parents=True, exist_ok=True)
    with lock.exclusive(landing_lock_path(landing)), lock.exclusive(lock_path(state)):
        claim_owner(landing, state)
        yield


def claim_owner(landing: Path, state: Path) -> None:
    """Write this state dir into the landing dir's owner marker, or refuse if another is there."""
    marker = landing / OWNER_FILE
    mine = str(state.resolve())
    if not marker.exists():
        body = {"state": mine, "since": datetime.now(UTC).isoformat(timespec="seconds")}
        atomic_write_bytes(marker, (json.dumps(body) + "\n").encode())
        return
    try:
        with marker.open("rb") as f:
            owner = str(json.loads(f.read(4096).decode("utf-8"))["state"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LandingOwned(
            f"landing dir {shown(landing)}: owner marker {shown(marker)} is unreadable"
            f" ({type(exc).__name__}); not processed: delete it to let this state dir"
            f" ({shown(mine)}) take the landing dir"
        ) from None
    if owner != mine:
        raise LandingOwned(
            f"landing dir {shown(landing)} belongs to the driftwatch with state dir"
            f" {shown(owner)} (see {shown(marker)}); not processed by this one (state dir"
            f" {shown(mine)}): give each config its own landing dir, or delete the marker to"
            " hand this one over"
        )


def describe_failure(exc: BaseException) -> str:
    return escaped(str(exc) if isinstance(exc, DriftwatchError) else f"{type(exc).__name__}: {exc}")


def file_failure(path: str, exc: BaseException) -> str:
    """One line naming the file (a BatchError names it already, with the column when known)."""
    if isinstance(exc, (BatchError, ChangedFile)):
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
        warnings = self.ledger.scan(s.paths.landing, s.landing.settle_seconds, s.landing.duplicates)
        claimed = self.ledger.pending()[: s.landing.max_files_per_run]
        files = [r.path for r in claimed]
        # A Prefect retry of this step runs it again with the same run id: the same attempt.
        self.ledger.claim(files, run_id, once_per_run=True)
        checkpoint("after-claim")
        frames, names, rejected, gone, changed = [], [], {}, [], []
        quarantine = s.paths.state / "quarantine"
        for rec in claimed:
            path = rec.path
            if self._gone(path, warnings):
                gone.append(path)
                continue
            notes = []
            try:
                frame = self._read(path, notes, rec)
            except ChangedFile as exc:  # not the file's fault, nor half of it: read next run
                warnings.append(f"changed: {self.ledger.changed(path, exc.what)}")
                changed.append(path)
                continue
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
        good = [f for f in files if f not in rejected and f not in gone and f not in changed]
        new_rows = sum(len(f) for f in frames)
        window = f"{len(good)} new file(s)"
        context: list[str] = []
        hours = self.plan.context_hours
        if hours and new_rows:
            # An hourly batch can be ~40 rows: judge it together with what arrived recently.
            cutoff = (datetime.now(UTC) - timedelta(hours=hours)).isoformat(timespec="seconds")
            for rec in self.ledger.records("done"):
                if (
                    rec.first_seen < cutoff
                    or rec.path in files
                    or rec.outcome == "duplicate"  # its rows are in the window once already
                    or not Path(rec.path).is_file()
                ):
                    continue
                try:
                    earlier = self._read(rec.path, [], rec)  # its notes were said in its run
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

    def _read(self, path: str, notes: list[str], rec: FileRecord | None = None) -> pd.DataFrame:
        """The file read and validated; with ``rec`` only if it still is the content the ledger
        recorded (size, sha256) and does not change while it is read (else ChangedFile)."""
        s = self.settings
        if Path(path).is_symlink():
            raise BatchError(path, "is now a symlink; refused, not followed")
        if rec is None:
            return read_validated(path, s.model, s.landing.max_file_mb, notes, s.landing)
        before = os.stat(path)
        if before.st_size != rec.size:
            raise ChangedFile(path, f"{rec.size} bytes when recorded, {before.st_size} now")
        # Past max_file_mb the read refuses it unread; hashing it first would read it all.
        if before.st_size <= s.landing.max_file_mb * 2**20 and file_hash(path) != rec.sha256:
            raise ChangedFile(path, "its content (sha256) is not what was recorded")
        frame = read_validated(path, s.model, s.landing.max_file_mb, notes, s.landing)
        after = os.stat(path)
        if (after.st_size, after.st_mtime_ns, after.st_ino) != (
            before.st_size,
            before.st_mtime_ns,
            before.st_ino,
        ):
            raise ChangedFile(path, "it was written to while it was read")
        return frame

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
