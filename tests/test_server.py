"""Against a real `prefect server start` on 127.0.0.1: the monitor's flow run, its child retrain
run, the drift report in its logs and its artifacts read back through the Prefect client; and
`driftwatch serve` producing scheduled runs of its deployment."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # real servers, subprocesses: the slow tier

DRIFTWATCH = str(Path(sys.executable).parent / "driftwatch")


def client_for(url: str):
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(api=url)


def run_cli(args: list[str], url: str | None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if url:
        env["PREFECT_API_URL"] = url
    return subprocess.run(
        [DRIFTWATCH, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_monitor_run_logs_artifacts_and_child_run_on_a_real_server(
    make_config, prefect_server: str, tmp_path: Path, january
) -> None:
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    config = make_config(report={"html": True, "evidently": True, "html_sample_rows": 1000})
    batch = tmp_path / "jan.parquet"
    january.sample(2000, random_state=11).to_parquet(batch)
    out = run_cli(["run", "--config", str(config), "--batch", str(batch), "--json"], prefect_server)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    result = json.loads(out.stdout[out.stdout.index("{") :])
    run_id = result["run_id"]
    with client_for(prefect_server) as client:
        run = client.read_flow_run(run_id)
        assert run.state.is_completed() and run.state.message.startswith("retrained-promoted")
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])
            )
        )
        assert len(children) == 1 and children[0].state.is_completed()
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
        text = "\n".join(log.message for log in logs)
        assert "feature drift per column" in text
        assert "temp" in text and "time-block thresholds" in text
        assert "outcome: bootstrap" in text
        child_logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[children[0].id]))
        )
        assert any("PROMOTED" in log.message for log in child_logs)
        keys = [
            "flights-air-time-drift-summary",
            "flights-air-time-drift-columns",
            "flights-air-time-retrain",
        ]
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[*keys, "flights-air-time-report"])
            )
        )
        # other runs on this server share the keys (that is the point of stable keys)
        by_key = {a.key: a for a in arts if a.flow_run_id in (run.id, children[0].id)}
        assert set(by_key) == set(keys)
        assert by_key["flights-air-time-drift-summary"].flow_run_id == run.id
        assert by_key["flights-air-time-retrain"].flow_run_id == children[0].id
        assert by_key["flights-air-time-drift-columns"].type == "table"
        assert "challenger" in by_key["flights-air-time-retrain"].data
        html = Path(result["html_report"])
        # MLflow in sqlite: no http server, so no link artifact; the summary gives the path as
        # text, and no artifact ever holds a file:// link (browsers refuse it from the UI)
        assert f"`{html}`" in by_key["flights-air-time-drift-summary"].data
        assert not [a for a in arts if "file://" in str(a.data)]
    page = html.read_text()  # driftwatch's own page, written after the retrain
    assert "flights-air-time: retrained-promoted" in page and "challenger PROMOTED" in page
    assert "<script" not in page
    evidently = Path(result["evidently_report"]).read_text()
    assert "Drifted Columns" in evidently  # the data drift preset
    # the banner opens the page, right after <body>
    assert re.search(
        r"<body[^>]*><div[^>]*><b>Evidently's page, not driftwatch's verdict", evidently
    )
    assert f"report page: {html}" in text


def test_serve_refuses_without_a_server(make_config) -> None:
    out = run_cli(["serve", "--config", str(make_config())], url=None, timeout=60)
    assert out.returncode == 2
    assert "PREFECT_API_URL is not set" in out.stderr and "driftwatch daemon" in out.stderr


def test_serve_produces_scheduled_runs_and_stops_cleanly(
    make_config, prefect_server: str, tmp_path: Path
) -> None:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    config = make_config()
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [DRIFTWATCH, "serve", "--config", str(config), "--interval", "5"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 150
        finished: list = []
        while time.time() < deadline and len(finished) < 2:
            time.sleep(2)
            with client_for(prefect_server) as client:
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(
                        name=DeploymentFilterName(any_=["flights-air-time-monitor"])
                    )
                )
            finished = [r for r in runs if r.state and r.state.is_completed()]
        assert len(finished) >= 2, log.read_text()[-3000:]
        assert all(r.state.message == "no new data" for r in finished)
        assert all(r.deployment_id is not None and r.auto_scheduled for r in finished)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text()[-2000:]


@pytest.fixture(autouse=True)
def _no_api_url_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
