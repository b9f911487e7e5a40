"""The monitor use case: one composition for the backtest and the flows.

The fast tests run ``MonitorCycle`` on in-memory ports; the slow one runs the same batches
through the backtest and through the real Prefect flow (real MLflow, ledger, files) and asks
for the same decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from driftwatch.config import load_settings
from driftwatch.monitor.backtest import Backtester, BatchVerdict, verdict
from driftwatch.monitor.memory import (
    MemoryBatches,
    MemoryHistory,
    MemoryReferences,
    MemoryRegistry,
    MemoryThresholds,
    ResultLog,
)
from driftwatch.monitor.pipeline import MonitorCycle
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.result import MonitorResult
from driftwatch.store.flights import FLIGHTS_TZ
from driftwatch.store.replay import shipped_reference

FAST = {"estimator": "linear", "params": {}, "timezone": FLIGHTS_TZ}
# Daily batches, judged at their own span (a day) on time-block thresholds.
WHOLE = {"horizons": []}


def batches(january: pd.DataFrame, july: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Whole days, as production sends them: two quiet January days, then two July days."""

    def day(frame: pd.DataFrame, number: int) -> pd.DataFrame:
        return frame[frame["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.day == number]

    return [
        ("2013-01-15.parquet", day(january, 15)),
        ("2013-01-16.parquet", day(january, 16)),
        ("2013-07-10.parquet", day(july, 10)),
        ("2013-07-11.parquet", day(july, 11)),
    ]


def decisions(rows: list[BatchVerdict]) -> list[tuple]:
    return [
        (
            b.label,
            b.action,
            tuple(b.triggers),
            b.retrained,
            b.promoted,
            b.champion,
            tuple(b.drifted),
            b.train_rows,
        )
        for b in rows
    ]


def memory_cycle(
    plan: Plan, items: list[tuple[str, pd.DataFrame]]
) -> tuple[MonitorCycle, ResultLog]:
    references = MemoryReferences(plan, shipped_reference(plan.settings))
    log = ResultLog()
    cycle = MonitorCycle(
        plan,
        MemoryBatches(plan, items),
        references,
        MemoryThresholds(plan, references),
        MemoryRegistry(),
        log,
        MemoryHistory(plan),
    )
    return cycle, log


def test_decisions_carry_their_triggers_as_data(
    make_config: Callable[..., Path], january: pd.DataFrame, july: pd.DataFrame
) -> None:
    plan = Plan.load(make_config(model=FAST, drift=WHOLE))
    cycle, log = memory_cycle(plan, batches(january, july))
    results = [cycle.run(run_id=str(i)) for i in range(4)]
    assert results[0].decision.triggers == {"bootstrap"} and results[0].retrain.promoted
    assert results[1].decision.action == "no_drift" and not results[1].decision.triggers
    # July against a January champion: the data moved, the model got worse, and it is old
    # (its data ends months before July; retrain.max_age_days is 28 in the shipped config).
    assert results[2].decision.triggers == {"drift", "quality", "age"}
    assert results[2].outcome.startswith("retrained-")
    from driftwatch.report.text import _trigger  # the demo's and report's trigger column

    assert _trigger(results[2]) == "drift+quality+age"
    # The result is frozen and serialises itself; triggers survive the round trip.
    again = MonitorResult.from_dict(results[2].to_dict())
    assert again.decision.triggers == results[2].decision.triggers
    with pytest.raises(Exception, match="frozen"):
        results[2].rows = 0  # type: ignore[misc]
    assert [r.run_id for r in log.results] == ["0", "1", "2", "3"]


def test_a_retried_retrain_finds_what_the_first_try_made(
    make_config: Callable[..., Path], january: pd.DataFrame, july: pd.DataFrame
) -> None:
    plan = Plan.load(make_config(model=FAST, drift=WHOLE))
    cycle, _ = memory_cycle(plan, batches(january, july)[:1])
    cycle.run(run_id="tick-1")  # bootstrap: version 1
    registry = cycle.registry
    first = cycle.retrain(["2013-01-x.parquet"], "retry test", "tick-2")
    second = cycle.retrain(["2013-01-x.parquet"], "retry test", "tick-2")
    assert first.challenger_version == second.challenger_version
    assert len(registry.versions) == 2


@pytest.mark.slow
def test_backtest_and_flow_make_the_same_decisions(
    prefect_api: None,
    make_config: Callable[..., Path],
    january: pd.DataFrame,
    july: pd.DataFrame,
) -> None:
    from driftwatch.orchestration.monitor_flow import monitor_flow

    config = make_config(model=FAST, drift=WHOLE)
    settings = load_settings(config)
    plan = Plan(settings=settings)
    items = batches(january, july)
    replayed = Backtester(settings).run(items, shipped_reference(settings))

    settings.paths.landing.mkdir(parents=True)
    flowed = []
    for label, frame in items:
        frame.to_parquet(settings.paths.landing / label, index=False)
        state = monitor_flow(config_path=str(config), return_state=True)
        assert state.is_completed(), state.message
        result = MonitorResult.from_dict(state.result())
        flowed.append(verdict(result, label, plan))
    assert decisions(flowed) == decisions(replayed.batches)
    values = [(f.value, b.value) for f, b in zip(flowed, replayed.batches, strict=True)]
    assert all((f is None and b is None) or f == pytest.approx(b, rel=1e-6) for f, b in values), (
        values
    )


def test_steps_that_talk_to_mlflow_retry_with_exponential_backoff(make_config) -> None:
    from driftwatch.monitor.plan import Plan
    from driftwatch.orchestration.tasks import PrefectSteps

    plan = Plan.load(make_config(orchestration={"retries": 3, "retry_delay_seconds": 2}))
    options = PrefectSteps(plan, {}).retry_options
    assert options["retries"] == 3 and options["retry_delay_seconds"](3) == [2, 4, 8]
    none = PrefectSteps(Plan.load(make_config()), {}).retry_options  # conftest: retries 0
    assert none["retries"] == 0


def test_the_row_profile_cache_lives_under_the_state_dir_and_cannot_run_code(
    make_config: Callable[..., Path],
) -> None:
    from driftwatch.store.references import ReferenceFiles

    plan = Plan.load(make_config(drift={"calibration": {"quiet": "rows"}}))
    files = ReferenceFiles(plan)
    ref = files.locate(None)
    first = files.profile(ref)
    (cached,) = (plan.settings.paths.state / "profiles").glob("profile-*.npz")
    again = ReferenceFiles(plan).profile(ref)  # a new process: read back from the file
    assert again.n_rows == first.n_rows and list(again.columns) == list(first.columns)
    # A pickle planted in its place is not loaded (np.load with allow_pickle=False): it is
    # refitted and overwritten.
    import pickle

    cached.write_bytes(pickle.dumps({"evil": True}))
    assert ReferenceFiles(plan).profile(ref).n_rows == first.n_rows
    assert cached.read_bytes()[:2] == b"PK"  # an .npz (zip) again
