"""Named checkpoints in a monitor run, for fault-injection tests and scripts.

Checkpoints, in the order a monitor + retrain run reaches them:

- ``after-claim``: landing files claimed in the ledger
- ``after-history``: the batch's rows written to history, the files not yet done (the next run
  removes those rows and processes the files again)
- ``after-train``: challenger trained, nothing logged yet
- ``after-log``: challenger logged and registered in MLflow, its reference file written
- ``after-decision``: the promotion decision recorded on the challenger's run
- ``after-promote``: the ``champion`` alias moved (when the challenger won)
- ``before-record``: the retrain is over, the monitor's result not yet stored
- ``before-finish``: result stored, files not yet marked done

``DRIFTWATCH_PAUSE_AT=after-claim:5`` makes a run sleep 5 s at that checkpoint, so a test can
deliver a signal at a known step; ``DRIFTWATCH_KILL_AT=after-log`` makes the process SIGKILL
itself there (no clean-up of any kind runs, as with a power cut or the OOM killer). Unset
(always, in production) each costs a dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import time

CHECKPOINTS = (
    "after-claim",
    "after-history",
    "after-train",
    "after-log",
    "after-decision",
    "after-promote",
    "before-record",
    "before-finish",
)


def checkpoint(name: str) -> None:
    if os.environ.get("DRIFTWATCH_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    spec = os.environ.get("DRIFTWATCH_PAUSE_AT")
    if not spec:
        return
    where, _, seconds = spec.partition(":")
    if where == name:
        time.sleep(float(seconds or 5))
