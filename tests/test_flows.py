"""The monitor flow and retrain subflow end to end: real Prefect API, real MLflow (sqlite),
real flights data. One Prefect test API serves the whole module."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pandas as pd
import pytest

from driftwatch.config import load_settings
from driftwatch.store.flights import local_month
from driftwatch.store.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]


def run(config: Path, batch: Path | None = None, **params):
    from driftwatch.orchestration.monitor_flow import monitor_flow

    return monitor_flow(
        config_path=str(config), batch=str(batch) if batch else None, return_state=True, **params
    )


def child_runs(state) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    parent = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(str(parent))])
            )
        )


def task_state(state, name_prefix: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    run_id = UUID(str(state.state_details.flow_run_id))
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    (match,) = [t for t in tasks if t.name.startswith(name_prefix)]
    return match.state.name


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def champion_version(config: Path) -> str | None:
    info = Registry(load_settings(config)).champion()
    return info.version if info else None


def test_empty_batch_completes_with_no_new_data(make_config, tmp_path: Path, january) -> None:
    config = make_config()
    empty = write(january.head(0), tmp_path / "empty.parquet")
    state = run(config, empty)
    assert state.is_completed()
    assert state.message == "no new data"
    assert child_runs(state) == []
    assert champion_version(config) is None


def test_bootstrap_then_quiet_batch_then_shift_retrains_and_promotes(
    make_config, tmp_path: Path, january, july
) -> None:
    config = make_config()
    # 1. no champion yet: the first batch bootstraps one through the retrain subflow
    first = write(january.sample(3000, random_state=1), tmp_path / "b1.parquet")
    state = run(config, first)
    assert state.is_completed(), state.message
    assert state.message.startswith("retrained-promoted")
    assert [r.name for r in child_runs(state)] and champion_version(config) == "1"

    # 2. a batch drawn from the reference period: no drift, no child run, champion unchanged
    quiet = write(january.sample(3000, random_state=2), tmp_path / "b2.parquet")
    state = run(config, quiet)
    assert state.is_completed()
    assert state.message.startswith("no drift"), state.message
    assert child_runs(state) == []
    assert champion_version(config) == "1"

    # 3. July: weather drifts and the January model is worse; the challenger wins
    shifted = write(july.sample(5000, random_state=3), tmp_path / "b3.parquet")
    state = run(config, shifted)
    assert state.is_completed(), state.message
    children = child_runs(state)
    assert len(children) == 1 and children[0].state.is_completed()
    assert state.message.startswith("retrained-promoted"), state.message
    assert champion_version(config) == "2"
    reg = Registry(load_settings(config))
    v2 = reg.client.get_model_version("flights-air-time", "2")
    assert v2.tags["driftwatch.previous_champion"] == "1"
    # the reference did not change between runs 2 and 3: its time-block thresholds were
    # calibrated once, cached under the state dir (wiping it clears them), reused by run 3
    cached = sorted((tmp_path / "state" / "calibration").glob("blocks-*.yaml"))
    assert len(cached) == 2  # one per reference and span: the shipped one and v1's window
    assert task_state(state, "calibrate thresholds") == "Completed"
    # the drift reference moved to the new champion's training window (July only: 60 days)
    ref = pd.read_parquet(v2.tags["driftwatch.reference"])
    assert local_month(ref).unique().tolist() == [7]


def test_worse_challenger_keeps_the_champion(make_config, tmp_path: Path, january, july) -> None:
    config = make_config()
    assert run(
        config, write(january.sample(3000, random_state=4), tmp_path / "a.parquet")
    ).is_completed()
    assert champion_version(config) == "1"
    # Same data drift, but now the configured estimator can only predict the mean: it is worse.
    config = make_config(model={"estimator": "sklearn.dummy:DummyRegressor", "params": {}})
    state = run(config, write(july.sample(4000, random_state=5), tmp_path / "b.parquet"))
    assert state.is_completed(), state.message
    assert state.message.startswith("retrained-kept"), state.message
    assert len(child_runs(state)) == 1
    assert champion_version(config) == "1"
    reg = Registry(load_settings(config))
    runs = reg.client.search_runs([reg.experiment_id], "tags.`driftwatch.run_type` = 'retrain'")
    kept = [r for r in runs if r.data.tags.get("driftwatch.promoted") == "false"]
    assert len(kept) == 1
    m = kept[0].data.metrics
    assert m["holdout_challenger_rmse"] > m["holdout_champion_rmse"]
    decision = kept[0].data.tags["driftwatch.decision"]
    assert "worse than champion" in decision and "kept champion" in decision, decision


def test_invalid_parameter_fails_with_parameter_type_error(make_config) -> None:
    from prefect.exceptions import ParameterTypeError

    from driftwatch.orchestration.monitor_flow import monitor_flow

    state = monitor_flow(
        config_path=str(make_config()), batch=["not", "a", "path"], return_state=True
    )
    assert state.is_failed()
    with pytest.raises(ParameterTypeError):
        state.result()


def test_missing_column_fails_naming_column_and_file(make_config, tmp_path: Path, january) -> None:
    config = make_config()
    bad = write(
        january.sample(500, random_state=6).drop(columns=["temp"]), tmp_path / "no-temp.parquet"
    )
    state = run(config, bad)
    assert state.is_failed()
    assert "temp" in state.message and "no-temp.parquet" in state.message
    assert champion_version(config) is None


def test_landing_dir_each_file_once_bad_file_retried_then_quarantined(
    make_config, tmp_path: Path, january
) -> None:
    config = make_config(landing={"max_attempts": 2})
    landing = tmp_path / "landing"
    write(january.sample(2000, random_state=7), landing / "2013-01-a.parquet")
    write(january.sample(2000, random_state=8), landing / "2013-01-b.parquet")
    (landing / "2013-01-c.parquet").write_bytes(b"PAR1 this is not parquet")

    state = run(config)  # no batch: take every pending landing file
    assert state.is_failed()
    assert "2013-01-c.parquet" in state.message and "not a readable parquet file" in state.message
    from driftwatch.store.landing import ledger_for

    ledger = ledger_for(load_settings(config).paths.state)
    status = {Path(r.path).name: (r.status, r.attempts) for r in ledger.records()}
    assert status == {
        "2013-01-a.parquet": ("done", 1),
        "2013-01-b.parquet": ("done", 1),
        "2013-01-c.parquet": ("failed", 1),
    }
    assert champion_version(config) == "1"  # the good files bootstrapped a champion

    state = run(config)  # second attempt: the bad file alone, then quarantined
    assert state.is_failed()
    status = {Path(r.path).name: (r.status, r.attempts) for r in ledger.records()}
    assert status["2013-01-c.parquet"] == ("quarantined", 2)
    assert status["2013-01-a.parquet"] == ("done", 1)  # never processed twice
    assert (tmp_path / "state" / "quarantine" / "2013-01-c.parquet.reason.txt").exists()

    state = run(config)  # nothing left
    assert state.is_completed() and state.message == "no new data"


def test_unlabelled_batch_rollback_status_report_and_plot(
    make_config, tmp_path: Path, january, july, capsys
) -> None:
    from driftwatch.cli import main
    from driftwatch.store.references import active_reference

    config = make_config()
    assert run(
        config, write(january.sample(3000, random_state=21), tmp_path / "a.parquet")
    ).is_completed()
    state = run(config, write(july.sample(4000, random_state=22), tmp_path / "b.parquet"))
    assert state.message.startswith("retrained-promoted") and champion_version(config) == "2"
    settings = load_settings(config)
    v1 = Registry(settings).client.get_model_version("flights-air-time", "1")

    # labels arrive later: a batch without the target gets a drift verdict, no quality verdict
    unlabelled = july.sample(2000, random_state=23).drop(columns=["air_time"])
    state = run(config, write(unlabelled, tmp_path / "c.parquet"))
    assert state.is_completed(), state.message
    result = state.result()
    assert result["labelled_rows"] == 0
    assert result["quality"]["degraded"] is None
    assert result["quality"]["reason"].startswith("no quality verdict: 0 labelled rows")
    assert len(result["drift"]["columns"]) == 14  # every feature tested and reported ...
    assert result["drift"]["n_tested"] == 14  # ... and counted: no report-only columns
    assert result["drift"]["report_only"] == [] and result["drift"]["span"] == "7d"

    # rollback: the alias and, with it, the drift reference go back to v1
    assert main(["rollback", "--config", str(config)]) == 0
    assert champion_version(config) == "1"
    champion = Registry(settings).champion()
    assert champion.reference == v1.tags["driftwatch.reference"]
    assert active_reference(settings, champion.reference).path == Path(
        v1.tags["driftwatch.reference"]
    )
    assert "moved back from v2 to v1" in capsys.readouterr().out
    with pytest.raises(Exception, match="no previous champion"):
        Registry(settings).rollback()

    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "retrained-promoted" in out and "champion: v1" in out
    assert main(["report", "latest", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "feature drift per column" in out and "no quality verdict" in out
    png = tmp_path / "history.png"
    assert main(["report", "--plot", str(png), "--config", str(config)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_classification_end_to_end(make_config, tmp_path: Path, january, july) -> None:
    config = make_config(
        model={"task": "classification", "target": "arr_delay", "target_threshold": 15},
        quality={"metric": "roc_auc"},
    )
    state = run(config, write(january.sample(4000, random_state=31), tmp_path / "a.parquet"))
    assert state.is_completed(), state.message
    assert champion_version(config) == "1"
    state = run(config, write(july.sample(4000, random_state=32), tmp_path / "b.parquet"))
    assert state.is_completed(), state.message
    result = state.result()
    q = result["quality"]
    assert q["metric"] == "roc_auc" and set(q["metrics"]) == {"accuracy", "f1", "roc_auc"}
    assert 0.5 < q["value"] < 1.0
    # quality.baseline: served (shipped): v1's first batch in service is its baseline, so this
    # batch has a value and no verdict yet.
    assert q["degraded"] is None and "first batch in service" in q["reason"], q["reason"]
    assert result["prediction"]["kind"] == "numerical"  # P(delayed) through the drift engine
    reg = Registry(load_settings(config))
    runs = reg.client.search_runs([reg.experiment_id], "tags.`driftwatch.run_type` = 'retrain'")
    assert all("holdout_challenger_roc_auc" in r.data.metrics for r in runs)


def test_rolling_window_judges_new_files_with_recent_ones(
    make_config, tmp_path: Path, january
) -> None:
    config = make_config(landing={"window_hours": 24})
    landing = tmp_path / "landing"
    a, b = january.sample(400, random_state=41), january.sample(300, random_state=42)
    write(a, landing / "h01.parquet")
    first = run(config)
    assert first.is_completed(), first.message
    assert first.result()["window"] == "last 24 h of arrivals: 1 new + 0 earlier file(s)"
    write(b, landing / "h02.parquet")
    state = run(config)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["window"] == "last 24 h of arrivals: 1 new + 1 earlier file(s)"
    assert result["rows"] == 700 and result["files"] == [str(landing / "h02.parquet")]
    assert run(config).message == "no new data"  # earlier files alone are not new data


def test_mlflow_unreachable_fails_clearly_and_leaves_files_alone(
    make_config, tmp_path: Path, january
) -> None:
    config = make_config(mlflow={"tracking_uri": "http://127.0.0.1:9"}, landing={"max_attempts": 2})
    write(january.sample(500, random_state=51), tmp_path / "landing" / "a.parquet")
    from driftwatch.store.landing import ledger_for

    for _ in range(3):
        state = run(config)
        assert state.is_failed()
        assert "MLflow at http://127.0.0.1:9 is not usable" in state.message
        # MLflow is checked before any file is claimed: the file is untouched, not counted
        # against, and taken at the first tick after MLflow is back
        assert ledger_for(load_settings(config).paths.state).records() == []
    assert (tmp_path / "landing" / "a.parquet").exists()


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    import hashlib

    return {
        str(p.relative_to(directory)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_backtest_and_compare_leave_the_real_state_untouched(
    make_config, tmp_path: Path, january, july, flights
) -> None:
    import json

    import yaml

    from driftwatch.cli import main
    from driftwatch.store.flights import FLIGHTS_TZ

    config = make_config()
    write(january.sample(3000, random_state=61), tmp_path / "landing" / "a.parquet")
    assert run(config).is_completed()
    state_dir = tmp_path / "state"
    before = snapshot(state_dir)
    assert "ledger.sqlite" in before and "mlflow.db" in before
    assert any(k.startswith("reference/") for k in before)
    # Two summer months with labels: the January champion the config starts from gets worse.
    history = flights[flights["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.month.isin([6, 7])]
    data = write(history.sample(frac=0.25, random_state=62), tmp_path / "history.parquet")
    other = tmp_path / "evidently.yaml"
    raw = yaml.safe_load(config.read_text())
    raw["drift"]["method"] = "evidently"
    other.write_text(yaml.safe_dump(raw))
    out = tmp_path / "bt"
    args = ["backtest", "--config", str(config), "--compare", str(other), "--data", str(data)]
    assert main([*args, "--from", "2013-06-01", "--to", "2013-07-14", "--out", str(out)]) == 0

    assert snapshot(state_dir) == before  # no ledger row, no MLflow write, no reference
    assert champion_version(config) == "1"
    frame = pd.read_csv(out / "backtest.csv")
    assert set(frame["config"]) == {"config", "evidently"}
    weeks = frame[frame["config"] == "config"]
    assert len(weeks) == 7  # 2013-06-01 (a Saturday) .. 2013-07-14, cut into weeks ending Sunday
    # The replay bootstraps its own champion on its first week, so the drift reference is
    # June; a 9-day reference gives 7-day thresholds from 3 blocks, and June against July
    # weather is within them (a week with a dozen rows of missing weather used to alarm: one
    # gap, counted in rows). Evidently's fixed thresholds alarm on every week.
    assert weeks["retrained"].any()
    assert frame[frame["config"] == "evidently"]["dataset_drift"].all()
    assert weeks["champion"].iloc[-1] >= 1  # a promotion happened in the replay only
    summary = json.loads((out / "summary.json").read_text())
    assert [s["method"] for s in summary] == ["calibrated", "evidently"]
    assert summary[0]["retrains"] == int(weeks["retrained"].sum())
    png = (out / "timeline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 30_000


def test_disk_full_while_writing_the_report_fails_clearly_and_keeps_the_ledger(
    make_config, tmp_path: Path, january
) -> None:
    """A real full filesystem (a 64 KiB tmpfs under the reports dir, filled up), not a mock."""
    import os
    import subprocess

    from driftwatch.store.landing import ledger_for

    config = make_config()
    runs = tmp_path / "state" / "runs"
    runs.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(runs)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        fd = os.open(runs / "filler", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(OSError, match="No space left"):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        write(january.sample(2000, random_state=71), tmp_path / "landing" / "a.parquet")
        state = run(config)
        assert state.is_failed()
        assert "disk full: cannot write" in state.message and str(runs) in state.message
        (rec,) = ledger_for(load_settings(config).paths.state).records()
        assert (rec.status, rec.attempts) == ("failed", 1)  # to be retried, not quarantined
        assert "disk full" in rec.error
        assert not [p for p in runs.iterdir() if p.name != "filler"]  # no half-written result
    finally:
        subprocess.run(["umount", str(runs)], check=True)
    state = run(config)  # space is back: the same file goes through, once
    assert state.is_completed(), state.message
    (rec,) = ledger_for(load_settings(config).paths.state).records()
    assert (rec.status, rec.attempts) == ("done", 2)


def test_a_second_state_dir_on_the_landing_dir_is_refused_and_takes_no_file(
    make_config, tmp_path: Path, january
) -> None:
    import yaml

    from driftwatch.store.landing import ledger_for

    config = make_config()
    write(january.sample(500, random_state=81), tmp_path / "landing" / "a.parquet")
    assert run(config).is_completed()
    raw = yaml.safe_load(config.read_text())
    raw["paths"]["state"] = str(tmp_path / "other-state")
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(raw, sort_keys=False))
    b = write(january.sample(500, random_state=82), tmp_path / "landing" / "b.parquet")
    state = run(other)
    assert state.is_failed()
    assert (
        f"landing dir {tmp_path / 'landing'} belongs to the driftwatch with state dir"
        f" {(tmp_path / 'state').resolve()}"
    ) in state.message
    assert ledger_for(tmp_path / "other-state").records() == []  # nothing taken
    assert b.exists() and ledger_for(tmp_path / "state").get(b) is None
