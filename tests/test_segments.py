"""Segments (issue 19): a model names segment columns (``model.segments: [origin]``) and drift
is judged per segment as well as overall, the false-alarm rate split over all of them.

Real flights: the reference is every flight of the odd-numbered days of January and February
2013, the quiet batches are whole even-numbered days (time-contiguous blocks, as production
sends them), segmented by `origin` (EWR, JFK, LGA)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftwatch.errors import ConfigError
from driftwatch.monitor.pipeline import BlockJudging, assess
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Batch
from driftwatch.store.flights import FLIGHTS_TZ
from tests.test_pipeline import memory_cycle

RATE = 0.05  # large enough that a held rate is visible on 29 quiet days


@pytest.fixture(scope="module")
def halves(flights: pd.DataFrame) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    local = flights["time_hour"].dt.tz_convert(FLIGHTS_TZ)
    months = local.dt.month.isin([1, 2]).to_numpy()
    odd = (local.dt.day % 2 == 1).to_numpy()
    reference = flights[months & odd].reset_index(drop=True)
    even = flights[months & ~odd]
    days = [g.reset_index(drop=True) for _, g in even.groupby(local[even.index].dt.date)]
    return reference, days


@pytest.fixture(scope="module")
def judged(
    tmp_path_factory: pytest.TempPathFactory, halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> tuple[Plan, BlockJudging]:
    """The plan and the time-block thresholds (overall and per origin) of the odd days."""
    import yaml

    from tests.conftest import base_config

    reference, days = halves
    work = tmp_path_factory.mktemp("segments")
    reference.to_parquet(work / "reference.parquet", index=False)
    raw = base_config()
    raw["paths"] = {"reference": str(work / "reference.parquet"), "state": str(work / "state")}
    raw["model"].update({"segments": ["origin"], "estimator": "linear", "params": {}})
    raw["drift"].update({"horizons": [], "false_alarm_rate": RATE})
    (work / "config.yaml").write_text(yaml.safe_dump(raw))
    plan = Plan.load(work / "config.yaml").model_copy(update={"policy": "never"})
    cycle, _ = memory_cycle(plan, [])
    blocks = cycle.block_judging(Batch(days[0], ["first"], False), cycle.references.locate(None))
    return plan, blocks


def blocks_ref(plan: Plan) -> Any:
    cycle, _ = memory_cycle(plan, [])
    return cycle.references.locate(None)


def verdicts(plan: Plan, blocks: BlockJudging, frame: pd.DataFrame) -> Any:
    return assess(
        plan,
        Batch(frame, ["batch"], False, new_rows=len(frame)),
        None,
        None,
        None,
        None,
        None,
        blocks,
    )


def test_the_rate_holds_across_segments_on_quiet_days(
    judged: tuple[Plan, BlockJudging], halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    plan, blocks = judged
    _, days = halves
    assert [s.name for s in blocks.segments] == ["origin=EWR", "origin=JFK", "origin=LGA"]
    alarms = 0
    for day in days:
        found = verdicts(plan, blocks, day)
        # the whole batch, then each origin; each verdict at its share of the rate
        assert [h.segment for h in found.horizons] == [None, *(s.name for s in blocks.segments)]
        assert all(h.alpha == pytest.approx(RATE / 4) for h in found.horizons)
        alarms += any(h.dataset_drift for h in found.horizons)
    # One tick alarms (overall or in any segment) with probability <= RATE: on 29 quiet days,
    # 5 or more alarms would happen by chance with probability ~1.6% if the rate held exactly.
    assert len(days) == 29
    assert alarms <= 4, alarms


def test_a_segment_shift_alarms_in_that_segment_and_is_named(
    judged: tuple[Plan, BlockJudging], halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    from driftwatch.alerts.events import DRIFT, run_events
    from driftwatch.monitor.pipeline import monitor_result
    from driftwatch.report.text import report_lines

    plan, blocks = judged
    _, days = halves
    day = days[10].copy()
    # 40% of EWR's flights trade their carrier with as many JFK and LGA flights (the operators
    # moved flights between airports): the day's carrier mix as a whole is exactly the same.
    rng = np.random.default_rng(0)
    ewr = np.flatnonzero((day["origin"] == "EWR").to_numpy())
    rest = np.flatnonzero((day["origin"] != "EWR").to_numpy())
    a = rng.choice(ewr, int(0.4 * len(ewr)), replace=False)
    b = rng.choice(rest, len(a), replace=False)
    carriers = day["carrier"].to_numpy().copy()
    carriers[a], carriers[b] = carriers[b], carriers[a]
    day["carrier"] = carriers
    assert day["carrier"].value_counts().equals(days[10]["carrier"].value_counts())

    found = verdicts(plan, blocks, day)
    by = {h.segment: h for h in found.horizons}
    assert not by[None].dataset_drift  # the whole day looks as usual
    assert by["origin=EWR"].dataset_drift and by["origin=EWR"].drifted_columns == ["carrier"]
    assert by["origin=EWR"].description.startswith("segment origin=EWR: ")
    # with a champion, a segment's alarm is a drift trigger like any (retraining is per model)
    from driftwatch.monitor.policy import decide

    decision = decide(list(found.horizons), None, None, True, len(day), "monitor", None, None, None)
    assert decision.triggers == {"drift"}, decision
    assert found.drift is not None and found.drift.segment is not None
    # the report and the event name the segment
    ref = blocks_ref(plan)
    result = monitor_result(
        plan, Batch(day, ["batch"], False, new_rows=len(day)), found, None, ref, 0.0, "run-1"
    )
    lines = report_lines(result)
    assert any(line.startswith("horizon 1d segment origin=EWR: DRIFT (carrier)") for line in lines)
    (drift_event,) = [
        e for e in run_events(result, plan.name, plan.settings.quality) if e.event == DRIFT
    ]
    assert drift_event.payload["segment"] == found.drift.segment
    assert "origin=EWR" in drift_event.payload["segments_alarmed"]
    assert "in segment origin=" in drift_event.summary


def test_segments_with_too_few_rows_are_not_judged(
    judged: tuple[Plan, BlockJudging], halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    plan, blocks = judged
    _, days = halves
    day = days[5]
    few = pd.concat([day[day["origin"] != "LGA"], day[day["origin"] == "LGA"].head(5)])
    by = {h.segment: h for h in verdicts(plan, blocks, few).horizons}
    assert by["origin=LGA"].verdict == "no_verdict"
    assert "not judged" in by["origin=LGA"].description
    assert by[None].verdict != "no_verdict"


@pytest.mark.parametrize(
    ("model", "drift", "message"),
    [
        ({"segments": ["orgin"]}, {}, "model.segments: 'orgin' is not a categorical feature"),
        ({"segments": ["distance"]}, {}, "'distance' is not a categorical feature"),
        ({"segments": ["origin"]}, {"method": "bh"}, "segments are judged on time-block"),
    ],
)
def test_bad_segments_are_named(
    make_config: Callable[..., Path], model: dict, drift: dict, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        Plan.load(make_config(model=model, drift=drift))
    assert message in str(err.value)


def test_calibrate_writes_the_entries_the_segmented_monitor_looks_up(
    tmp_path: Path, halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    """`driftwatch calibrate` on a segmented model writes the whole batch's and every
    segment's thresholds at the rate share the monitor asks for, so the file is used."""
    import yaml

    from driftwatch.cli import main
    from driftwatch.files import file_hash
    from driftwatch.store.calibrations import read_blocks
    from tests.conftest import base_config

    reference, _ = halves
    reference.to_parquet(tmp_path / "reference.parquet", index=False)
    raw = base_config()
    raw["paths"] = {"reference": str(tmp_path / "reference.parquet"), "state": str(tmp_path / "s")}
    raw["model"].update({"segments": ["origin"], "estimator": "linear", "params": {}})
    raw["drift"].update({"horizons": ["1D"]})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    config = str(tmp_path / "config.yaml")
    assert main(["calibrate", "--config", config, "--reference", raw["paths"]["reference"]]) == 0
    plan = Plan.load(config)
    segments = plan.segments(reference)
    rate = plan.segment_rate(len(segments))
    sha, day = file_hash(tmp_path / "reference.parquet"), pd.Timedelta("1D")
    wanted = {plan.block_key(sha, day, rate)} | {
        plan.block_key(sha, day, rate, seg) for seg in segments
    }
    assert len(segments) == 3
    assert wanted <= set(read_blocks(plan.settings.drift.calibration.file))
