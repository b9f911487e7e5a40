"""One monitor at a time per landing dir: an advisory ``flock`` the kernel drops when we die.

A pid file can outlive a crashed process and block the monitor forever; a ``flock`` cannot,
because the kernel releases it when the file descriptor closes, including on ``kill -9``.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class LockBusy(RuntimeError):
    pass


@contextmanager
def exclusive(path: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                    raise LockBusy(
                        f"another driftwatch monitor holds {path} (pid {holder or '?'})"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


@contextmanager
def waiting(
    path: Path, stop: threading.Event, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Block until the lock is ours (a hot standby) or ``stop`` is set; held until exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        told = False
        while not stop.is_set():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait(os.pread(fd, 64, 0).decode(errors="replace").strip())
                    told = True
                stop.wait(0.5)
        if not stop.is_set():
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
