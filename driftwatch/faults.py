"""Named checkpoints in a monitor run, for fault-injection tests and scripts.

Checkpoints: ``after-claim`` (landing files claimed), ``after-train`` (challenger trained, not
yet logged), ``before-finish`` (run done, files not yet marked done).
``DRIFTWATCH_PAUSE_AT=after-claim:5`` makes a run sleep 5 s at that checkpoint, so a test can
deliver a real SIGTERM or SIGKILL at a known step. Unset (always, in production) it costs a
dictionary lookup.
"""

from __future__ import annotations

import os
import time


def checkpoint(name: str) -> None:
    spec = os.environ.get("DRIFTWATCH_PAUSE_AT")
    if not spec:
        return
    where, _, seconds = spec.partition(":")
    if where == name:
        time.sleep(float(seconds or 5))
