"""Against a real `prefect server start` on 127.0.0.1: driftwatch's events read back through the
events API, and the automations `driftwatch alerts install` creates delivering a webhook call to
a receiver this test runs on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.alert_receiver import receiver
from tests.test_alerts import day  # whole days, as production sends them

pytestmark = pytest.mark.slow  # a real server, CLI subprocesses

DRIFTWATCH = str(Path(sys.executable).parent / "driftwatch")
MODEL = "flights-alerts"  # its own resource: other tests on the shared server do not interfere


def cli(args: list[str], url: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PREFECT_API_URL": url, **env}
    return subprocess.run(
        [DRIFTWATCH, *args], env=full, capture_output=True, text=True, timeout=600
    )


def wait_for(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while True:
        got = fetch()
        if ok(got):
            return got
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {got}")
        time.sleep(1)


def events_of(url: str, run_id: str) -> list[Any]:
    """driftwatch events of this model related to the flow run ``run_id``."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventRelatedFilter,
        EventResourceFilter,
    )

    with SyncPrefectClient(api=url) as client:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(prefix=["driftwatch."]),
                resource=EventResourceFilter(id=[f"driftwatch.model.{MODEL}"]),
                related=EventRelatedFilter(id=[f"prefect.flow-run.{run_id}"]),
            ),
            limit=50,  # the server's maximum
        )
    return [e for e in page.events if any(r.id == f"prefect.flow-run.{run_id}" for r in e.related)]


def named(url: str, names: list[str]) -> list[Any]:
    """driftwatch events of this model with these names."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    with SyncPrefectClient(api=url) as client:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=names),
                resource=EventResourceFilter(id=[f"driftwatch.model.{MODEL}"]),
            ),
            limit=50,
        )
    return list(page.events)


def monitor(config: Path, batch: Path, url: str) -> dict[str, Any]:
    out = cli(["run", "--config", str(config), "--batch", str(batch), "--json"], url)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout[out.stdout.index("{") :])


def test_events_and_installed_automation_deliver_a_webhook(
    make_config, prefect_server: str, tmp_path: Path, january, july
) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    config = make_config(model={"name": MODEL})
    with receiver() as got:
        env = {"DRIFTWATCH_ALERT_WEBHOOK": got.url}
        # --dry-run changes nothing; install twice makes the automations once
        dry = cli(
            ["alerts", "install", "--config", str(config), "--dry-run"], prefect_server, **env
        )
        assert dry.returncode == 0, dry.stderr[-2000:]
        assert "would create automation 'driftwatch flights-alerts: drift detected'" in dry.stdout
        with SyncPrefectClient(api=prefect_server) as client:
            assert client.read_automations_by_name(f"driftwatch {MODEL}: drift detected") == []
        for _ in range(2):
            out = cli(["alerts", "install", "--config", str(config)], prefect_server, **env)
            assert out.returncode == 0, out.stderr[-2000:]
        assert "updated automation 'driftwatch flights-alerts: drift detected'" in out.stdout
        assert got.url not in out.stdout + out.stderr and "s3cr3t" not in out.stdout
        with SyncPrefectClient(api=prefect_server) as client:
            mine = [
                a for a in client.read_automations() if a.name.startswith(f"driftwatch {MODEL}:")
            ]
        assert len(mine) == 7, [a.name for a in mine]

        # 0. a landing file without a feature column: a data incident, and the run fails
        (tmp_path / "landing").mkdir()
        bad = write(
            day(january, 14).drop(columns=["temp"]), tmp_path / "landing" / "no-temp.parquet"
        )
        out = cli(["run", "--config", str(config)], prefect_server)
        assert out.returncode != 0 and "no-temp.parquet" in out.stderr, out.stderr[-2000:]
        seen = wait_for(
            lambda: named(
                prefect_server, ["driftwatch.data.incident", "driftwatch.monitor.failed"]
            ),
            lambda ev: len({e.event for e in ev}) == 2,
            120,
            "driftwatch.data.incident and driftwatch.monitor.failed",
        )
        (incident,) = [e for e in seen if e.event == "driftwatch.data.incident"]
        (problem,) = incident.payload["problems"]
        assert problem["file"] == str(bad) and "temp" in problem["reason"]
        assert problem["kind"] == "schema_error" and problem["quarantined"] is False
        (failed,) = [e for e in seen if e.event == "driftwatch.monitor.failed"]
        assert failed.payload["state"] == "Failed" and "temp" in failed.payload["message"]
        assert any(r.id == f"prefect.flow-run.{failed.payload['run_id']}" for r in failed.related)
        got.wait_for(
            lambda bodies: any("monitor failed" in str(b.get("subject")) for b in bodies),
            timeout=180,
            what="the failed-monitor automation's webhook call",
        )

        # 1. bootstrap: a promotion
        first = monitor(
            config,
            write(day(january, 15), tmp_path / "b1.parquet"),
            prefect_server,
        )
        assert first["outcome"] == "retrained-promoted"
        names = lambda events: sorted(e.event for e in events)  # noqa: E731
        seen = wait_for(
            lambda: events_of(prefect_server, first["run_id"]),
            lambda ev: "driftwatch.model.promoted" in names(ev),
            120,
            "driftwatch.model.promoted",
        )
        (promoted,) = [e for e in seen if e.event == "driftwatch.model.promoted"]
        assert promoted.payload["challenger_version"] == "1"
        assert promoted.payload["champion_version"] == "1"
        assert promoted.resource.id == f"driftwatch.model.{MODEL}"

        # 2. a quiet batch: the run completes, no drift event
        quiet = monitor(
            config,
            write(day(january, 16), tmp_path / "b2.parquet"),
            prefect_server,
        )
        assert quiet["outcome"] == "no-drift", quiet["outcome"]
        seen = wait_for(
            lambda: events_of(prefect_server, quiet["run_id"]),
            lambda ev: "driftwatch.monitor.completed" in names(ev),
            120,
            "driftwatch.monitor.completed of the quiet run",
        )
        assert names(seen) == ["driftwatch.monitor.completed"]

        # 3. July: drift, with the documented payload, and the automation's webhook call
        drifted = monitor(
            config,
            write(day(july, 10), tmp_path / "b3.parquet"),
            prefect_server,
        )
        seen = wait_for(
            lambda: events_of(prefect_server, drifted["run_id"]),
            lambda ev: "driftwatch.drift.detected" in names(ev),
            120,
            "driftwatch.drift.detected",
        )
        (drift,) = [e for e in seen if e.event == "driftwatch.drift.detected"]
        p = drift.payload
        assert p["run_id"] == drifted["run_id"] and p["rule"] == drifted["drift"]["method"]
        assert {c["column"] for c in p["columns"]} == set(drifted["drift"]["drifted_columns"])
        assert "temp" in {c["column"] for c in p["columns"]}
        assert all(c["score"] is not None and c["threshold"] is not None for c in p["columns"])
        assert {"horizon", "window", "rate", "share", "n_drifted", "n_tested", "summary"} <= set(p)
        got.wait_for(
            lambda bodies: any("drift detected" in str(b.get("subject")) for b in bodies),
            timeout=180,
            what="the drift automation's webhook call",
        )
        (call,) = [b for b in got.bodies if "drift detected" in str(b.get("subject"))]
        assert call["subject"] == f"driftwatch {MODEL}: drift detected"
        assert "driftwatch.drift.detected" in call["body"] and drifted["run_id"] in call["body"]

        # 4. a rollback from the command line is an event too (and the automation tells it)
        assert drifted["outcome"] == "retrained-promoted", drifted["outcome"]
        out = cli(["rollback", "--config", str(config)], prefect_server, **env)
        assert out.returncode == 0, out.stderr[-2000:]
        got.wait_for(
            lambda bodies: any("rolled back" in str(b.get("subject")) for b in bodies),
            timeout=180,
            what="the rollback automation's webhook call",
        )
        (call,) = [b for b in got.bodies if "rolled back" in str(b.get("subject"))]
        assert '"from_version": "2"' in call["body"] and '"to_version": "1"' in call["body"]


def write(frame, path: Path) -> Path:
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture(autouse=True)
def _no_api_url_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
