"""The daemon as a user runs it: a real process on an accelerated schedule, real signals,
a real Prefect server for its flow runs, and the ledger checked afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from driftwatch.config import load_settings
from driftwatch.store.ledger import Ledger

pytestmark = pytest.mark.slow  # real servers, subprocesses: the slow tier

DRIFTWATCH = str(Path(sys.executable).parent / "driftwatch")


def wait_for(predicate: Callable[[], bool], timeout: float = 90, what: str = "") -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.3)


class Runner:
    def __init__(self, config: Path, server: str, tmp: Path) -> None:
        self.config, self.server, self.tmp = config, server, tmp
        self.settings = load_settings(config)
        self.ledger = Ledger(self.settings.paths.state / "ledger.sqlite")
        self.n = 0

    def start(self, interval: float = 2, **env: str) -> tuple[subprocess.Popen, Path]:
        self.n += 1
        log = self.tmp / f"daemon-{self.n}.log"
        full_env = {**os.environ, "PREFECT_API_URL": self.server, **env}
        proc = subprocess.Popen(
            [DRIFTWATCH, "daemon", "--config", str(self.config), "--interval", str(interval)],
            env=full_env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        return proc, log

    def status(self) -> dict[str, tuple[str, int]]:
        return {Path(r.path).name: (r.status, r.attempts) for r in self.ledger.records()}

    def done_events(self, name: str) -> int:
        path = str(self.settings.paths.landing / name)
        return sum(1 for e in self.ledger.events(path) if e[2] == "done")


@pytest.fixture
def runner(make_config, prefect_server: str, tmp_path: Path) -> Runner:
    config = make_config(
        orchestration={"retries": 0, "retry_delay_seconds": 0, "shutdown_grace_seconds": 1}
    )
    (tmp_path / "landing").mkdir()
    return Runner(config, prefect_server, tmp_path)


def drop(runner: Runner, frame: pd.DataFrame, name: str) -> None:
    landing = runner.settings.paths.landing
    frame.to_parquet(landing / f".{name}.tmp")
    os.replace(landing / f".{name}.tmp", landing / name)  # the producer contract: rename into place


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=30)


def test_ticks_process_each_file_exactly_once(runner: Runner, january) -> None:
    drop(runner, january.sample(1500, random_state=1), "2013-01-a.parquet")
    proc, log = runner.start()
    try:
        wait_for(
            lambda: runner.status().get("2013-01-a.parquet", ("",))[0] == "done", what="file a"
        )
        drop(runner, january.sample(1500, random_state=2), "2013-01-b.parquet")
        wait_for(
            lambda: runner.status().get("2013-01-b.parquet", ("",))[0] == "done", what="file b"
        )
        wait_for(
            lambda: log.read_text().count("driftwatch.orchestration.daemon: tick") >= 4,
            what="4 ticks",
        )
    finally:
        assert stop(proc) == 0
    text = log.read_text()
    assert runner.status() == {"2013-01-a.parquet": ("done", 1), "2013-01-b.parquet": ("done", 1)}
    assert (
        runner.done_events("2013-01-a.parquet") == 1
        and runner.done_events("2013-01-b.parquet") == 1
    )
    assert "no new data" in text and "stopping: SIGTERM" in text


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_interrupted_run_is_taken_again_after_restart(runner: Runner, january, sig: int) -> None:
    drop(runner, january.sample(1500, random_state=3), "2013-01-c.parquet")
    proc, log = runner.start(DRIFTWATCH_PAUSE_AT="after-claim:60")
    wait_for(
        lambda: runner.status().get("2013-01-c.parquet", ("",))[0] == "processing", what="claim"
    )
    code = stop(proc, sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    if sig == signal.SIGTERM:
        assert "abandoning the current run" in log.read_text()
    assert runner.status()["2013-01-c.parquet"] == ("processing", 1)  # not done, not lost

    proc, log = runner.start()
    try:
        wait_for(lambda: runner.status()["2013-01-c.parquet"][0] == "done", what="reprocessed")
    finally:
        assert stop(proc) == 0
    assert runner.status()["2013-01-c.parquet"] == ("done", 2)
    assert runner.done_events("2013-01-c.parquet") == 1


def test_second_daemon_waits_as_standby_then_takes_over(runner: Runner, january) -> None:
    first, log1 = runner.start()
    wait_for(lambda: "tick 1" in log1.read_text(), what="first daemon ticking")
    second, log2 = runner.start()
    try:
        wait_for(lambda: "waiting as standby" in log2.read_text(), what="standby")
        assert stop(first) == 0
        drop(runner, january.sample(1500, random_state=4), "2013-01-d.parquet")
        wait_for(
            lambda: runner.status().get("2013-01-d.parquet", ("",))[0] == "done", what="takeover"
        )
    finally:
        assert stop(second) == 0
    assert "tick" not in log2.read_text().split("waiting as standby")[0]


def test_bad_file_quarantined_rewritten_file_reported_bad_config_survived(
    make_config, runner: Runner, january
) -> None:
    config = make_config(
        landing={"max_attempts": 2},
        orchestration={"retries": 0, "retry_delay_seconds": 0, "shutdown_grace_seconds": 1},
    )
    drop(runner, january.sample(1500, random_state=5), "2013-01-e.parquet")
    (runner.settings.paths.landing / "2013-01-f.parquet").write_bytes(b"PAR1 garbage")
    proc, log = runner.start()
    try:
        wait_for(
            lambda: runner.status().get("2013-01-f.parquet", ("",))[0] == "quarantined",
            what="quarantine",
        )
        assert runner.status()["2013-01-e.parquet"] == ("done", 1)
        # a processed file rewritten by the producer is reported, not re-used
        drop(runner, january.sample(100, random_state=6), "2013-01-e.parquet")
        wait_for(lambda: "changed after it was processed" in log.read_text(), what="changed report")
        # a broken config edit is logged and the last good settings keep the daemon going
        good = config.read_text()
        config.write_text(good.replace("drift_share: 0.5", "drift_share: 5"))
        wait_for(lambda: "config reload failed" in log.read_text(), what="bad reload")
        n = log.read_text().count("driftwatch.orchestration.daemon: tick")
        wait_for(
            lambda: log.read_text().count("driftwatch.orchestration.daemon: tick") >= n + 1,
            what="tick after bad config",
        )
        config.write_text(good)
    finally:
        assert stop(proc) == 0
    quarantine = runner.settings.paths.state / "quarantine"
    assert (
        "not a readable parquet file" in (quarantine / "2013-01-f.parquet.reason.txt").read_text()
    )
    assert runner.done_events("2013-01-e.parquet") == 1


def test_prefect_server_unreachable_falls_back_or_fails_as_configured(
    make_config, tmp_path: Path, january
) -> None:
    """PREFECT_API_URL names a server that went away (nothing listens on the port)."""
    from tests.conftest import free_port

    config = make_config(
        orchestration={"retries": 0, "retry_delay_seconds": 0, "prefect_unreachable": "fail"}
    )
    landing = tmp_path / "landing"
    landing.mkdir()
    january.sample(800, random_state=81).to_parquet(landing / "a.parquet")
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    run = [DRIFTWATCH, "run", "--config", str(config)]
    failed = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 3
    assert "Prefect server at http://127.0.0.1:" in failed.stderr and "unreachable" in failed.stderr
    ledger = Ledger(load_settings(config).paths.state / "ledger.sqlite")
    assert ledger.records() == []  # nothing taken: the file waits for the next tick
    env["DRIFTWATCH_ORCHESTRATION__PREFECT_UNREACHABLE"] = "ephemeral"
    fallback = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)
    assert fallback.returncode == 0, fallback.stdout + fallback.stderr
    assert "running on a temporary local Prefect API instead" in fallback.stderr
    assert fallback.stdout.startswith("Completed: retrained-promoted")
    assert [(Path(r.path).name, r.status) for r in ledger.records()] == [("a.parquet", "done")]
