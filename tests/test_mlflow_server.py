"""Against a real `mlflow server` on 127.0.0.1 (sqlite backend, temp dir), started and stopped
here: the monitor bootstraps a champion through it, and when the server goes away in the middle
of a retrain, the run fails with a clear message and the champion alias does not move."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow  # real servers, subprocesses: the slow tier

BIN = Path(sys.executable).parent


class MlflowServer:
    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.root / "mlflow-server.log").open("a")
        self.proc = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError((self.root / "mlflow-server.log").read_text()[-2000:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:  # a loaded machine, keep-alive clients: force it
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=60)

    def champion(self, name: str = "flights-air-time") -> str | None:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        try:
            return (
                MlflowClient(self.url, self.url)
                .get_model_version_by_alias(name, "champion")
                .version
            )
        except MlflowException:
            return None


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_champion_through_a_real_server_and_no_move_when_it_dies_mid_retrain(
    make_config, mlflow_server: MlflowServer, tmp_path: Path, january, july
) -> None:
    config = make_config(mlflow={"tracking_uri": mlflow_server.url})
    jan, jul = tmp_path / "jan.parquet", tmp_path / "jul.parquet"
    january.sample(3000, random_state=61).to_parquet(jan)
    july.sample(4000, random_state=62).to_parquet(jul)
    # the subprocess shows Prefect's INFO logs: the test watches them for the retrain
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PREFECT_API_URL", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL")
    }

    first = subprocess.run(
        [str(BIN / "driftwatch"), "run", "--config", str(config), "--batch", str(jan)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert mlflow_server.champion() == "1"

    # The July batch drifts: a retrain starts; the server dies after the challenger is trained.
    log = tmp_path / "second.log"
    proc = subprocess.Popen(
        # --verbose: Prefect's run-state lines (quiet by default) name the retrain subflow
        [str(BIN / "driftwatch"), "run", "--config", str(config), "--batch", str(jul), "--verbose"],
        env={**env, "DRIFTWATCH_PAUSE_AT": "after-train:6"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 200
    while (
        "training window:" not in log.read_text() and time.time() < deadline and proc.poll() is None
    ):
        time.sleep(0.3)
    assert "training window:" in log.read_text(), log.read_text()[-3000:]
    mlflow_server.stop()
    code = proc.wait(timeout=300)
    out = log.read_text()
    assert code == 3, out[-3000:]
    assert "driftwatch-retrain" in out  # the retrain subflow had started
    assert (
        f"Failed: Flow run encountered an exception: RegistryError: MLflow at {mlflow_server.url} is not usable"
        in out
    )

    mlflow_server.start()  # same database: what did the failed retrain leave behind?
    assert mlflow_server.champion() == "1"  # the alias never moved


def test_the_report_link_is_the_pages_http_url_in_mlflow_never_file(
    make_config, mlflow_server: MlflowServer, prefect_server: str, tmp_path: Path, january
) -> None:
    """MLflow serves artifacts as downloads; its run page previews driftwatch's page: the
    Prefect link artifact points there, and the page it shows is this run's."""
    import json

    from mlflow.tracking import MlflowClient
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
    )

    config = make_config(mlflow={"tracking_uri": mlflow_server.url}, report={"html": True})
    batch = tmp_path / "jan.parquet"
    january.sample(2000, random_state=12).to_parquet(batch)
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    out = subprocess.run(
        [str(BIN / "driftwatch"), "run", "--config", str(config), "--batch", str(batch), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads(out.stdout[out.stdout.index("{") :])
    name = Path(result["html_report"]).name

    client = MlflowClient(mlflow_server.url, mlflow_server.url)
    exp = client.get_experiment_by_name("flights-air-time")
    runs = client.search_runs(
        [exp.experiment_id], f"tags.`driftwatch.prefect_run` = '{result['run_id']}'"
    )
    assert len(runs) == 1
    ml_run = runs[0].info.run_id
    assert [a.path for a in client.list_artifacts(ml_run, "reports")] == [f"reports/{name}"]
    url = f"{mlflow_server.url}/#/experiments/{exp.experiment_id}/runs/{ml_run}/artifacts/reports/{name}"

    with SyncPrefectClient(api=prefect_server) as prefect:
        arts = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[result["run_id"]])
            )
        )
    by_key = {a.key: a for a in arts}
    link = by_key["flights-air-time-report"]
    assert link.type == "markdown" and f"]({url})" in str(link.data)  # a link artifact
    assert not [a for a in arts if "file://" in str(a.data)]

    # the page MLflow's UI previews (fetched as the UI does) is this run's
    fetch = f"{mlflow_server.url}/get-artifact?path=reports/{name}&run_uuid={ml_run}"
    with urllib.request.urlopen(fetch, timeout=60) as r:
        page = r.read().decode()
    assert result["run_id"] in page and "flights-air-time: retrained-promoted" in page
