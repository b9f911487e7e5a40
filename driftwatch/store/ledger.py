"""Which landing files were processed, with what outcome: a small sqlite table under the state dir.

A file is claimed ("processing") when a run starts, and marked "done" only after the run finished;
a crash leaves it "processing", and the next run, after taking the landing lock, takes it back as
pending. After ``max_attempts`` failures a file is moved to the quarantine dir with its reason.
A file whose content changes after it was processed is reported, never silently re-used.
A file deleted (or made unreadable) after it was claimed ends "missing"; a symlink in the landing
dir is "refused" unread. Both are terminal (reported once), and ``requeue`` puts a quarantined or
failed file back with a fresh attempt count.
A file whose content changes before it is read (after the scan recorded it) is put back as
pending by the reader (:meth:`Ledger.changed`); the next scan records its new size and hash.
The same content under a second name is a duplicate: marked done (outcome ``duplicate``) with a
note naming the first, or taken as a file of its own (``landing.duplicates``).
A file whose run failed for no known cause is *isolated* (table ``isolated``, event ``isolated``):
it is retried in runs of its own (:meth:`Ledger.isolate`, the ``alone`` event on its claims) until
it is done, quarantined, missing, changed or requeued. The table was added after the ``files``
table: ``CREATE TABLE IF NOT EXISTS`` adds it to an existing ledger, and a ledger without it
simply has no isolated file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from driftwatch.files import atomic_write_bytes, file_hash, shown
from driftwatch.store.batches import BATCH_SUFFIXES

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN (
        'pending','processing','done','failed','quarantined','missing','refused')),
    attempts INTEGER NOT NULL DEFAULT 0,
    flow_run_id TEXT,
    outcome TEXT,
    error TEXT,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    at TEXT NOT NULL, path TEXT NOT NULL, event TEXT NOT NULL, detail TEXT
);
CREATE TABLE IF NOT EXISTS isolated (
    path TEXT PRIMARY KEY, since TEXT NOT NULL, cause TEXT NOT NULL
);
"""


def content(p: Path) -> tuple[int, str]:
    """What the ledger records of a landing item: a file's size and sha256, or a parquet
    directory's (a big batch) size and manifest hash (store/partitions.manifest)."""
    if p.is_dir():
        from driftwatch.store.partitions import manifest

        return manifest(p)
    return p.stat().st_size, file_hash(p)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _migrate(conn: sqlite3.Connection) -> None:
    """A ledger written before 'missing' and 'refused' existed: its CHECK constraint would refuse
    them, and sqlite cannot alter a constraint, so the table is copied into the new schema."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type='table' AND name='files'"
    ).fetchone()
    if row is None or "'refused'" in row[0]:
        return
    conn.executescript(
        "BEGIN IMMEDIATE; ALTER TABLE files RENAME TO files_old;"
        + SCHEMA
        + "INSERT INTO files SELECT * FROM files_old; DROP TABLE files_old; COMMIT;"
    )


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    sha256: str
    first_seen: str
    status: str
    attempts: int
    flow_run_id: str | None
    outcome: str | None
    error: str | None

    @property
    def key(self) -> str:
        """This file as recorded: its path and its content (a file re-dropped with new content
        under the same name is another file). Names its parts in history and in late labels."""
        return hashlib.sha256(f"{self.path}\0{self.sha256}".encode()).hexdigest()[:24]


class Ledger:
    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            _migrate(conn)
            conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:  # a damaged file: say which one
            raise sqlite3.DatabaseError(f"{db_path}: {exc}") from exc
        finally:
            conn.close()

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def records(self, status: str | None = None) -> list[FileRecord]:
        with self._conn() as c:
            q = "SELECT path,size,sha256,first_seen,status,attempts,flow_run_id,outcome,error FROM files"
            rows = c.execute(
                q + (" WHERE status=?" if status else "") + " ORDER BY first_seen, path",
                (status,) if status else (),
            ).fetchall()
        return [FileRecord(*r) for r in rows]

    def get(self, path: Path | str) -> FileRecord | None:
        with self._conn() as c:
            r = c.execute(
                "SELECT path,size,sha256,first_seen,status,attempts,flow_run_id,outcome,error"
                " FROM files WHERE path=?",
                (str(path),),
            ).fetchone()
        return FileRecord(*r) if r else None

    def events(self, path: str | None = None) -> list[tuple[str, str, str, str | None]]:
        with self._conn() as c:
            q = "SELECT at,path,event,detail FROM events"
            rows = c.execute(
                q + (" WHERE path=?" if path else "") + " ORDER BY rowid", (path,) if path else ()
            ).fetchall()
        return [tuple(r) for r in rows]

    def scan(
        self, landing: Path, settle_seconds: float = 0.0, duplicates: str = "skip"
    ) -> list[str]:
        """Register new files; report changed ones. Returns warnings for changed files.

        Files modified less than ``settle_seconds`` ago may still be being written: skipped now,
        seen at the next tick. Hidden files and temp files (``.x``, ``*.tmp``) are never read.
        A symlink is refused, never followed: recorded once as "refused", with a warning.
        A file not yet processed whose content changed since it was recorded gets its new size
        and hash (with a warning). A new file with the content of a file seen before is, with
        ``duplicates="skip"``, marked done as its duplicate; with ``"process"`` taken anyway;
        both with a warning naming the first.
        """
        warnings: list[str] = []
        if not landing.is_dir():
            return warnings
        now = datetime.now(UTC).timestamp()
        for p in sorted(landing.iterdir()):
            if p.name.startswith(".") or p.name.endswith(".tmp"):
                continue
            if p.is_dir() and not p.is_symlink():
                warnings.extend(self._scan_dataset(p, now, settle_seconds, duplicates))
                continue
            if p.suffix.lower() not in BATCH_SUFFIXES:
                continue
            if p.is_symlink():
                if self.get(p) is None:
                    msg = (
                        f"{shown(p)}: a symlink (to {shown(os.readlink(p))}); refused, not read"
                        " (copy or move the file itself into the landing dir)"
                    )
                    self._insert(str(p), 0, "", "refused", msg)
                    warnings.append(msg)
                continue
            if not p.is_file():
                continue
            st = p.stat()
            if now - st.st_mtime < settle_seconds:
                continue
            rec = self.get(p)
            if rec is None:
                warnings.extend(self._new(p, st.st_size, duplicates))
                continue
            if rec.status in ("pending", "failed", "processing") and (
                st.st_size != rec.size or file_hash(p) != rec.sha256
            ):
                msg = (
                    f"{shown(p)}: changed before it was read ({rec.size} bytes when first seen,"
                    f" {st.st_size} now); its new content is recorded and read"
                )
                self._rehash(str(p), msg)
                warnings.append(msg)
                continue
            if rec.status == "missing":
                # The name is back: a new file, taken as one (with a fresh attempt count).
                self._reset(str(p), "reappeared", "the file is back in the landing dir")
                continue
            if rec.status in ("done", "quarantined") and (
                st.st_size != rec.size or file_hash(p) != rec.sha256
            ):
                msg = f"{shown(p)}: changed after it was processed ({rec.status}); not re-processed"
                self._event(str(p), "changed", msg)
                warnings.append(msg)
        return warnings

    def _scan_dataset(
        self, p: Path, now: float, settle_seconds: float, duplicates: str
    ) -> list[str]:
        """A directory in the landing dir: a partitioned parquet dataset (a big batch). It is
        complete when it holds Spark's ``_SUCCESS`` marker, or when nothing under it changed
        for ``settle_seconds`` (0: at once, so write it under a hidden name and rename it, as
        a file); one without parquet files and without ``_SUCCESS`` is not a batch yet."""
        from driftwatch.store.partitions import dataset_state

        success, newest = dataset_state(p)
        if not success and now - newest < settle_seconds:
            return []
        size, sha = content(p)
        rec = self.get(p)
        if rec is None:
            if size == 0 and not success:
                return []  # no parquet file yet
            return self._new(p, size, duplicates, sha)
        if (size, sha) == (rec.size, rec.sha256):
            return []
        if rec.status in ("pending", "failed", "processing"):
            msg = (
                f"{shown(p)}: changed before it was read (its parquet files are not what was"
                " first recorded); its new content is recorded and read"
            )
            self._rehash(str(p), msg)
            return [msg]
        if rec.status == "missing":
            self._reset(str(p), "reappeared", "the directory is back in the landing dir")
            return []
        if rec.status in ("done", "quarantined"):
            msg = f"{shown(p)}: changed after it was processed ({rec.status}); not re-processed"
            self._event(str(p), "changed", msg)
            return [msg]
        return []

    def _new(self, p: Path, size: int, duplicates: str, sha: str | None = None) -> list[str]:
        """Register a new file: pending, or done as the duplicate of a file seen before."""
        sha = sha or file_hash(p)
        first = self._same_content(str(p), size, sha) if size else None  # empty: no rows
        if first is None:
            self._insert(str(p), size, sha, "pending", None)
            return []
        if duplicates == "process":
            msg = (
                f"{shown(p)}: the same content as {shown(first)} (sha256 {sha[:12]}); processed"
                " again (landing.duplicates: process)"
            )
            self._insert(str(p), size, sha, "pending", None)
            self._event(str(p), "duplicate", msg)
            return [msg]
        msg = (
            f"{shown(p)}: the same content as {shown(first)} (sha256 {sha[:12]}); marked done as"
            " its duplicate, not processed again (landing.duplicates: skip)"
        )
        self._insert(str(p), size, sha, "done", msg, outcome="duplicate")
        return [msg]

    def _same_content(self, path: str, size: int, sha256: str) -> str | None:
        """The first file seen with this content (any state but missing or refused)."""
        with self._conn() as c:
            row = c.execute(
                "SELECT path FROM files WHERE sha256=? AND size=? AND path<>?"
                " AND status NOT IN ('missing','refused') ORDER BY first_seen, rowid LIMIT 1",
                (sha256, size, path),
            ).fetchone()
        return row[0] if row else None

    def _rehash(self, path: str, detail: str) -> None:
        """A file not yet processed has new content: record its size and hash as they are."""
        size, sha = content(Path(path))
        with self._conn() as c:
            c.execute(
                "UPDATE files SET size=?, sha256=?, updated=? WHERE path=?",
                (size, sha, _now(), path),
            )
            c.execute("DELETE FROM isolated WHERE path=?", (path,))  # new content: a new file
            c.execute("INSERT INTO events VALUES (?,?,?,?)", (_now(), path, "changed", detail))

    def changed(self, path: str, reason: str) -> str:
        """A claimed file found changed when read (truncated, emptied, rewritten): not read,
        pending again, and the claim's attempt given back (not the file's fault). The next
        scan records its new content. Returns the warning line."""
        detail = (
            f"{shown(path)}: changed after it was claimed ({reason}); not processed, left"
            " pending: the next run records its new content and reads it"
        )
        with self._conn() as c:
            c.execute(
                "UPDATE files SET status='pending', attempts=MAX(attempts - 1, 0),"
                " flow_run_id=NULL, error=?, updated=? WHERE path=?",
                (detail, _now(), path),
            )
            c.execute("DELETE FROM isolated WHERE path=?", (path,))  # new content: a new file
            c.execute("INSERT INTO events VALUES (?,?,?,?)", (_now(), path, "changed", detail))
        return detail

    def pending(self) -> list[FileRecord]:
        """Pending and failed-but-retryable files, oldest first; stale claims come back too."""
        with self._conn() as c:
            c.execute(
                "UPDATE files SET status='pending', updated=? WHERE status='processing'", (_now(),)
            )
        return [r for r in self.records() if r.status in ("pending", "failed")]

    def claim(
        self,
        paths: list[str],
        flow_run_id: str | None,
        once_per_run: bool = False,
        alone: bool = False,
    ) -> None:
        """Mark files as being processed, one attempt more each.

        ``once_per_run``: a file this run (``flow_run_id``) claimed already is not charged again:
        a step retried by Prefect (same run id) is the same attempt, not another one.
        ``alone``: the run is one isolated file's run of its own (an ``alone`` event after the
        claim, which :meth:`last_run_alone` reads).
        """
        with self._conn() as c:
            for p in paths:
                again = once_per_run and flow_run_id is not None
                c.execute(
                    "UPDATE files SET status='processing', flow_run_id=?, updated=?,"
                    " attempts=attempts + (CASE WHEN ? AND flow_run_id IS ? THEN 0 ELSE 1 END)"
                    " WHERE path=?",
                    (flow_run_id, _now(), again, flow_run_id, p),
                )
                c.execute(
                    "INSERT INTO events VALUES (?,?,?,?)", (_now(), p, "claimed", flow_run_id)
                )
                if alone:
                    c.execute(
                        "INSERT INTO events VALUES (?,?,?,?)", (_now(), p, "alone", flow_run_id)
                    )

    def finish(self, paths: list[str], outcome: str) -> None:
        with self._conn() as c:
            for p in paths:
                c.execute(
                    "UPDATE files SET status='done', outcome=?, error=NULL, updated=? WHERE path=?",
                    (outcome, _now(), p),
                )
                c.execute("DELETE FROM isolated WHERE path=?", (p,))
                c.execute("INSERT INTO events VALUES (?,?,?,?)", (_now(), p, "done", outcome))

    def fail(self, paths: list[str], error: str, max_attempts: int, quarantine: Path) -> list[str]:
        """Record a failure; quarantine files that used up their attempts. Returns those moved."""
        moved = []
        for p in paths:
            rec = self.get(p)
            if rec is None:
                continue
            if rec.attempts >= max_attempts and Path(p).exists():
                quarantine.mkdir(parents=True, exist_ok=True)
                dest = quarantine / Path(p).name
                shutil.move(p, dest)
                atomic_write_bytes(
                    quarantine / (Path(p).name + ".reason.txt"), (error + "\n").encode()
                )
                status, detail = "quarantined", f"{error} (moved to {shown(dest)})"
                moved.append(p)
            else:
                status, detail = "failed", error
            with self._conn() as c:
                c.execute(
                    "UPDATE files SET status=?, error=?, updated=? WHERE path=?",
                    (status, detail, _now(), p),
                )
                c.execute("INSERT INTO events VALUES (?,?,?,?)", (_now(), p, status, detail))
                if status == "quarantined":
                    c.execute("DELETE FROM isolated WHERE path=?", (p,))
        return moved

    def missing(self, path: str, reason: str) -> str:
        """A claimed file that is gone (or unreadable): terminal, so it is reported only once."""
        detail = f"{shown(path)}: {reason}; marked missing (no more attempts)"
        with self._conn() as c:
            c.execute(
                "UPDATE files SET status='missing', error=?, updated=? WHERE path=?",
                (detail, _now(), path),
            )
            c.execute("DELETE FROM isolated WHERE path=?", (path,))
            c.execute("INSERT INTO events VALUES (?,?,?,?)", (_now(), path, "missing", detail))
        return detail

    def requeue(self, path: str, quarantine: Path) -> str:
        """A quarantined (moved back from ``quarantine``), failed or duplicate file made pending
        again, with a fresh attempt count. Returns one line saying what was done; ValueError if it cannot."""
        rec = self.get(path)
        name = shown(path)
        if rec is None:
            raise ValueError(f"{name}: not in the ledger")
        duplicate = rec.status == "done" and rec.outcome == "duplicate"
        if rec.status not in ("quarantined", "failed") and not duplicate:
            raise ValueError(
                f"{name}: is {rec.status}, only quarantined, failed or duplicate files requeue"
            )
        target = Path(rec.path)
        note = ""
        if rec.status == "quarantined":
            held = quarantine / target.name
            if target.exists():
                raise ValueError(f"{name}: a file of that name is in the landing dir again")
            if not held.exists():
                raise ValueError(f"{name}: not found in {shown(quarantine)}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(held, target)
            (quarantine / (target.name + ".reason.txt")).unlink(missing_ok=True)
            note = f" (moved back from {shown(held)})"
        elif not target.exists():
            raise ValueError(f"{name}: the file is no longer in the landing dir")
        was = "a duplicate" if duplicate else rec.status
        self._reset(rec.path, "requeued", f"was {was} after {rec.attempts} attempt(s)")
        return f"requeued {shown(rec.path)}{note}: pending, attempts 0 (was {was})"

    def _insert(
        self,
        path: str,
        size: int,
        sha256: str,
        status: str,
        detail: str | None,
        outcome: str | None = None,
    ) -> None:
        """A new row; ``outcome`` given (a duplicate, done): ``detail`` is its note, not an
        error, and goes only to the events."""
        error = None if outcome else detail
        event = outcome or status
        with self._conn() as c:
            c.execute(
                "INSERT OR IGNORE INTO files"
                "(path,size,sha256,first_seen,status,outcome,error,updated)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (path, size, sha256, _now(), status, outcome, error, _now()),
            )
            if detail:
                c.execute("INSERT INTO events VALUES (?,?,?,?)", (_now(), path, event, detail))

    def _reset(self, path: str, event: str, detail: str) -> None:
        """Pending again, as new: size and hash of the file as it is now, no attempts, no error."""
        size, sha = content(Path(path))
        with self._conn() as c:
            c.execute(
                "UPDATE files SET status='pending', attempts=0, error=NULL, outcome=NULL,"
                " flow_run_id=NULL, size=?, sha256=?, updated=? WHERE path=?",
                (size, sha, _now(), path),
            )
            c.execute("DELETE FROM isolated WHERE path=?", (path,))
            c.execute("INSERT INTO events VALUES (?,?,?,?)", (_now(), path, event, detail))

    def isolate(self, lines: dict[str, str]) -> None:
        """Isolate files (``lines``: path -> the line saying why): retried in runs of their own
        from now on, failed (not charged: the attempt count is the claim's), event ``isolated``.
        The event also starts a new count of :meth:`strikes`."""
        with self._conn() as c:
            for p, line in lines.items():
                c.execute(
                    "INSERT OR REPLACE INTO isolated(path, since, cause) VALUES (?,?,?)",
                    (p, _now(), line),
                )
                c.execute(
                    "UPDATE files SET status='failed', error=?, updated=? WHERE path=?",
                    (line, _now(), p),
                )
                c.execute("INSERT INTO events VALUES (?,?,?,?)", (_now(), p, "isolated", line))

    def isolated(self, flow_run_id: str | None = None) -> list[str]:
        """The isolated files still to process (pending, failed or claimed), the one run alone
        longest ago first (never yet: oldest first), so that each gets its turn. The claims of
        ``flow_run_id`` itself are not counted (a Prefect retry of a step: the same turn)."""
        with self._conn() as c:
            rows = c.execute(
                "SELECT i.path, (SELECT MAX(e.rowid) FROM events e"
                "  WHERE e.path = i.path AND e.event = 'alone' AND e.detail IS NOT ?) AS last"
                " FROM isolated i JOIN files f ON f.path = i.path"
                " WHERE f.status IN ('pending','failed','processing')"
                " ORDER BY last IS NOT NULL, last, f.first_seen, f.path",
                (flow_run_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def last_run_alone(self, flow_run_id: str | None) -> bool:
        """Whether the latest run before ``flow_run_id`` (a Prefect retry of a step is the same
        run, so its own claims are skipped) was an isolated file's run of its own."""
        with self._conn() as c:
            row = c.execute(
                "SELECT event FROM events WHERE event IN ('claimed','alone') AND detail IS NOT ?"
                " ORDER BY rowid DESC LIMIT 1",
                (flow_run_id,),
            ).fetchone()
        return row is not None and row[0] == "alone"

    def strikes(self, path: str, error: str) -> int:
        """The file's failures with exactly ``error`` in a row, the one being recorded now
        included, that count: each only if another file's run finished (``done``) between it
        and the file's previous failure (or its isolation).

        A fault of the infrastructure (MLflow, the disk, ...) fails every run, so no run
        finishes in between and nothing counts: it never quarantines a file. The count starts
        again at anything else in the file's events (another error, isolated, requeued, ...).
        """
        n, success = 0, False
        with self._conn() as c:
            rows = c.execute(
                "SELECT path, event, detail FROM events WHERE path=? OR event='done'"
                " ORDER BY rowid DESC",
                (path,),
            )
            for p, event, detail in rows:
                if p != path:
                    success = True  # another file's run finished
                    continue
                if event in ("claimed", "alone"):
                    continue
                n += success  # the gap after this event: did a run finish in it?
                success = False
                if event != "failed" or detail != error:
                    break
        return n + success

    def note(self, path: str, event: str, detail: str) -> None:
        """An event in a file's story that changes nothing (``summarised``: a big batch)."""
        self._event(path, event, detail)

    def _event(self, path: str, event: str, detail: str) -> None:
        with self._conn() as c:
            c.execute("INSERT INTO events VALUES (?,?,?,?)", (_now(), path, event, detail))
