"""Server-less alerts from the daemon: real monitor results (the use case on real flights
days), a real webhook receiver on 127.0.0.1, the daemon's own alert step. One message per
incident, none while it lasts, "resolved" when it ends; a receiver that is down never fails the
run and never sees its URL logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from driftwatch.alerts import events as ev
from driftwatch.alerts.incidents import step
from driftwatch.config import QualitySettings, load_settings
from driftwatch.errors import ConfigError
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.result import MonitorResult
from tests.alert_receiver import receiver
from tests.conftest import free_port
from tests.test_pipeline import FAST, memory_cycle

ENV = "DRIFTWATCH_TEST_ALERT_WEBHOOK"


def day(frame: pd.DataFrame, number: int) -> pd.DataFrame:
    from driftwatch.store.flights import FLIGHTS_TZ

    return frame[frame["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.day == number]


@pytest.fixture(scope="module")
def results(tmp_path_factory, january: pd.DataFrame, july: pd.DataFrame) -> list[MonitorResult]:
    """A champion bootstrapped on a January day, then three July days (drift, held: the
    champion is kept so the incident lasts), then a quiet January day."""
    import yaml

    from tests.conftest import REFERENCE, base_config

    tmp = tmp_path_factory.mktemp("alerts")
    raw = base_config()
    raw["paths"] = {"reference": str(REFERENCE), "state": str(tmp / "state")}
    raw["model"].update(FAST)
    raw["drift"]["horizons"] = []
    raw["report"] = {"html": False}
    # Drift is held (never retrains) so that one incident spans several runs; quality is not
    # judged against a tolerance it could cross, so the drift incident is the only one.
    raw["retrain"].update({"max_age_days": None, "min_age_days": 10_000})
    raw["quality"]["relative_tolerance"] = 100.0
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    plan = Plan.load(path)
    items = [
        ("2013-01-15.parquet", day(january, 15)),
        ("2013-07-10.parquet", day(july, 10)),
        ("2013-07-11.parquet", day(july, 11)),
        ("2013-07-12.parquet", day(july, 12)),
        ("2013-01-16.parquet", day(january, 16)),
    ]
    cycle, _ = memory_cycle(plan, items)
    return [cycle.run(run_id=f"run-{i}") for i in range(len(items))]


def daemon_for(make_config: Callable[..., Path], url_env: str = ENV, **alerts):
    from driftwatch.orchestration.daemon import Daemon

    config = make_config(
        alerts={"targets": [{"env": url_env}], "retries": 1, "backoff_seconds": 0.05, **alerts}
    )
    return Daemon(config)


def test_drift_payload_is_the_documented_contract(results: list[MonitorResult]) -> None:
    drifted = results[1]
    assert drifted.drift is not None and drifted.drift.dataset_drift
    events = ev.run_events(drifted, "flights-air-time", load_settings().quality)
    (drift,) = [e for e in events if e.event == ev.DRIFT]
    assert drift.resource_id == "driftwatch.model.flights-air-time"
    p = drift.payload
    assert p["run_id"] == "run-1" and p["files"] == ["2013-07-10.parquet"]
    assert p["rule"] == drifted.drift.method and p["n_drifted"] >= 1
    assert {c["column"] for c in p["columns"]} == set(drifted.drift.drifted_columns)
    assert all(c["score"] is not None and c["threshold"] is not None for c in p["columns"])
    assert {"horizon", "window", "rate", "drift_share", "share", "n_tested"} <= set(p)
    json.dumps(p)  # plain JSON: what Prefect and webhooks receive
    # A quiet day: no drift event, but the run completed (the heartbeat).
    quiet = ev.run_events(results[4], "flights-air-time", load_settings().quality)
    assert [e.event for e in quiet] == [ev.COMPLETED]
    # The bootstrap: a promotion with both scores and versions.
    first = ev.run_events(results[0], "flights-air-time", load_settings().quality)
    (promoted,) = [e for e in first if e.event == ev.PROMOTED]
    assert promoted.payload["challenger_version"] == "1"
    assert promoted.payload["champion_version"] == "1"
    assert promoted.payload["trigger"] == ["bootstrap"]


def test_daemon_sends_one_message_per_incident_and_resolved_when_it_ends(
    make_config, results: list[MonitorResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [r.drift.dataset_drift for r in results] == [False, True, True, True, False]
    with receiver() as got:
        monkeypatch.setenv(ENV, got.url)
        daemon = daemon_for(make_config)
        daemon._alert(None, results[0].to_dict())  # bootstrap: the promotion is told
        assert [(b["status"], b["event"]) for b in got.bodies] == [("event", ev.PROMOTED)]
        daemon._alert(None, results[1].to_dict())  # drift opens: one message
        assert [(b["status"], b["event"]) for b in got.bodies[1:]] == [("opened", ev.DRIFT)]
        assert got.bodies[1]["payload"]["columns"]
        daemon._alert(None, results[2].to_dict())  # the same incident: nothing
        daemon._alert(None, results[3].to_dict())
        assert len(got.bodies) == 2
        daemon._alert(None, results[4].to_dict())  # a quiet day: resolved
        assert [(b["status"], b["event"]) for b in got.bodies[2:]] == [("resolved", ev.DRIFT)]
        assert got.bodies[2]["summary"].startswith("resolved: drift detected")
    state = json.loads((daemon.settings.paths.state / "alerts" / "incidents.json").read_text())
    assert state["open"] == {} and "last_error" not in state


def test_a_receiver_that_is_down_fails_no_run_and_its_url_is_never_shown(
    make_config,
    results: list[MonitorResult],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from driftwatch.alerts.notify import status_lines

    secret = f"http://127.0.0.1:{free_port()}/hook/s3cr3t-token"  # nothing listens there
    monkeypatch.setenv(ENV, secret)
    daemon = daemon_for(make_config)
    with caplog.at_level(logging.DEBUG):
        daemon._alert(None, results[1].to_dict())  # must not raise
    state_file = daemon.settings.paths.state / "alerts" / "incidents.json"
    state = json.loads(state_file.read_text())
    assert state["open"]["drift"]["notified"] is False  # offered again at the next run
    assert "ConnectError" in state["last_error"]["errors"][0]
    assert f"${ENV}" in state["last_error"]["errors"][0]
    lines = status_lines(daemon.settings)
    assert any("last delivery failure" in line for line in lines)
    assert any("open incident drift" in line and "NOT yet notified" in line for line in lines)
    shown = caplog.text + state_file.read_text() + "\n".join(lines) + capsys.readouterr().err
    assert "s3cr3t" not in shown and "alert not delivered" in caplog.text
    # The receiver comes back: the incident it missed is told once, then nothing more.
    with receiver() as got:
        monkeypatch.setenv(ENV, got.url)
        daemon._alert(None, results[2].to_dict())
        daemon._alert(None, results[3].to_dict())
        assert [(b["status"], b["event"]) for b in got.bodies] == [("opened", ev.DRIFT)]


def test_a_failed_run_opens_a_failed_incident_that_the_next_good_run_resolves(
    make_config, results: list[MonitorResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiver() as got:
        monkeypatch.setenv(ENV, got.url)
        daemon = daemon_for(make_config)
        daemon._alert(None, None, "RegistryError: MLflow unreachable")
        daemon._alert(None, None, "RegistryError: MLflow unreachable")
        daemon._alert(None, results[4].to_dict())
    assert [(b["status"], b["event"]) for b in got.bodies] == [
        ("opened", ev.FAILED),
        ("resolved", ev.FAILED),
    ]
    assert got.bodies[0]["payload"]["message"] == "RegistryError: MLflow unreachable"


def test_no_data_does_not_resolve_a_drift_incident() -> None:
    drift = ev.DriftwatchEvent(ev.DRIFT, "m", {}, "drift detected")
    done = ev.DriftwatchEvent(ev.COMPLETED, "m", {}, "completed")
    state, msgs = step({}, [drift, done], True, "t0")
    state["drift"]["notified"] = True
    state, msgs = step(state, [done], judged=(), now="t1")  # no new data
    assert "drift" in state and msgs == []
    state, msgs = step(state, [done], judged={"drift", "quality", "data"}, now="t2")
    assert state == {} and [m.status for m in msgs] == ["resolved"]


def test_a_run_without_a_verdict_does_not_resolve_what_it_could_not_see(
    results: list[MonitorResult],
) -> None:
    """Review of the merge: a tick with rows but no verdict (too few rows for any horizon,
    too few labels for quality) said "resolved" for open drift and quality incidents."""
    drifted = results[1]
    assert {"drift", "data"} <= ev.judged_kinds(drifted)
    blind = drifted.model_copy(update={"drift": None, "horizons": [], "quality": None})
    assert ev.judged_kinds(blind) == {"data"}
    drift = ev.DriftwatchEvent(ev.DRIFT, "m", {}, "drift detected")
    done = ev.DriftwatchEvent(ev.COMPLETED, "m", {}, "completed")
    state, _ = step({}, [drift, done], {"drift", "data"}, "t0")
    state["drift"]["notified"] = True
    state, msgs = step(state, [done], ev.judged_kinds(blind), "t1")
    assert "drift" in state and msgs == []


def test_an_undefined_challenger_score_is_told_not_a_crash(results: list[MonitorResult]) -> None:
    """ROC AUC on a holdout with one class is undefined: the retrain's events still go out."""
    promoted = next(r for r in results if r.retrain is not None)
    retrain = promoted.retrain.model_copy(update={"challenger_score": None})
    events = ev.run_events(promoted.model_copy(update={"retrain": retrain}), "m", QualitySettings())
    line = next(e.summary for e in events if e.event in (ev.PROMOTED, ev.KEPT))
    assert "undefined" in line


def test_a_url_in_config_is_refused_naming_the_setting(make_config) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.targets\.0\.env.*not a URL"):
        load_settings(make_config(alerts={"targets": [{"env": "https://hooks.example/x"}]}))
    with pytest.raises(ConfigError, match=r"alerts\.targets\.0\.url"):
        load_settings(make_config(alerts={"targets": [{"url": "https://hooks.example/x"}]}))


def test_data_incidents_name_the_file_and_whether_it_was_quarantined(
    results: list[MonitorResult],
) -> None:
    reason = "/l/b.parquet: column 'temp' is missing"
    bad = results[4].model_copy(
        update={
            "rejected": {"/l/b.parquet": reason},
            "warnings": [f"quarantined: {reason}"],
        }
    )
    (data,) = [e for e in ev.run_events(bad, "m", load_settings().quality) if e.event == ev.DATA]
    assert data.incident == "data"
    assert data.payload["problems"] == [
        {"kind": "schema_error", "file": "/l/b.parquet", "reason": reason, "quarantined": True}
    ]
    empty = results[4].model_copy(update={"rows": 0, "drift": None, "horizons": []})
    (data,) = [e for e in ev.run_events(empty, "m", load_settings().quality) if e.event == ev.DATA]
    assert data.payload["problems"][0]["kind"] == "empty"


def test_an_apprise_target_delivers_through_apprise(
    make_config, results: list[MonitorResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiver() as got:
        # Apprise's json:// posts {"title", "message", ...} to the URL: a real Apprise delivery.
        monkeypatch.setenv("DRIFTWATCH_TEST_APPRISE", got.url.replace("http://", "json://"))
        from driftwatch.orchestration.daemon import Daemon

        daemon = Daemon(
            make_config(alerts={"targets": [{"env": "DRIFTWATCH_TEST_APPRISE", "kind": "apprise"}]})
        )
        daemon._alert(None, results[1].to_dict())
    (body,) = got.bodies
    assert body["title"] == "driftwatch flights-air-time: driftwatch.drift.detected"
    assert body["message"].startswith("drift detected")
