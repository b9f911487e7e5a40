"""The landing/daemon lock: a busy lock names its holder, kill -9 frees it, standby waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from driftwatch.store import lock

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from driftwatch.store import lock\n"
    "with lock.exclusive(Path(sys.argv[1])):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(120)\n"
)


def hold_lock(path: Path) -> subprocess.Popen:
    """Hold ``path``'s lock from another process (as a running monitor does); kill it after."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def holder_process(tmp_path: Path):
    path = tmp_path / "locks" / "landing.lock"
    proc = hold_lock(path)
    yield proc, path
    proc.kill()
    proc.wait()


def test_busy_lock_names_the_holder_and_kill_9_frees_it(holder_process) -> None:
    proc, path = holder_process
    t0 = time.monotonic()
    busy = rf"another driftwatch monitor holds {path} \(pid {proc.pid}\)"
    with pytest.raises(lock.LockBusy, match=busy), lock.exclusive(path, wait_seconds=0.5):
        pass
    assert time.monotonic() - t0 >= 0.5  # waited before giving up
    assert lock.holder(path) == str(proc.pid)  # a failed attempt does not truncate the file
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with lock.exclusive(path, wait_seconds=2):  # the kernel dropped the flock
        assert lock.holder(path) == str(os.getpid())


def test_standby_reports_the_holder_returns_on_stop_and_takes_over(holder_process) -> None:
    proc, path = holder_process
    stop = threading.Event()
    seen: list[str] = []
    threading.Timer(0.5, stop.set).start()
    with lock.waiting(path, stop, on_wait=seen.append):
        assert stop.is_set()  # returned because of stop, without the lock
    assert seen == [str(proc.pid)]

    stop.clear()
    threading.Timer(0.5, proc.kill).start()
    with lock.waiting(path, stop):
        assert not stop.is_set() and lock.holder(path) == str(os.getpid())
        # held: another taker (here another descriptor) is refused
        with pytest.raises(lock.LockBusy), lock.exclusive(path):
            pass
