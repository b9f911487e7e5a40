"""Quality per segment (issue 19, part 2): each segment's realised quality against its own
baseline (the champion's score on the segment's rows of its holdout), degraded only beyond the
tolerance AND significantly at the segment's share of the rate; the estimate per segment.

Real flights, as tests/test_segments.py: the reference is every flight of the odd-numbered days
of January and February 2013, the batches whole even-numbered days (time-contiguous, as
production sends them), segmented by ``origin``. The champion is trained by the monitor itself
(a bootstrap run of the in-memory cycle), so its segment baselines come the way production's do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftwatch.model.significance import worse_p_value
from driftwatch.monitor.pipeline import BlockJudging, Findings, assess
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Batch, Champion
from driftwatch.store.flights import FLIGHTS_TZ
from tests.test_pipeline import memory_cycle

RATE = 0.05


@pytest.fixture(scope="module")
def halves(flights: pd.DataFrame) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The odd days of January-February (the reference) and each even day (the batches), as
    tests/test_segments.py cuts them."""
    local = flights["time_hour"].dt.tz_convert(FLIGHTS_TZ)
    months = local.dt.month.isin([1, 2]).to_numpy()
    odd = (local.dt.day % 2 == 1).to_numpy()
    reference = flights[months & odd].reset_index(drop=True)
    even = flights[months & ~odd]
    days = [g.reset_index(drop=True) for _, g in even.groupby(local[even.index].dt.date)]
    return reference, days


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> tuple[Plan, BlockJudging, Champion, Any, Any]:
    """A segmented plan (holdout baselines, estimates on), its block judging, and the champion
    a bootstrap run of the monitor trained: (plan, blocks, champion, model, estimator)."""
    import yaml

    from tests.conftest import base_config

    reference, days = halves
    work = tmp_path_factory.mktemp("segment-quality")
    reference.to_parquet(work / "reference.parquet", index=False)
    raw = base_config()
    raw["paths"] = {"reference": str(work / "reference.parquet"), "state": str(work / "state")}
    raw["model"].update({"segments": ["origin"], "estimator": "linear", "params": {}})
    raw["drift"].update({"horizons": [], "false_alarm_rate": RATE})
    raw["quality"].update({"baseline": "holdout", "lookback_hours": None})
    raw["report"] = {"html": False}
    (work / "config.yaml").write_text(yaml.safe_dump(raw))
    plan = Plan.load(work / "config.yaml")
    # The bootstrap's batch is the reference's newest day: its window is then every odd day
    # (the reference tops up history's older end), its holdout the newest 20% of them.
    local = reference["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.date
    newest = reference[(local == local.max()).to_numpy()].reset_index(drop=True)
    cycle, _ = memory_cycle(plan, [("newest-reference-day", newest)])
    first = cycle.run(run_id="bootstrap")
    assert first.retrain is not None and first.retrain.promoted
    champion = cycle.registry.champion()
    assert champion is not None
    model = cycle.registry.load_model(champion.version)
    estimator = cycle.registry.load_estimator(champion.version)
    blocks = cycle.block_judging(Batch(days[0], ["first"], False), cycle.references.locate(None))
    return plan, blocks, champion, model, estimator


def judge(served: tuple, frame: pd.DataFrame, champion: Champion | None = None) -> Findings:
    plan, blocks, champ, model, estimator = served
    batch = Batch(frame, ["batch"], False, new_rows=len(frame))
    return assess(
        plan,
        batch,
        champion or champ,
        model,
        None,
        None,
        None,
        blocks,
        estimator=estimator,
    )


def on(days: list[pd.DataFrame], date: str) -> pd.DataFrame:
    for d in days:
        local = d["time_hour"].dt.tz_convert(FLIGHTS_TZ)
        if str(local.dt.date.iloc[0]) == date:
            return d.copy()
    raise KeyError(date)


def test_segment_baselines_are_stored_with_the_champion(served: tuple) -> None:
    _, _, champion, _, _ = served
    assert sorted(champion.segments) == ["origin=EWR", "origin=JFK", "origin=LGA"]
    for scores in champion.segments.values():
        assert set(scores) == {"rmse", "mae"}
    # a segment's error is its own: not the whole holdout's
    rmse = {s: v["rmse"] for s, v in champion.segments.items()}
    assert len({round(v, 6) for v in rmse.values()}) == 3
    assert rmse != {s: champion.baseline["rmse"] for s in rmse}


def test_one_degraded_segment_alarms_named_while_the_batch_is_within_tolerance(
    served: tuple, halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    from driftwatch.alerts.events import QUALITY, run_events
    from driftwatch.monitor.pipeline import monitor_result
    from driftwatch.monitor.result import MonitorResult
    from driftwatch.report.page import render_page
    from driftwatch.report.text import markdown, report_lines

    plan, _, champion, _, _ = served
    day = on(halves[1], "2013-02-24")
    ewr = (day["origin"] == "EWR").to_numpy()
    # EWR's labels turn noisy (a broken feed of its arrival times): its error grows, the
    # day's as a whole stays within the 10% tolerance.
    day.loc[ewr, "air_time"] += np.random.default_rng(0).normal(0, 15, int(ewr.sum()))
    found = judge(served, day)
    assert found.quality is not None and found.quality.degraded is False, found.quality.reason
    by = {q.segment: q for q in found.segment_quality}
    assert list(by) == ["origin=EWR", "origin=JFK", "origin=LGA"]
    assert by["origin=EWR"].degraded, by["origin=EWR"].reason
    assert by["origin=EWR"].baseline == pytest.approx(champion.segments["origin=EWR"]["rmse"])
    assert by["origin=EWR"].p_value < by["origin=EWR"].alpha == pytest.approx(RATE / 4)
    assert not by["origin=JFK"].degraded and not by["origin=LGA"].degraded
    # retraining stays per model: a quality trigger whose reason names the segment
    assert found.decision.triggers == {"quality"}, found.decision
    assert "quality segment origin=EWR: rmse" in found.decision.reason
    # the log lines, markdown, result JSON, event and page name it
    result = monitor_result(
        plan,
        Batch(day, ["batch"], False, new_rows=len(day)),
        found,
        champion,
        blocks_ref(plan),
        0.0,
        "run-1",
    )
    assert any(
        line.startswith("quality segment origin=EWR: rmse ") for line in report_lines(result)
    )
    assert "- quality segment origin=EWR: rmse " in markdown(result)
    again = MonitorResult.from_dict(result.to_dict())
    assert [q.segment for q in again.segment_quality] == list(by)
    assert result.to_dict()["segment_quality"][0]["segment"] == "origin=EWR"
    (event,) = [
        e for e in run_events(result, plan.name, plan.settings.quality) if e.event == QUALITY
    ]
    assert event.payload["segment"] == "origin=EWR"
    assert event.payload["segments_degraded"] == ["origin=EWR"]
    assert event.summary.startswith("quality degraded in segment origin=EWR: rmse ")
    page = render_page(result, plan.settings)
    assert "Per segment" in page and "origin=EWR" in page and "DEGRADED" in page


def blocks_ref(plan: Plan) -> Any:
    cycle, _ = memory_cycle(plan, [])
    return cycle.references.locate(None)


def test_quiet_days_hold_the_rate_across_segments(
    served: tuple, halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    """The even days of January-February. A windy day is worse for every airport: the whole
    batch is degraded and so are its segments (the model's error that day, not noise; the
    same finding, per airport). What segments must not add is alarms of their own: on the
    days the whole batch is within tolerance, the segments together alarm at about the rate,
    where the tolerance alone would alarm on several of them."""
    _, days = halves
    quiet = alarmed = beyond = windy = 0
    for day in days:
        found = judge(served, day)
        segs = found.segment_quality
        assert [q.alpha for q in segs] == [pytest.approx(RATE / 4)] * 3
        assert all(q.degraded is not None for q in segs)
        if found.quality is not None and not found.quality.degraded:
            quiet += 1
            alarmed += any(q.degraded for q in segs)
            beyond += any(q.value > 1.1 * q.baseline for q in segs)
        else:
            windy += any(q.degraded for q in segs)
    print(
        f"{len(days)} days: {len(days) - quiet} whole batch degraded ({windy} with a segment);"
        f" {quiet} within tolerance: a segment alarmed on {alarmed}, beyond tolerance on {beyond}"
    )
    assert quiet >= 15
    # At RATE 0.05 over ~24 days, 3 or more alarming days would happen by chance with
    # probability < 3% if the rate held exactly.
    assert alarmed <= 2, (alarmed, beyond)


def test_the_estimate_per_segment_is_reported(
    served: tuple, halves: tuple[pd.DataFrame, list[pd.DataFrame]], monkeypatch
) -> None:
    from driftwatch.model import estimate as E
    from driftwatch.monitor.pipeline import monitor_result
    from driftwatch.report.text import report_lines

    # The widening away from the holdout off: it grows with the distance beyond chance, which
    # can be larger for the whole batch (more rows, less chance) than for a segment; what is
    # checked here is that a segment's fewer rows widen the measured interval.
    for name in ("_SHIFT_FLOOR", "_SHIFT_FLOOR_LOW", "_SHIFT_SLOPE"):
        monkeypatch.setattr(E, name, 0.0)
    _, _, champion, _, _ = served
    day = on(halves[1], "2013-01-10")
    found = judge(served, day)
    assert found.estimated is not None and found.estimated.value is not None
    by = {e.segment: e for e in found.segment_estimated}
    assert list(by) == ["origin=EWR", "origin=JFK", "origin=LGA"]
    assert sum(e.rows for e in by.values()) == found.estimated.rows
    for name, e in by.items():
        assert e.value is not None and e.low <= e.value <= e.high
        assert e.baseline == pytest.approx(champion.segments[name]["rmse"])
        # fewer rows than the batch: a wider interval (relative: it is on the log scale)
        assert e.high / e.low > found.estimated.high / found.estimated.low
    # quality.trigger realised: an estimate is reported, never a trigger
    assert "estimated" not in found.decision.triggers
    plan = served[0]
    batch = Batch(day, ["batch"], False, new_rows=len(day))
    result = monitor_result(plan, batch, found, champion, blocks_ref(plan), 0.0, "r")
    lines = [line for line in report_lines(result) if line.startswith("estimated segment")]
    assert len(lines) == 3 and lines[0].startswith("estimated segment origin=EWR rmse ")


def test_a_champion_without_segment_baselines_gets_no_segment_verdict(
    served: tuple, halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    from dataclasses import replace

    champion = replace(served[2], segments=None)  # stored before segment baselines were
    found = judge(served, on(halves[1], "2013-01-10"), champion)
    assert found.quality is not None and found.quality.degraded is not None
    for q in found.segment_quality:
        assert q.degraded is None and q.value is not None
        assert "no baseline for this segment: champion v1 was stored before" in q.reason


def test_the_segment_tests_reject_only_what_is_worse() -> None:
    """Each metric's one-sided test: rows as good as the threshold are not significant, rows
    clearly worse are (the per-row tests the segment verdict rests on)."""
    rng = np.random.default_rng(1)
    n = 400
    y = rng.normal(0, 1, n)
    for metric in ("rmse", "mae"):
        ok = y + rng.normal(0, 1.0, n)
        bad = y + rng.normal(0, 1.6, n)
        bound = 1.0 if metric == "rmse" else np.sqrt(2 / np.pi)
        assert worse_p_value(metric, y, ok, bound * 1.1, "regression") > 0.05
        assert worse_p_value(metric, y, bad, bound * 1.1, "regression") < 0.001
    truth = rng.integers(0, 2, n)
    good = np.where(rng.random(n) < 0.9, truth, 1 - truth).astype(float)  # 90% right
    poor = np.where(rng.random(n) < 0.7, truth, 1 - truth).astype(float)  # 70% right
    for metric in ("accuracy", "f1"):
        assert worse_p_value(metric, truth, good, 0.85, "binary") > 0.05
        assert worse_p_value(metric, truth, poor, 0.85, "binary") < 0.001
    score_good = truth + rng.normal(0, 0.5, n)
    score_poor = truth + rng.normal(0, 2.0, n)
    assert worse_p_value("roc_auc", truth, score_good, 0.85, "binary") > 0.05
    assert worse_p_value("roc_auc", truth, score_poor, 0.85, "binary") < 0.001
    classes = rng.integers(0, 3, n)
    right = np.where(rng.random(n) < 0.9, classes, (classes + 1) % 3).astype(float)
    assert worse_p_value("f1", classes, right, 0.8, "multiclass") > 0.05
    assert worse_p_value("accuracy", classes, right, 0.95, "multiclass") < 0.001


@pytest.mark.slow  # two models logged to MLflow (~19 s)
def test_segment_baselines_round_trip_through_mlflow(
    settings: Any, rows: pd.DataFrame, tmp_path: Path
) -> None:
    """Stored as one version tag (MLflow refuses "@" and "=" in tag names), at registration
    and at a re-baseline; a version without it reads as None."""
    from driftwatch.store.registry import Registry
    from tests.test_registry import challenger

    reg = Registry(settings)
    _, plain = challenger(reg, settings, rows, tmp_path, key="plain")
    reg.promote(plain)
    assert reg.champion().segments is None
    segments = {"origin=EWR": {"rmse": 12.5, "mae": 9.0}, "origin=JFK": {"rmse": 11.0}}
    _, version = challenger(reg, settings, rows, tmp_path, key="seg", segment_baselines=segments)
    reg.promote(version)
    assert reg.champion().segments == segments
    reg.set_baseline(version, {"rmse": 13.0}, None, {"origin=EWR": {"rmse": 14.0}})
    found = reg.champion()
    assert found.baseline["rmse"] == 13.0 and found.segments == {"origin=EWR": {"rmse": 14.0}}


def test_with_served_baselines_each_segment_has_its_own(
    served: tuple, halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    """``quality.baseline: served``: each segment's baseline is its own realised metric over
    its first batch in service, read from history as the whole batch's is."""
    from driftwatch.model.estimators import predict
    from driftwatch.monitor.segment_quality import segment_quality

    plan, blocks, champion, model, _ = served
    s = plan.settings
    quality = s.quality.model_copy(update={"baseline": "served"})
    plan = plan.model_copy(update={"settings": s.model_copy(update={"quality": quality})})
    cycle, _ = memory_cycle(plan, [])
    _, days = halves
    for name, day in (("first", days[20]), ("second", days[21])):
        origin = pd.Series(name, index=day.index)
        preds = pd.Series(predict(model, day, s.model), index=day.index)
        cycle.history.append(Batch(day, [name], True, origin=origin), preds, champion.version)
    reference, _ = halves
    trained = reference[reference["time_hour"] < days[20]["time_hour"].min()]  # served after it
    batch = days[22]
    found = cycle.served_baseline(champion, trained, batch)
    assert found.scores and sorted(found.segments) == ["origin=EWR", "origin=JFK", "origin=LGA"]
    ewr = found.segments["origin=EWR"]
    first = days[20][days[20]["origin"] == "EWR"]
    expected = score_rmse(first, model, s.model)
    assert ewr.scores["rmse"] == pytest.approx(expected)
    preds = pd.Series(predict(model, batch, s.model), index=batch.index)
    from driftwatch.monitor.pipeline import judged_labels

    judged = judged_labels(batch, preds, None, champion.version, s.model, [])
    segments = [g.segment for g in blocks.segments]
    verdicts = segment_quality(plan, judged, segments, None, champion.version, found.segments)
    assert [q.baseline for q in verdicts] == [
        pytest.approx(found.segments[q.segment].scores["rmse"]) for q in verdicts
    ]
    assert all(q.degraded is not None for q in verdicts)
    assert "baseline: its first batch in service" in verdicts[0].reason


def score_rmse(rows: pd.DataFrame, model: Any, spec: Any) -> float:
    from driftwatch.model.quality import score

    return score(model, rows, spec)["rmse"]


@pytest.mark.slow  # a bootstrap and a lost challenge of its own (~12 s)
def test_a_champion_that_holds_its_own_is_rebaselined_per_segment_too(
    served: tuple, halves: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    """A lost challenge re-baselines the champion on the new holdout: per segment as well."""
    plan, _, _, _, _ = served
    s = plan.settings
    retrain = s.retrain.model_copy(update={"promotion_margin": 0.9})  # no challenger wins
    plan = plan.model_copy(update={"settings": s.model_copy(update={"retrain": retrain})})
    reference, _ = halves
    local = reference["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.date
    newest = reference[(local == local.max()).to_numpy()].reset_index(drop=True)
    cycle, log = memory_cycle(plan, [("newest", newest)])
    cycle.run(run_id="bootstrap")
    before = cycle.registry.champion()
    outcome = cycle.retrain(["newest"], "a test", "lost")
    assert not outcome.promoted
    after = cycle.registry.champion()
    lost = log.challenges[-1]
    assert after.version == before.version
    assert after.segments == lost.champion_segments != before.segments
    assert sorted(after.segments) == ["origin=EWR", "origin=JFK", "origin=LGA"]


def test_a_degraded_segment_estimate_triggers_only_as_the_batch_s_would() -> None:
    from driftwatch.model.quality import EstimatedQuality
    from driftwatch.monitor.policy import decide

    seg = EstimatedQuality(
        metric="rmse",
        value=16.0,
        low=13.0,
        high=19.0,
        level=0.9,
        rows=300,
        reliable=True,
        baseline=11.0,
        degraded=True,
        reason="vs baseline 11 (+45.5% worse; degraded, limit 1.1)",
        segment="origin=EWR",
    )
    realised = decide([], None, None, True, 900, segment_estimated=[seg])
    assert realised.action == "no_drift" and not realised.triggers  # quality.trigger: realised
    either = decide([], None, None, True, 900, quality_trigger="either", segment_estimated=[seg])
    assert either.triggers == {"estimated"}
    assert "estimated segment origin=EWR rmse 16" in either.reason
