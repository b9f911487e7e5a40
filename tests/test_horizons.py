"""Drift that knows time, through the monitor use case: hourly ticks judged at several
horizons on time-block thresholds, and "nothing to judge" as its own verdict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from driftwatch.cli import main
from driftwatch.monitor.plan import Plan
from driftwatch.store.batches import split_batches
from driftwatch.store.flights import FLIGHTS_TZ
from tests.test_pipeline import memory_cycle

FAST = {"estimator": "linear", "params": {}, "timezone": FLIGHTS_TZ}


def day(flights: pd.DataFrame, month: int, number: int) -> pd.DataFrame:
    local = flights["time_hour"].dt.tz_convert(FLIGHTS_TZ)
    return flights[(local.dt.month == month) & (local.dt.day == number)]


def test_hourly_ticks_are_judged_at_each_horizon_and_an_incident_alarms(
    make_config: Callable[..., Path], flights: pd.DataFrame
) -> None:
    config = make_config(model=FAST, drift={"horizons": ["1h", "1D"]})
    plan = Plan.load(config).model_copy(update={"policy": "never"})
    quiet = day(flights, 2, 5)
    broken = day(flights, 2, 6).assign(temp=lambda f: (f["temp"] - 32) / 1.8)  # °C, not °F
    hours = [*split_batches(quiet, "time_hour", "h", FLIGHTS_TZ)]
    hours += [(f"c-{k}", b) for k, b in split_batches(broken, "time_hour", "h", FLIGHTS_TZ)]
    cycle, _ = memory_cycle(plan, hours)
    results = [cycle.run(run_id=str(i)) for i in range(len(hours))]
    judged = [r for r in results[1:] if r.rows]
    assert all([h.span for h in r.horizons] == ["1h", "1d"] for r in judged)
    # The tick's rate is split over the two horizons.
    assert judged[0].horizons[0].alpha == pytest.approx(0.005)
    n_quiet = len(split_batches(quiet, "time_hour", "h", FLIGHTS_TZ))
    quiet_alarms = [r for r in judged[: n_quiet - 1] if "drift" in r.decision.triggers]
    broken_hours = [r for r in judged[n_quiet - 1 :] if r.horizons[0].rows_current >= 20]
    caught = [r for r in broken_hours if r.horizons[0].dataset_drift]
    assert len(quiet_alarms) <= 1
    assert len(caught) >= 0.9 * len(broken_hours)
    assert all("temp" in r.horizons[0].drifted_columns for r in caught)
    # The day horizon is not judged on a partial first day; later it sees the whole day.
    assert "not judged at 1d" in judged[0].horizons[1].description
    assert judged[-1].horizons[1].rows_current > 500
    # The report shows each horizon's verdict.
    from driftwatch.report.text import report_lines

    lines = report_lines(caught[0])
    assert any(line.startswith("horizon 1h: DRIFT (temp") for line in lines)
    assert any(line.startswith("horizon 1d: ") for line in lines)


def test_an_empty_batch_is_no_verdict_with_its_own_exit_code(
    make_config: Callable[..., Path],
    january: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "empty.csv"
    january.iloc[:0].to_csv(empty, index=False)
    ref = tmp_path / "ref.parquet"
    january.to_parquet(ref)
    config = str(make_config())
    args = ["check", "--config", config, "--reference", str(ref), "--current", str(empty)]
    assert main([*args, "--fail-on-drift"]) == 4
    assert "NO VERDICT: nothing to judge" in capsys.readouterr().out
    assert main([*args, "--json"]) == 0
    assert '"verdict": "no_verdict"' in capsys.readouterr().out
