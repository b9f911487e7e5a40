"""Several models in one config (issue 19): each model's settings resolve to its own state,
landing dir and MLflow names; one parent run checks them all concurrently, a failing model
alone fails, and nothing of one model reaches another. Real Prefect API, real MLflow (sqlite),
real flights data."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from driftwatch.config import load_models, load_settings, model_names
from driftwatch.errors import ConfigError
from tests.conftest import REFERENCE, base_config


def many_config(tmp_path: Path, entries: Any, **shared: dict[str, Any]) -> Path:
    """The shipped config as shared defaults (state and landing under tmp_path), plus models:."""
    raw = base_config()
    raw["paths"] = {
        "reference": str(REFERENCE),
        "state": str(tmp_path / "state"),
        "landing": str(tmp_path / "landing"),
    }
    raw["orchestration"] = {"retries": 0, "retry_delay_seconds": 0}
    raw["model"]["params"] = {"max_iter": 60}
    del raw["model"]["name"]  # each entry names its model
    raw["report"] = {"html": False}
    raw["drift"]["horizons"] = []
    for name, values in shared.items():
        raw.setdefault(name, {}).update(values)
    raw["models"] = entries
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# -- configuration (fast) ------------------------------------------------------------------
def test_each_model_gets_its_own_paths_and_inherits_the_rest(tmp_path: Path) -> None:
    config = many_config(
        tmp_path,
        [
            {"name": "east"},
            {
                "name": "west",
                "drift": {"false_alarm_rate": 0.05},
                "model": {"categorical": ["origin"]},
            },
        ],
    )
    assert model_names(config) == ["east", "west"]
    models = load_models(config)
    east, west = models["east"], models["west"]
    assert east.model.name == "east" and west.model.name == "west"
    state = (tmp_path / "state").resolve()
    assert east.paths.state == state / "models" / "east"
    assert west.paths.state == state / "models" / "west"
    assert east.paths.landing == (tmp_path / "landing" / "east").resolve()
    assert east.drift.calibration.file == state / "models" / "east" / "calibration.yaml"
    # one MLflow store, each model its own experiment and registered model (model.name)
    assert east.tracking_uri == west.tracking_uri == f"sqlite:///{state}/mlflow.db"
    # overrides are the entry's; the rest is inherited (lists are replaced, not merged)
    assert (east.drift.false_alarm_rate, west.drift.false_alarm_rate) == (0.01, 0.05)
    assert west.model.categorical == ["origin"]
    assert east.model.categorical == ["origin", "dest", "carrier", "weekday"]
    assert east.model.target == west.model.target == "air_time"
    # a mapping by name is the same config
    by_name = many_config(tmp_path, {"east": {}, "west": {"drift": {"false_alarm_rate": 0.05}}})
    assert load_settings(by_name, model="west").drift.false_alarm_rate == 0.05


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"drift": {}}], "models[0].name: required"),
        ([{"name": "a"}, {"name": "a"}], "model 'a' is declared twice"),
        (
            [{"name": "a", "orchestration": {"retries": 1}}],
            "models[0].orchestration: set at the top",
        ),
        ([{"name": "a", "drfit": {}}], "models[0].drfit: unknown section (did you mean 'drift'?)"),
        ([{"name": "a", "model": {"name": "b"}}], "name 'a' and model.name 'b' differ"),
        ([{"name": "a", "drift": {"method": "nope"}}], "(models: a)"),
        (
            [
                {"name": "a"},
                {"name": "b", "paths": {"state": "shared"}},
                {"name": "c", "paths": {"state": "shared"}},
            ],
            "models 'b' and 'c' share paths.state",
        ),
        ([], "models: expected a list"),
    ],
)
def test_bad_models_entries_are_named(tmp_path: Path, entries: Any, message: str) -> None:
    config = many_config(tmp_path, entries)
    with pytest.raises(ConfigError, match=None) as err:
        load_models(config)
    assert message in str(err.value), str(err.value)


def test_a_model_must_be_named_and_exist(tmp_path: Path) -> None:
    config = many_config(tmp_path, [{"name": "east"}, {"name": "west"}])
    with pytest.raises(ConfigError, match=r"declares 2 models .east, west.: name one with --model"):
        load_settings(config)
    with pytest.raises(ConfigError, match=r"--model 'wset': no such model .did you mean 'west'"):
        load_settings(config, model="wset")


def test_single_model_config_is_unchanged(make_config) -> None:
    config = make_config()
    assert model_names(config) is None
    settings = load_settings(config)
    assert load_settings(config, model="flights-air-time") == settings
    assert load_models(config) == {"flights-air-time": settings}
    assert "models" not in settings.paths.state.parts  # the state layout of before
    with pytest.raises(ConfigError, match="this config monitors one model, 'flights-air-time'"):
        load_settings(config, model="other")


def test_a_child_runs_its_steps_inline_with_the_same_retries_and_their_times(
    tmp_path: Path,
) -> None:
    """The children of a multi-model tick run their steps as plain calls (no task run each):
    a step marked retry is tried orchestration.retries + 1 times, another fails at once, and
    every step's time is in the run's closing line."""
    from driftwatch.monitor.plan import Plan
    from driftwatch.orchestration.tasks import LoggedSteps

    config = many_config(tmp_path, [{"name": "east"}], orchestration={"retries": 2})
    steps = LoggedSteps(Plan.load(config, model="east"), {})
    calls: list[str] = []

    def flaky(x: int) -> int:
        calls.append("flaky")
        if len(calls) < 3:
            raise OSError("MLflow is restarting")
        return x + 1

    assert steps("read champion", flaky, 1, retry=True) == 2
    assert calls == ["flaky"] * 3  # two failures, retried, then done
    calls.clear()
    with pytest.raises(OSError, match="restarting"):
        steps("assess batch", flaky, 1)  # not marked retry: its first failure is final
    assert calls == ["flaky"]
    assert steps.timings().startswith("; steps: read champion ")
    assert "assess batch" not in steps.timings()  # only steps that finished


# -- one tick over several models (slow: real Prefect and MLflow) ------------------------------
def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def _runs_named(names: list[str]) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=names))
        )


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api")
def test_models_stay_apart_and_a_failing_one_fails_alone(
    tmp_path: Path, january: pd.DataFrame, july: pd.DataFrame
) -> None:
    from driftwatch.cli import main
    from driftwatch.orchestration.daemon import Daemon
    from driftwatch.orchestration.runner import run_models
    from driftwatch.store.flights import local_month
    from driftwatch.store.landing import ledger_for
    from driftwatch.store.registry import Registry

    # Two models on the same features and target, different data (January / July), and one
    # whose reference file is corrupt.
    july_ref = _write(july.iloc[: len(july) // 2], tmp_path / "refs" / "july.parquet")
    corrupt = tmp_path / "refs" / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not a parquet file PAR1")
    config = many_config(
        tmp_path,
        [
            {"name": "jan"},
            {"name": "jul", "paths": {"reference": str(july_ref)}},
            {"name": "broken", "paths": {"reference": str(corrupt)}},
        ],
    )
    models = load_models(config)
    _write(january.sample(3000, random_state=1), models["jan"].paths.landing / "b1.parquet")
    _write(
        july.iloc[len(july) // 2 :].sample(3000, random_state=1),
        models["jul"].paths.landing / "b1.parquet",
    )
    _write(january.sample(500, random_state=2), models["broken"].paths.landing / "b1.parquet")

    state, runs = run_models(str(config))

    by = {r.model: r for r in runs}
    assert set(by) == {"jan", "jul", "broken"}
    # the broken model fails alone: the others complete, the parent names it and fails
    assert by["jan"].ok and by["jul"].ok, (by["jan"], by["jul"])
    assert not by["broken"].ok and by["broken"].state == "Failed"
    assert "corrupt.parquet" in by["broken"].message
    assert state.is_failed()
    assert state.message.startswith("3 models: 2 completed, 1 failed (broken: ")
    for name in ("jan", "jul"):
        assert by[name].result is not None
        assert by[name].message.startswith("retrained-promoted"), by[name].message

    # the three ran concurrently, each a child run of its own
    children = _runs_named(["monitor jan", "monitor jul", "monitor broken"])
    assert sorted(c.name for c in children) == ["monitor broken", "monitor jan", "monitor jul"]
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # each a child of a task of the parent run
        parents = {str(client.read_task_run(c.parent_task_run_id).flow_run_id) for c in children}
    assert parents == {str(state.state_details.flow_run_id)}
    jan_run, jul_run = (
        next(c for c in children if c.name == f"monitor {n}") for n in ("jan", "jul")
    )
    assert jan_run.start_time < jul_run.end_time and jul_run.start_time < jan_run.end_time
    # each child runs its steps inline (no task run per step), its step times in its log
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    deadline = time.monotonic() + 120  # task runs and logs reach the API's database late
    while True:
        with get_client(sync_client=True) as client:
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[jan_run.id]))
            )
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[jan_run.id]))
            )
        names = [t.name for t in tasks]
        closing = [g.message for g in logs if "; steps: " in g.message]
        if (any(n.startswith("load plan") for n in names) and closing) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(1)
    assert any(n.startswith("load plan") for n in names), names
    assert not any(n.startswith(("load batch", "assess batch", "report")) for n in names), names
    assert closing and closing[0].startswith("outcome: retrained-promoted ("), closing
    assert "; steps: read champion " in closing[0], closing

    # nothing leaks: ledgers, champions, references, history, runs are each model's own
    jan, jul = models["jan"], models["jul"]
    for s in (jan, jul):
        ledger = ledger_for(s.paths.state).records()
        assert [Path(r.path).parent for r in ledger] == [s.paths.landing]
        assert [r.status for r in ledger] == ["done"]
        assert len(list((s.paths.state / "runs").glob("*.json"))) == 1
    reg_jan, reg_jul = Registry(jan), Registry(jul)
    assert reg_jan.experiment_id != reg_jul.experiment_id
    champ_jan, champ_jul = reg_jan.champion(), reg_jul.champion()
    assert champ_jan is not None and champ_jul is not None
    assert (champ_jan.version, champ_jul.version) == ("1", "1")  # each its own registered model
    assert Path(champ_jan.reference).is_relative_to(jan.paths.state)
    assert Path(champ_jul.reference).is_relative_to(jul.paths.state)
    # each champion's training window is its own data: January with January, July with July
    assert set(local_month(pd.read_parquet(champ_jan.reference)).unique()) == {1}
    assert set(local_month(pd.read_parquet(champ_jul.reference)).unique()) == {7}
    assert set((jan.paths.state / "calibration").glob("*")) and set(
        (jul.paths.state / "calibration").glob("*")
    )
    jan_cal = {p.name for p in (jan.paths.state / "calibration").glob("*")}
    jul_cal = {p.name for p in (jul.paths.state / "calibration").glob("*")}
    assert not jan_cal & jul_cal  # thresholds keyed by each model's own reference content
    # the broken model's file waits for its next run; nothing of it reached the others
    broken = ledger_for(models["broken"].paths.state).records()
    assert [r.status for r in broken] == ["failed"]

    # status shows every model (or the one named)
    main(["status", "--config", str(config)])
    main(["status", "--config", str(config), "--model", "jul"])

    # a daemon tick over the same config: every model is logged, the broken one as failed
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    daemon_log = logging.getLogger("driftwatch.orchestration.daemon")
    daemon_log.addHandler(handler)
    daemon_log.setLevel(logging.INFO)
    try:
        daemon = Daemon(config, interval_seconds=3600, max_ticks=None)
        daemon.tick()
    finally:
        daemon_log.removeHandler(handler)
    assert any(line.startswith("tick 1: jan: no new data") for line in lines), lines
    assert any(line.startswith("tick 1: jul: no new data") for line in lines), lines
    assert any(line.startswith("tick 1: broken: run Failed") for line in lines), lines
    assert any("3 models: 2 completed, 1 failed" in line for line in lines), lines
    kept = yaml.safe_load(daemon._last_good_path().read_text())
    assert [m["name"] for m in kept["models"]] == ["jan", "jul", "broken"]


def test_what_models_of_one_process_must_share_or_keep_apart_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leftover DRIFTWATCH_MODEL__NAME would give every entry one name (one experiment, one
    champion alias); MLflow's tracking URI is process-wide, so models checked in one process
    need one; names that give one Prefect artifact key would overwrite each other's artifacts."""
    config = many_config(tmp_path, [{"name": "east"}, {"name": "west"}])
    monkeypatch.setenv("DRIFTWATCH_MODEL__NAME", "flights")
    with pytest.raises(ConfigError, match=r"models: east: model\.name is overridden to 'flights'"):
        load_models(config)
    monkeypatch.delenv("DRIFTWATCH_MODEL__NAME")
    other = tmp_path / "other.db"
    apart = many_config(
        tmp_path,
        [{"name": "east"}, {"name": "west", "mlflow": {"tracking_uri": f"sqlite:///{other}"}}],
    )
    with pytest.raises(ConfigError, match=r"models set different mlflow\.tracking_uri"):
        load_models(apart)
    clash = many_config(tmp_path, [{"name": "jfk_arr"}, {"name": "JFK.arr"}])
    with pytest.raises(ConfigError, match="same Prefect artifact key 'jfk-arr'"):
        load_models(clash)


def test_report_to_one_file_needs_one_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from driftwatch.cli import main

    config = many_config(tmp_path, [{"name": "east"}, {"name": "west"}])
    page = tmp_path / "page.html"
    assert main(["report", "latest", "--html", str(page), "--config", str(config)]) == 2
    assert "report --html FILE: this config declares several models" in capsys.readouterr().err
    assert not page.exists()
