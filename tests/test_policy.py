"""The retrain and promotion rules: drift, quality, the champion's age, schedules, and what a
lost challenge does to the champion's baseline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from driftwatch.monitor.plan import Plan
from driftwatch.monitor.policy import decide, promotion_decision
from tests.test_history import day
from tests.test_pipeline import FAST, WHOLE, memory_cycle


def test_the_champions_age_retrains_past_max_age_days() -> None:
    young = decide([], None, None, True, 100, "monitor", age=3.0, max_age=7)
    assert young.action == "no_drift"
    old = decide([], None, None, True, 100, "monitor", age=7.5, max_age=7)
    assert old.action == "retrain" and old.triggers == {"age"}
    assert "ends 7.5 days before this batch (retrain.max_age_days = 7)" in old.reason
    assert decide([], None, None, True, 100, "monitor", age=30.0).action == "no_drift"  # unset


def test_a_schedule_retrains_by_age_only() -> None:
    assert decide([], None, None, True, 100, "schedule", age=2, max_age=7).action == "no_retrain"
    due = decide([], None, None, True, 100, "schedule", age=7, max_age=7)
    assert due.action == "retrain" and due.triggers == {"age"}


def test_promotion_always_and_a_tolerance() -> None:
    kept = promotion_decision("rmse", {"rmse": 10.3}, {"rmse": 10.0}, 0.01)
    assert not kept.promote
    assert promotion_decision("rmse", {"rmse": 10.3}, {"rmse": 10.0}, 0.01, always=True).promote
    within = promotion_decision("rmse", {"rmse": 10.3}, {"rmse": 10.0}, -0.05)
    assert within.promote and "is within 5% of champion" in within.reason
    worse = promotion_decision("rmse", {"rmse": 10.6}, {"rmse": 10.0}, -0.05)
    assert not worse.promote and "more than 5% worse" in worse.reason


def test_a_champion_that_holds_its_own_is_rebaselined_and_counts_as_fresh(
    make_config: Callable[..., Path], january: pd.DataFrame, july: pd.DataFrame
) -> None:
    # A margin no challenger meets: every challenge is lost.
    plan = Plan.load(
        make_config(model=FAST, drift=WHOLE, retrain={"promotion_margin": 0.9, "max_age_days": 5})
    )
    items = [("jan", day(january, 15)), ("jul", day(july, 10))]
    cycle, log = memory_cycle(plan, items)
    cycle.run(run_id="jan")
    before = cycle.registry.champion()
    result = cycle.run(run_id="jul")
    assert result.retrain is not None and not result.retrain.promoted
    after = cycle.registry.champion()
    lost = log.challenges[-1]
    assert after.version == before.version
    assert after.baseline == lost.champion_scores != before.baseline
    assert after.validated_until == str(lost.holdout["time_hour"].max())


def test_the_quality_lookback_counts_each_row_once(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    """A context file is in the batch (judged again) and in history: its rows count once."""
    from driftwatch.monitor.pipeline import labels_to_judge
    from driftwatch.monitor.ports import FROM_FILE, PREDICTED, SERVED_BY

    spec = Plan.load(make_config()).settings.model
    a, b = day(january, 3), day(january, 4)
    batch = pd.concat([a, b], ignore_index=True)  # a: context file, b: the new one
    preds = pd.Series(150.0, index=batch.index)
    history = pd.concat(
        [
            a.assign(**{FROM_FILE: "a", SERVED_BY: "1", PREDICTED: 150.0}),
            day(january, 2).assign(**{FROM_FILE: "z", SERVED_BY: "1", PREDICTED: 150.0}),
        ],
        ignore_index=True,
    )
    y, _ = labels_to_judge(batch, preds, history, "1", spec, ["a", "b"])
    labelled = [f["air_time"].notna().sum() for f in (a, b, day(january, 2))]
    assert len(y) == sum(labelled)  # a once, b, and z from history
