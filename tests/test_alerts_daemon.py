"""`driftwatch daemon` as a user runs it, with no Prefect server (its temporary local API) and a
webhook target: a real process, real flights days dropped one per tick, a real receiver on
127.0.0.1. One message when drift opens, none while it lasts, "resolved" after a quiet day."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftwatch.config import load_settings
from driftwatch.store.ledger import Ledger
from tests.alert_receiver import receiver
from tests.test_alerts import day
from tests.test_pipeline import FAST

pytestmark = pytest.mark.slow  # a daemon subprocess and its ephemeral Prefect API

DRIFTWATCH = str(Path(sys.executable).parent / "driftwatch")


def ticks_logged(log: Path) -> int:
    return len(re.findall(r" tick \d+(:| failed)", log.read_text()))


def test_daemon_without_a_server_tells_an_incident_once_and_its_end(
    make_config, tmp_path: Path, january, july
) -> None:
    config = make_config(
        model=FAST,
        retrain={"max_age_days": None, "min_age_days": 10_000},  # drift held: one long incident
        quality={"relative_tolerance": 100.0},
        alerts={"targets": [{"env": "DRIFTWATCH_ALERT_WEBHOOK"}], "backoff_seconds": 0.1},
    )
    settings = load_settings(config)
    landing = settings.paths.landing
    landing.mkdir(parents=True)
    ledger = Ledger(settings.paths.state / "ledger.sqlite")
    days = [
        ("2013-01-15.parquet", day(january, 15)),
        ("2013-07-10.parquet", day(july, 10)),
        ("2013-07-11.parquet", day(july, 11)),
        ("2013-01-16.parquet", day(january, 16)),
    ]
    with receiver() as got:
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env["DRIFTWATCH_ALERT_WEBHOOK"] = got.url
        log = tmp_path / "daemon.log"
        proc = subprocess.Popen(
            [DRIFTWATCH, "daemon", "--config", str(config), "--interval", "2"],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        try:
            seen = []
            for name, frame in days:  # one file per tick: each is its own run
                frame.to_parquet(landing / f".{name}.tmp")
                os.replace(landing / f".{name}.tmp", landing / name)
                deadline = time.time() + 300
                while not any(
                    Path(r.path).name == name and r.status == "done" for r in ledger.records()
                ):
                    assert proc.poll() is None, log.read_text()[-3000:]
                    assert time.time() < deadline, f"{name} not done: {log.read_text()[-3000:]}"
                    time.sleep(0.5)
                # The tick that took the file is still running (ticks never overlap): its
                # alert step is done once it logs its line.
                ticks = ticks_logged(log)
                while ticks_logged(log) <= ticks:
                    assert time.time() < deadline, log.read_text()[-3000:]
                    time.sleep(0.5)
                seen.append([(b["status"], b["event"]) for b in got.bodies])
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    text = log.read_text()
    assert code == 0, text[-2000:]
    assert [(b["status"], b["event"]) for b in got.bodies] == [
        ("event", "driftwatch.model.promoted"),
        ("opened", "driftwatch.drift.detected"),
        ("resolved", "driftwatch.drift.detected"),
    ], text[-3000:]
    # the drift opened with the July 10 tick, not later; the July 11 tick added nothing
    assert seen[1][-1] == ("opened", "driftwatch.drift.detected") and seen[2] == seen[1]
    assert "s3cr3t" not in text
