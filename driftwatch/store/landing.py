"""The landing dir as the monitor's BatchSource: claim pending files in the ledger, read and
validate each alone, and finish or fail them with the run's outcome.

A landing file that cannot be read or fails the schema (any error while reading or validating it,
not only a BatchError) is recorded as failed in the ledger with its own reason (quarantined after
``landing.max_attempts``) and left out; the others go on in the same run. A claimed file that
disappeared is marked missing once; rows repaired or dropped are counted in the batch's warnings.
A claimed file whose size or content (sha256) is no longer what the scan recorded, or that
changes while it is read, is not used: it goes back to pending (the attempt given back) with a
warning, and the next run reads its new content.

A run that fails after its files were read, for no cause known to be the infrastructure's (see
:meth:`LandingFiles.fail`), cannot say which file broke it: its files are *isolated*, and the same
tick (:meth:`driftwatch.monitor.pipeline.MonitorCycle.run`) goes on to judge each alone, in a run
of its own, so the good files are done in that tick and a file's fault is charged to that file
only. Isolated files a tick leaves over (an infrastructure fault stopped it, or a file failed
alone) take turns with the other files in later ticks (:meth:`LandingFiles.pick`).

One landing dir has one owner: a run holds the lock in the landing dir itself (whatever its state
dir), and the first state dir to process the landing dir is written into it
(``.driftwatch-owner``); a config with another state dir is refused there with one line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from driftwatch.config import Settings
from driftwatch.errors import (
    BatchError,
    DriftwatchError,
    describe_failure,
    infrastructure,
)
from driftwatch.faults import checkpoint
from driftwatch.files import atomic_write_bytes, escaped, file_hash, shown
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Batch
from driftwatch.store import lock
from driftwatch.store.batches import read_validated
from driftwatch.store.ledger import FileRecord, Ledger

log = logging.getLogger("driftwatch.landing")

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
    """Every pending landing file (oldest first), or one given file (``batch_path``).

    Isolated files (see :meth:`fail`) are the exception: one per run, alone, right away in the
    tick that isolated them (``alone``), and later by turns with the others (:meth:`pick`).
    """

    def __init__(self, plan: Plan, batch_path: str | None = None) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.batch_path = batch_path
        self.ledger = ledger_for(self.settings.paths.state)

    def collect(self, run_id: str | None, alone: str | None = None) -> Batch:
        """The run's batch. ``alone``: an isolated file's run of its own, right after the run
        that isolated it failed (in the same tick, see :meth:`fail`): only that file."""
        s = self.settings
        max_mb = s.landing.max_file_mb
        if self.batch_path is not None and self._big(self.batch_path):
            return Batch(
                pd.DataFrame(),
                [str(self.batch_path)],
                False,
                window="1 given file",
                big=[self._checked_big(str(self.batch_path))],
            )
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
        claimed, by_itself = self.pick(run_id, warnings, alone)
        files = [r.path for r in claimed]
        # A Prefect retry of this step runs it again with the same run id: the same attempt.
        self.ledger.claim(files, run_id, once_per_run=True, alone=by_itself)
        checkpoint("after-claim")
        frames, names, rejected, gone, changed = [], [], {}, [], []
        big: list[str] = []
        quarantine = s.paths.state / "quarantine"
        for rec in claimed:
            path = rec.path
            if self._gone(path, warnings):
                gone.append(path)
                continue
            notes = []
            try:
                if self._big(path):  # summarised where it is, after the reference is known
                    big.append(self._checked_big(path, rec))
                    continue
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
                    or not Path(rec.path).is_file()  # (a big batch's directory is not context)
                    or self._big(rec.path)
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
        return Batch(
            frame, good, True, rejected, warnings, context, new_rows, window, origin, big=big
        )

    def _big(self, path: str | Path) -> bool:
        """Too big to read whole: a parquet directory, or a parquet file above
        ``scale.summary_above_rows`` (monitor/big.py summarises it where it is)."""
        from driftwatch.store.partitions import is_big

        return is_big(path, self.settings.scale.summary_above_rows)

    def _checked_big(self, path: str, rec: FileRecord | None = None) -> str:
        """A big item before it is summarised: still what the ledger recorded (ChangedFile if
        not), and every parquet footer readable (a BatchError naming the file if not)."""
        from driftwatch.store.ledger import content
        from driftwatch.store.partitions import partitions

        p = Path(path)
        if rec is not None:
            if p.is_dir():
                if content(p) != (rec.size, rec.sha256):
                    raise ChangedFile(path, "its parquet files are not what was recorded")
            elif p.stat().st_size != rec.size:
                raise ChangedFile(path, f"{rec.size} bytes when recorded, {p.stat().st_size} now")
        partitions(path, self.settings.scale.partition_rows)
        return path

    def reject(self, batch: Batch, path: str, exc: BaseException) -> Batch:
        """A big file of the batch that failed to summarise: charged alone with its own reason
        (quarantined after ``landing.max_attempts``), and the batch without it."""
        from dataclasses import replace

        s = self.settings
        line = file_failure(path, exc)
        state = "failed"
        if batch.from_landing:
            quarantine = s.paths.state / "quarantine"
            moved = self.ledger.fail([path], line, s.landing.max_attempts, quarantine)
            state = "quarantined" if moved else "failed (will retry)"
        log.warning("%s: %s", state, line)
        return replace(
            batch,
            files=[f for f in batch.files if f != path],
            big=[f for f in batch.big if f != path],
            rejected={**batch.rejected, path: line},
            warnings=[*batch.warnings, f"{state}: {line}"],
        )

    def pick(
        self, run_id: str | None, warnings: list[str], alone: str | None = None
    ) -> tuple[list[FileRecord], bool]:
        """The files this run takes, and whether it is an isolated file's run of its own.

        ``alone``: the tick whose run isolated this file judges it now, alone (nothing if it is
        no longer waiting, say deleted meanwhile). The turns below are for the isolated files
        a tick left over (an infrastructure fault stopped its runs alone, or a file failed alone
        and waits for its next try).

        Without isolated files: every pending file, oldest first (up to
        ``landing.max_files_per_run``). With some, runs take turns: when the last run was not an
        isolated one (or nothing else waits), this run takes one isolated file alone (the one
        run alone longest ago, never yet first: each gets its turn, and one that keeps failing
        does not hold the others back); otherwise it takes the other pending files together,
        without any isolated file.

        Why turns, and not "isolated files first" nor "the others first": each isolated file
        may fail alone up to ``landing.max_same_failures`` times before it is quarantined, so
        running them first would hold every new file back for hours, and running the others
        first would never run them under hourly arrivals. With turns a new file waits at most
        one run, the isolated files share every other run, and every run is still one claim of
        whole files in the ledger, finished or failed together: a file is done exactly once,
        and within each group files go oldest first. An isolated file's rows may reach history
        after newer files' rows, as a retried file's always could: history, windows and
        judging order rows by their timestamps, not by when the file was processed.
        A Prefect retry of the collecting step (same ``run_id``) picks the same files.
        """
        limit = self.settings.landing.max_files_per_run
        pending = self.ledger.pending()
        isolated = self.ledger.isolated(run_id)
        if alone is not None:
            mine = [r for r in pending if r.path == alone and alone in isolated]
            if mine:
                warnings.append(
                    f"isolated run: {shown(alone)} alone, right after the run that isolated it"
                    " failed (in the same tick)"
                )
            else:
                warnings.append(f"isolated run: {shown(alone)} is no longer waiting; nothing run")
            return mine, bool(mine)
        if not isolated:
            return pending[:limit], False
        waiting, apart = {r.path: r for r in pending}, set(isolated)
        suspects = [waiting[p] for p in isolated if p in waiting]
        others = [r for r in pending if r.path not in apart]
        if suspects and (not others or not self.ledger.last_run_alone(run_id)):
            one = suspects[0]
            warnings.append(
                f"isolated run: {shown(one.path)} alone ({len(suspects) - 1} other isolated"
                f" file(s) and {len(others)} other pending file(s) wait their turn)"
            )
            return [one], True
        return others[:limit], False

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
        elif not p.is_file() and not p.is_dir():
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
            for path in batch.big:  # said where the file's story is told, once
                self.ledger.note(
                    path,
                    "summarised",
                    f"{shown(path)}: summarised per hour, its rows not kept in history",
                )

    def fail(self, batch: Batch | None, exc: BaseException) -> list[str]:
        """Record a failed run against its files, by cause; returns the files it isolated (to
        be judged one at a time right away, in the same tick: :meth:`MonitorCycle.run`).

        - A fault of the data (a BatchError): every file of the run is charged an attempt;
          quarantined after ``landing.max_attempts``.
        - A fault known to be the infrastructure's (:func:`infrastructure`: MLflow, the disk,
          sqlite, the state dir, the config, a stopped process): the files stay failed, to be
          retried at every tick, and never count towards quarantine.
        - Anything else (a retrain or scoring step raising on some file's rows, or a fault not
          known to be the infrastructure's): with more than one file the run cannot say which
          one broke it, so each is isolated, uncharged, and returned: the same tick then runs
          each alone, in a run of its own (``collect(run_id, alone=path)``); those it leaves
          over take turns with the other files in later ticks (:meth:`pick`).
          A file that fails alone (its own run) is charged: after ``landing.max_same_failures``
          such failures in a row with the very same error it is quarantined with that error.
          Only failures that other files' runs succeeded around count (:meth:`Ledger.strikes`):
          an unknown infrastructure fault fails every run, so it never quarantines a good file
          (its files fail alone at every tick until it is fixed, and, isolated by then, run one
          per run afterwards); a file that fails alone while no other file arrives is retried
          at every tick, blocking nobody, until other files' runs succeed in between.
        """
        if batch is None or not batch.from_landing or not batch.files:
            return []
        s = self.settings
        error = describe_failure(exc)
        quarantine = s.paths.state / "quarantine"
        if isinstance(exc, BatchError):
            self.ledger.fail(batch.files, error, s.landing.max_attempts, quarantine)
            return []
        if infrastructure(exc):
            self.ledger.fail(batch.files, error, sys.maxsize, quarantine)
            return []
        if len(batch.files) > 1:
            n = len(batch.files)
            lines = {
                path: f"isolated: {shown(path)}: the run of {n} files failed with {error};"
                " it is judged alone now, in a run of its own"
                for path in batch.files
            }
            for line in lines.values():
                log.warning("%s", line)
            self.ledger.isolate(lines)
            return list(batch.files)
        (path,) = batch.files
        if path not in self.ledger.isolated(None):  # failed alone, not yet isolated: from now on
            line = f"isolated: {shown(path)}: its run failed with {error}; it will be retried alone"
            log.warning("%s", line)
            self.ledger.isolate({path: line})
        limit = s.landing.max_same_failures
        strikes = self.ledger.strikes(path, error)
        if strikes >= limit:
            reason = (
                f"{error} (the same failure in {limit} runs of this file alone, while other"
                " files' runs succeeded)"
            )
            self.ledger.fail([path], reason, 0, quarantine)
            log.warning("quarantined: %s: %s", shown(path), reason)
            return []
        self.ledger.fail([path], error, sys.maxsize, quarantine)
        log.warning(
            "failed alone: %s: %s (%d of landing.max_same_failures = %d counted)",
            shown(path),
            error,
            strikes,
            limit,
        )
        return []
