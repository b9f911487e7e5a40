"""One monitor at a time per landing dir: an advisory ``flock`` the kernel drops when we die.

A pid file can outlive a crashed process and block the monitor forever; a ``flock`` cannot,
because the kernel releases it when the file descriptor closes, including on ``kill -9``.
The lock is filelock's ``UnixFileLock`` (a ``flock`` that never truncates the file on a failed
attempt); the holder writes its pid into the lock file, so a busy lock can name the process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import Timeout, UnixFileLock


class LockBusy(RuntimeError):
    pass


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)


def _lock(path: Path) -> UnixFileLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    return UnixFileLock(path, on_acquired=_write_pid)


def holder(path: Path) -> str:
    """The pid written by the process holding (or that last held) the lock, or ""."""
    try:
        return path.read_bytes()[:64].decode(errors="replace").strip()
    except OSError:
        return ""


@contextmanager
def exclusive(path: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the lock for the block; ``LockBusy`` naming the holder's pid if it stays taken."""
    lock = _lock(path)
    try:
        lock.acquire(timeout=wait_seconds, poll_interval=0.2)
    except Timeout:
        raise LockBusy(
            f"another driftwatch monitor holds {path} (pid {holder(path) or '?'})"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def waiting(
    path: Path, stop: threading.Event, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Block until the lock is ours (a hot standby) or ``stop`` is set; held until exit.

    ``on_wait(holder_pid)`` is called once if the lock is taken when we arrive. When ``stop``
    ends the wait the block runs without the lock: the caller checks ``stop``.
    """
    lock = _lock(path)
    if not stop.is_set():
        try:
            lock.acquire(blocking=False)
        except Timeout:
            if on_wait is not None:
                on_wait(holder(path))
            with suppress(Timeout):  # raised when stop is set
                lock.acquire(timeout=-1, poll_interval=0.5, cancel_check=stop.is_set)
    try:
        yield
    finally:
        if lock.is_locked:
            lock.release()
