"""The retrain and promotion rules: drift, quality, the champion's age, schedules, and what a
lost challenge does to the champion's baseline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftwatch.model.quality import QualityResult
from driftwatch.monitor.baseline import served_baseline
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.policy import decide, promotion_decision
from driftwatch.monitor.ports import FROM_FILE, PREDICTED, SERVED_BY
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
    # A better challenger under a tolerance is said to beat the champion, not to be "within" it.
    beats = promotion_decision("rmse", {"rmse": 18.76}, {"rmse": 21.45}, -0.05)
    assert beats.promote and beats.reason == "challenger rmse 18.76 beats champion 21.45"


def test_a_quality_reason_says_better_when_the_metric_improved() -> None:
    from driftwatch.config import QualitySettings
    from driftwatch.model.quality import assess

    better = assess({"f1": 0.96}, {"f1": 0.92}, 100, "f1", QualitySettings(metric="f1"))
    assert "(4.3% better; within tolerance" in better.reason and not better.degraded
    worse = assess({"rmse": 13.0}, {"rmse": 10.0}, 100, "rmse", QualitySettings())
    assert "(+30.0% worse; degraded" in worse.reason


def test_a_champion_that_holds_its_own_is_rebaselined_and_counts_as_fresh(
    make_config: Callable[..., Path], january: pd.DataFrame, july: pd.DataFrame
) -> None:
    # A margin no challenger meets: every challenge is lost.
    plan = Plan.load(
        make_config(
            model=FAST,
            drift=WHOLE,
            retrain={"promotion_margin": 0.9, "max_age_days": 5, "min_age_days": None},
        )
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


def _degraded() -> QualityResult:
    return QualityResult(
        metric="rmse", value=13.0, baseline=10.0, labelled_rows=500, degraded=True,
        reason="rmse 13 vs baseline 10 (+30.0% worse; degraded, limit 1)", metrics={"rmse": 13.0},
    )  # fmt: skip


def test_drift_and_quality_wait_for_min_age_days() -> None:
    """A champion younger than retrain.min_age_days is not challenged on drift or quality: the
    findings are reported and held; the age trigger is never held."""
    held = decide([], _degraded(), None, True, 100, "monitor", age=3.0, max_age=28, min_age=12)
    assert held.action == "no_retrain" and held.triggers == {"quality"}
    assert "held: the champion's data ends 3.0 days before this batch" in held.reason
    due = decide([], _degraded(), None, True, 100, "monitor", age=12.5, max_age=28, min_age=12)
    assert due.action == "retrain" and due.triggers == {"quality"}
    assert decide([], _degraded(), None, True, 100, "monitor", age=3.0).action == "retrain"
    old = decide([], None, None, True, 100, "monitor", age=30, max_age=28, min_age=12)
    assert old.action == "retrain" and old.triggers == {"age"}


def test_min_age_days_above_max_age_days_is_refused(make_config: Callable[..., Path]) -> None:
    from driftwatch.errors import ConfigError

    with pytest.raises(ConfigError, match="min_age_days"):
        Plan.load(make_config(retrain={"min_age_days": 30, "max_age_days": 28}))


def _served(
    hours: list[int], champion: str = "2", file_of: Callable[[int], str] = str
) -> pd.DataFrame:
    start = pd.Timestamp("2013-03-01", tz="UTC")
    return pd.DataFrame(
        {
            "time_hour": [start + pd.Timedelta(hours=h) for h in hours],
            "air_time": [100.0 + (h % 2) * 20 for h in hours],  # errors of 0 and 20 alternate
            FROM_FILE: [file_of(h) for h in hours],
            SERVED_BY: champion,
            PREDICTED: 100.0,
        }
    )


def test_the_served_baseline_is_the_first_lookback_in_service(
    make_config: Callable[..., Path],
) -> None:
    """quality.baseline: served: the champion's realised metric over its first lookback after
    ``since`` (its training data's end, or a lost challenge's holdout), once that span is over."""
    s = Plan.load(make_config(quality={"lookback_hours": 24, "min_labelled_rows": 10})).settings
    t0 = pd.Timestamp("2013-03-01", tz="UTC")
    history = pd.concat([_served(list(range(48))), _served([50, 51], champion="1")])
    measuring = served_baseline(history, "2", None, t0 + pd.Timedelta(hours=20), s.model, s.quality)
    assert not measuring.scores and "measuring its first 24 h in service" in measuring.note
    done = served_baseline(history, "2", None, t0 + pd.Timedelta(hours=30), s.model, s.quality)
    assert done.rows == 25 and done.scores["rmse"] == pytest.approx((12 / 25 * 400) ** 0.5)
    # After a lost challenge whose holdout ended at hour 40, the span starts again after it.
    since = t0 + pd.Timedelta(hours=40)
    again = served_baseline(history, "2", since, t0 + pd.Timedelta(hours=47), s.model, s.quality)
    assert not again.scores and "measuring" in again.note
    other = served_baseline(history, "3", None, t0 + pd.Timedelta(hours=60), s.model, s.quality)
    assert not other.scores and "none served yet" in other.note


def test_without_a_lookback_the_served_baseline_is_the_first_batch(
    make_config: Callable[..., Path],
) -> None:
    s = Plan.load(make_config(quality={"min_labelled_rows": 10})).settings
    history = _served(list(range(48)), file_of=lambda h: f"day{h // 24}")
    newest = pd.Timestamp("2013-03-03", tz="UTC")
    first = served_baseline(history, "2", None, newest, s.model, s.quality)
    assert first.rows == 24 and first.end == str(pd.Timestamp("2013-03-01 23:00", tz="UTC"))


def test_a_served_baseline_gives_no_verdict_until_measured(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    """Through the use case: the first batch a champion serves is its baseline (no verdict);
    the next one is judged against the champion's realised error on it."""
    plan = Plan.load(make_config(model=FAST, drift=WHOLE, quality={"baseline": "served"}))
    items = [(f"jan{d}", day(january, d)) for d in (15, 16, 17)]
    cycle, _ = memory_cycle(plan, items)
    cycle.run(run_id="jan15")  # bootstrap
    first = cycle.run(run_id="jan16")
    assert first.quality is not None and first.quality.degraded is None
    assert "measuring its first batch in service" in first.quality.reason
    second = cycle.run(run_id="jan17")
    assert second.quality is not None and second.quality.degraded is not None
    assert second.quality.baseline == pytest.approx(first.quality.value)
    assert "baseline: its first batch in service" in second.quality.reason


def test_a_batch_with_nothing_judged_is_no_verdict_not_no_drift() -> None:
    from driftwatch.engine.drift import DriftDetector

    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=500), "b": rng.choice(list("xy"), 500)})
    detector = DriftDetector(numerical=["a"], categorical=["b"], min_rows=30).fit(ref)
    few = detector.check(ref.iloc[:10])
    assert few.verdict == "no_verdict" and "no column could be judged" in few.description
    assert few.to_dict()["dataset_drift"] is None  # nothing judged is not "no drift"
    decision = decide([few], None, None, True, 10, "monitor", age=1.0)
    assert decision.action == "no_verdict" and decision.reason.startswith("no verdict")
    # One judged horizon is enough for a verdict.
    judged = detector.check(ref.iloc[:200])
    assert decide([few, judged], None, None, True, 200, "monitor").action == "no_drift"


def test_a_batch_beyond_the_champions_training_range_retrains_on_support() -> None:
    """retrain.support_columns: more than support_share of the rows past the 1st-99th
    percentile of the champion's training window retrains ("support"), waits for min_age like
    drift and quality, and is reported only when retrain.triggers leaves it out."""
    out = {"temp": 0.034, "dewp": 0.004}
    hot = decide([], None, None, True, 100, "monitor", age=7.0, outside=out, support_share=0.01)
    assert hot.action == "retrain" and hot.triggers == {"support"}
    assert "leaves the champion's training range: temp 3.4% of rows" in hot.reason
    assert "dewp" not in hot.reason and "(> retrain.support_share = 1.0%)" in hot.reason
    inside = decide([], None, None, True, 100, "monitor", outside={"temp": 0.004})
    assert inside.action == "no_drift" and not inside.triggers
    held = decide([], None, None, True, 100, "monitor", age=3.0, min_age=12, outside=out)
    assert held.action == "no_retrain" and held.triggers == {"support"}
    only = decide([], None, None, True, 100, "monitor", outside=out, retrain_on=("quality",))
    assert only.action == "no_retrain" and "reported only: support" in only.reason


def test_support_columns_must_be_numerical_features(make_config: Callable[..., Path]) -> None:
    from driftwatch.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"retrain\.support_columns: 'tmp' is not a model feature"
    ):
        Plan.load(make_config(retrain={"support_columns": ["tmp"]}))
    with pytest.raises(ConfigError, match=r"retrain\.support_columns: 'origin' is categorical"):
        Plan.load(make_config(retrain={"support_columns": ["origin"]}))


def test_july_against_a_january_champion_retrains_on_support_alone(
    make_config: Callable[..., Path], january: pd.DataFrame, july: pd.DataFrame
) -> None:
    """Through the monitor: the support is measured against the champion's training window (its
    reference); a January day is inside it, a July day's temperatures are not."""
    plan = Plan.load(
        make_config(
            model=FAST,
            drift=WHOLE,
            retrain={
                "support_columns": ["temp"],
                "triggers": ["support"],
                "min_age_days": None,
                "max_age_days": None,
            },
        )
    )
    items = [("jan-15", day(january, 15)), ("jan-16", day(january, 16)), ("jul", day(july, 10))]
    cycle, _ = memory_cycle(plan, items)
    assert cycle.run(run_id="a").decision.triggers == {"bootstrap"}
    quiet = cycle.run(run_id="b").decision
    assert "support" not in quiet.triggers and quiet.action in ("no_drift", "no_retrain")
    hot = cycle.run(run_id="c")
    # The shares are in the result and MLflow's metrics every tick, not only in a reason.
    from driftwatch.monitor.pipeline import monitor_metrics
    from driftwatch.report.text import markdown, report_lines

    assert hot.support == {"temp": 1.0}
    assert monitor_metrics(hot)["support_outside.temp"] == 1.0
    span = f"the batch ({hot.rows:,} rows)"  # retrain.support_hours null: the batch alone
    assert hot.support_span == span and hot.support_hours is None
    line = f"support: rows of {span} beyond the champion's training range: temp 100.0%"
    assert line in report_lines(hot) and f"- {line}" in markdown(hot)
    assert hot.decision.action == "retrain" and "support" in hot.decision.triggers
    assert f"{span} leaves the champion's training range: temp 100.0%" in hot.decision.reason
    assert hot.retrain is not None


def test_support_hours_judges_the_newest_hours_of_history_with_the_batch(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    """retrain.support_hours: the shares are measured on every row of the newest N hours, the
    history rows before the batch included (features are in history whatever the labels),
    history rows of files judged again in the batch counted once, rows older than the span
    left out; with support_hours null, on the batch alone."""
    from driftwatch.monitor.support_span import champion_range, outside_support, support_span

    settings = Plan.load(
        make_config(model=FAST, retrain={"support_columns": ["temp"], "support_hours": 24})
    ).settings
    t0 = pd.Timestamp("2013-07-10 12:00", tz="UTC")
    cool = pd.DataFrame({"temp": np.linspace(20.0, 40.0, 500)})
    support = champion_range("sha-of-a-cool-window", cool, ["temp"])
    # Learnt once per champion (its reference's content hash): the same object at every tick.
    assert champion_range("sha-of-a-cool-window", cool, ["temp"]) is support
    hot, mild = 95.0, 30.0
    history = pd.DataFrame(
        {
            "temp": [hot] * 60 + [hot] * 40 + [hot] * 50,
            "time_hour": [t0 - pd.Timedelta(hours=3)] * 60  # in the span: counted
            + [t0 - pd.Timedelta(hours=2)] * 40  # from a file the batch judges again
            + [t0 - pd.Timedelta(hours=30)] * 50,  # older than 24 h: out of the span
            FROM_FILE: ["a"] * 60 + ["context"] * 40 + ["a"] * 50,
        }
    )
    batch = pd.DataFrame({"temp": [mild] * 40, "time_hour": [t0] * 40})
    span = support_span(settings, batch, history, ["context", "new"])
    assert len(span.frame) == 100 and span.hours == 24
    assert span.label == "the newest 24 h (100 rows)"
    assert outside_support(settings, support, span) == {"temp": 0.6}
    alone = support_span(settings.model_copy(deep=True), batch, None)
    assert alone.label == "the newest 24 h (40 rows)"
    settings.retrain.support_hours = None
    batch_only = support_span(settings, batch, history)
    assert batch_only.label == "the batch (40 rows)"
    assert outside_support(settings, support, batch_only) == {"temp": 0.0}
    # A span shorter than a block (drift.calibration.min_block_rows) is not judged.
    few = support_span(settings, batch.iloc[:5], history)
    assert outside_support(settings, support, few) is None


def test_support_span_through_the_monitor_and_the_champions_range_fitted_once(
    make_config: Callable[..., Path], january: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Daily ticks with support_hours 168: the result, its log line, the MLflow metrics and the
    decision name the span (batch and history rows); a tick of a handful of rows is judged on
    the span it ends; the champion's percentiles are learnt once per champion, not per tick."""
    from driftwatch.model.support import Support
    from driftwatch.monitor import support_span as module
    from driftwatch.monitor.pipeline import monitor_metrics
    from driftwatch.report.text import report_lines

    fitted: list[list[str]] = []
    fit = Support.fit

    def counted(self: Support, X: pd.DataFrame) -> Support:
        fitted.append(list(X.columns))
        return fit(self, X)

    monkeypatch.setattr(Support, "fit", counted)
    module._RANGES.clear()
    plan = Plan.load(
        make_config(
            model=FAST,
            drift=WHOLE,
            retrain={
                "support_columns": ["temp"],
                "support_hours": 168,
                "triggers": ["support"],
                "min_age_days": None,
                "max_age_days": None,
            },
        )
    )
    d15, d16, d17 = day(january, 15), day(january, 16), day(january, 17)
    few = d17.sort_values("time_hour").iloc[:5]  # an hourly tick's worth
    assert len(few) < plan.settings.drift.calibration.min_block_rows
    items = [("jan-15", d15), ("jan-16", d16), ("jan-17", few)]
    cycle, _ = memory_cycle(plan, items)
    assert cycle.run(run_id="a").decision.triggers == {"bootstrap"}
    second = cycle.run(run_id="b")
    n = len(d15) + len(d16)  # the bootstrap's batch is history now
    assert second.support_span == f"the newest 168 h ({n:,} rows)"
    assert second.support_rows == n and second.support_hours == 168
    assert "temp" in second.support and "support" not in second.decision.triggers
    line = f"support: rows of the newest 168 h ({n:,} rows) beyond the champion's training range"
    assert any(x.startswith(line) for x in report_lines(second))
    metrics = monitor_metrics(second)
    assert metrics["support_rows"] == n and metrics["support_hours"] == 168
    third = cycle.run(run_id="c")
    assert third.rows == 5 and third.support_rows == n + 5 and "temp" in third.support
    # One champion, two ticks judged: its range was fitted once (the estimator's own support
    # check fits other columns: counted apart).
    assert fitted.count(["temp"]) == 1


def test_support_hours_needs_a_timestamp(make_config: Callable[..., Path]) -> None:
    from driftwatch.errors import ConfigError

    with pytest.raises(ConfigError, match=r"retrain\.support_hours needs model\.timestamp"):
        Plan.load(
            make_config(
                model={"timestamp": None},
                retrain={"support_columns": ["temp"], "support_hours": 168},
            )
        )
