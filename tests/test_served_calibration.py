"""The estimate's interval re-calibrated on the champion's served, labelled periods (issue 18):
the pure object on synthetic periods, then through the monitor with late labels."""

from __future__ import annotations

import numpy as np
import pytest

from driftwatch.model.estimate import Estimate
from driftwatch.model.served_calibration import ServedCalibration, from_scale, to_scale
from tests.test_estimated_monitor import synthetic_model


def _periods(rng: np.random.Generator, n: int, true_sd: float, half: float, metric: str):
    """n periods whose estimate is off by N(0, true_sd) on the estimator's scale, each with an
    interval of half-width ``half`` there (a 90% interval is right when half = 1.645 sd)."""
    centre = 0.2 if metric == "rmse" else 0.75  # rmse: log(mean loss) 0.2; auc 0.75
    e = np.full(n, centre)
    r = e + rng.normal(0, true_sd, n)
    lo, hi = e - half, e + half
    f = (lambda z: from_scale(metric, z)) if metric == "rmse" else (lambda z: z)
    return f(e), f(lo), f(hi), f(r)


def _inside(cal: ServedCalibration, metric: str, rng: np.random.Generator, true_sd: float, half):
    """Share of new periods inside the adjusted interval."""
    e, lo, hi, r = _periods(rng, 4000, true_sd, half, metric)
    hits = 0
    for i in range(len(e)):
        est = Estimate(metric, e[i], lo[i], hi[i], 0.9, 100, True, None)
        a = cal.adjust(est)
        hits += a.low <= r[i] <= a.high
    return hits / len(e)


@pytest.mark.parametrize("metric", ["rmse", "roc_auc"])
def test_a_too_narrow_holdout_interval_widens_to_the_level(metric: str) -> None:
    rng = np.random.default_rng(0)
    sd = 0.1 if metric == "rmse" else 0.02
    half = 1.645 * sd / 2.5  # the holdout promised 2.5 times too little error
    cal = ServedCalibration(0.9, min_periods=8, max_periods=200).fit(
        metric, *_periods(rng, 200, sd, half, metric)
    )
    assert cal.adjusted and cal.periods_ == 200 and 2.0 < cal.factor_ < 3.2, cal.factor_
    assert "interval calibrated on 200 served periods (x2." in cal.note
    before = _inside(ServedCalibration(0.9).fit(metric, [], [], [], []), metric, rng, sd, half)
    after = _inside(cal, metric, rng, sd, half)
    assert before < 0.6 and 0.86 <= after <= 0.95, (before, after)


@pytest.mark.parametrize("metric", ["rmse", "roc_auc"])
def test_a_too_wide_holdout_interval_narrows_but_not_below_the_sampling_part(metric: str) -> None:
    rng = np.random.default_rng(1)
    sd = 0.1 if metric == "rmse" else 0.02
    half = 1.645 * sd * 3  # three times too cautious: it never excludes a baseline
    cal = ServedCalibration(0.9, min_periods=8, max_periods=200).fit(
        metric, *_periods(rng, 200, sd, half, metric)
    )
    assert 0.25 < cal.factor_ < 0.42, cal.factor_
    assert 0.86 <= _inside(cal, metric, rng, sd, half) <= 0.95
    e, lo, hi, _ = _periods(rng, 1, sd, half, metric)
    est = Estimate(metric, e[0], lo[0], hi[0], 0.9, 100, True, None)
    narrowed = cal.adjust(est)
    assert est.low < narrowed.low < narrowed.value < narrowed.high < est.high
    # A batch whose own sampling sd is larger keeps its width (RMSE: the sd on the log scale;
    # ROC AUC: the metric's sd, taken to the logit scale the factor works on).
    floored = cal.adjust(est, floor=sd * 3)
    width = to_scale(metric, floored.high) - to_scale(metric, floored.value)
    v = floored.value
    least = 1.645 * sd * 3 / (1.0 if metric == "rmse" else v * (1 - v))
    assert width == pytest.approx(least, rel=1e-3)


def test_a_too_wide_interval_is_narrowed_only_from_narrow_after_periods() -> None:
    """Below ``narrow_after`` labelled periods the factor may widen, never narrow: a 90% rank
    among a dozen scores is too noisy to claim more confidence than the holdout did."""
    rng = np.random.default_rng(5)
    sd, half = 0.1, 1.645 * 0.1 * 3  # three times too cautious
    est = Estimate("rmse", 12.0, 10.0, 15.0, 0.9, 100, True, None)
    twelve = ServedCalibration(0.9, min_periods=8).fit("rmse", *_periods(rng, 12, sd, half, "rmse"))
    kept = twelve.adjust(est)
    assert twelve.adjusted and twelve.factor_ < 1
    assert (kept.low, kept.high) == pytest.approx((est.low, est.high))
    thirty = ServedCalibration(0.9, min_periods=8).fit("rmse", *_periods(rng, 30, sd, half, "rmse"))
    assert thirty.factor_ < 1 and thirty.adjust(est).high < est.high
    early = ServedCalibration(0.9, min_periods=8, narrow_after=None).fit(
        "rmse", *_periods(rng, 12, sd, half, "rmse")
    )
    assert early.adjust(est).high < est.high


def test_fewer_than_the_minimum_periods_leave_the_interval_as_it_is() -> None:
    rng = np.random.default_rng(2)
    cal = ServedCalibration(0.9, min_periods=8).fit("rmse", *_periods(rng, 7, 0.3, 0.01, "rmse"))
    assert not cal.adjusted and cal.factor_ == 1.0 and cal.periods_ == 7
    assert (
        cal.note == "interval from the holdout: 7 served period(s) labelled (< 8 to calibrate on)"
    )
    est = Estimate("rmse", 12.0, 11.0, 13.5, 0.9, 100, True, None)
    assert cal.adjust(est) == est
    # 8 periods: calibrated on the largest score (the exact rank needs 9 at 90%), said so.
    eight = ServedCalibration(0.9, min_periods=8).fit("rmse", *_periods(rng, 8, 0.3, 0.01, "rmse"))
    assert eight.adjusted and "the largest score" in eight.note and eight.factor_ > 1


def test_only_the_newest_periods_count() -> None:
    """Conformal on the newest ``max_periods``: old misses no longer widen the interval."""
    rng = np.random.default_rng(3)
    old = _periods(rng, 40, 0.5, 0.1, "rmse")  # months ago the estimate was far off
    new = _periods(rng, 60, 0.06, 0.1, "rmse")  # lately it is right
    both = [np.r_[a, b] for a, b in zip(old, new, strict=True)]
    cal = ServedCalibration(0.9, min_periods=8, max_periods=30).fit("rmse", *both)
    assert cal.periods_ == 90 and cal.calibrated_on == 30  # replayed 3 x 30, quantile on 30
    assert cal.factor_ < 1.5, cal.factor_
    assert "interval calibrated on 30 served periods (x" in cal.note


def test_errors_that_keep_growing_are_tracked() -> None:
    """A stale champion's estimate errs more every period (2013's June-July champion): a
    window of past periods lags the trend, quantile tracking catches up with much of it (the
    sd of the error grows tenfold over 120 periods here; four seeds)."""

    def inside(step: float, seed: int) -> float:
        rng = np.random.default_rng(seed)
        e = np.full(120, 0.5)
        r = e + rng.normal(0, 1, 120) * np.linspace(0.05, 0.5, 120)
        hits = []
        for t in range(30, 120):
            cal = ServedCalibration(0.9, min_periods=8, max_periods=30, step=step)
            cal.fit("roc_auc", e[:t], e[:t] - 0.1, e[:t] + 0.1, r[:t])
            a = cal.adjust(Estimate("roc_auc", 0.5, 0.4, 0.6, 0.9, 100, True, None))
            hits.append(a.low <= r[t] <= a.high)
        return float(np.mean(hits))

    tracked = np.mean([inside(0.2, seed) for seed in range(4, 8)])
    window_only = np.mean([inside(0.0, seed) for seed in range(4, 8)])
    assert tracked >= 0.83 and tracked > window_only + 0.04, (tracked, window_only)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="min_periods 9, max_periods 3"):
        ServedCalibration(0.9, min_periods=9, max_periods=3)
    with pytest.raises(ValueError, match="estimate 2, low 1"):
        ServedCalibration().fit("rmse", [1, 2], [1], [1, 2], [1, 2])


# -- through the monitor: real landing dir, history, late label files and MLflow registry ----


def _hidden_noise(rng: np.random.Generator, start: str, n: int, noise: float):
    """The synthetic model's rows (y = 2x + noise; tests/test_estimated_monitor.py) whose noise
    is ``noise`` times larger: worse, with features that do not show it; ids to join labels."""
    from tests.test_estimated_monitor import _synthetic

    frame = _synthetic(rng, n, start)
    frame["y"] = 2 * frame["x"] + (frame["y"] - 2 * frame["x"]) * noise
    frame["id"] = [f"{start}-{i}" for i in range(n)]
    return frame


def test_labelled_periods_outside_the_interval_widen_the_next_ticks_interval(
    tmp_path, make_config
) -> None:
    """The champion serves hourly batches without labels whose error is secretly twice the
    holdout's; each hour's labels land (a label file) before the next tick. Until three served
    hours are labelled the holdout's interval stands (and says so); from then on the interval
    is calibrated on them: wider, holding the realised RMSE, and the result says on how many
    periods."""
    import yaml

    from driftwatch.model.estimators import features
    from driftwatch.monitor.estimated import estimated_metrics
    from driftwatch.monitor.memory import ResultLog
    from driftwatch.monitor.pipeline import MonitorCycle
    from driftwatch.monitor.plan import Plan
    from driftwatch.monitor.result import MonitorResult
    from driftwatch.report.text import report_lines
    from driftwatch.store.calibrations import CalibrationStore
    from driftwatch.store.history import HistoryFiles
    from driftwatch.store.landing import LandingFiles
    from driftwatch.store.models import RegistryModels
    from driftwatch.store.references import ReferenceFiles

    rng = np.random.default_rng(0)
    reference = tmp_path / "synthetic.parquet"
    _hidden_noise(rng, "2024-01-01", 6000, 1.0).to_parquet(reference, index=False)
    labels, landing = tmp_path / "labels", tmp_path / "landing"
    labels.mkdir()
    landing.mkdir()
    config = make_config(
        model=synthetic_model("id"),
        drift={"calibration": {"quiet": "rows", "batches": 200}},
        # Only a quality verdict may retrain, and the batches carry no labels: one champion.
        retrain={"min_age_days": None, "max_age_days": None, "triggers": ["quality"]},
        quality={"baseline": "holdout", "estimate": {"served": {"min_periods": 3}}},
    )
    raw = yaml.safe_load(config.read_text())
    raw["paths"] |= {"reference": str(reference), "labels": str(labels)}
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    plan = Plan.load(config)
    source, references, registry = LandingFiles(plan), ReferenceFiles(plan), RegistryModels(plan)
    cycle = MonitorCycle(
        plan,
        source,
        references,
        CalibrationStore(plan, references),
        registry,
        ResultLog(),
        HistoryFiles(plan, source.ledger),
    )
    _hidden_noise(rng, "2024-01-05", 500, 1.0).to_parquet(landing / "boot.parquet", index=False)
    assert cycle.run("boot").retrain.promoted

    hours = [_hidden_noise(rng, f"2024-01-06 {h:02d}:00", 60, 2.0) for h in range(5)]
    results = []
    for h, rows in enumerate(hours):
        if h:  # the previous hour's labels land before this tick
            rows_before = hours[h - 1][["id", "y"]]
            rows_before.to_parquet(labels / f"labels-{h - 1}.parquet", index=False)
        rows.assign(y=np.nan).to_parquet(landing / f"hour-{h}.parquet", index=False)
        results.append(cycle.run(f"hour-{h}"))
    assert all(r.retrain is None and r.champion_version == "1" for r in results)

    for h in range(3):  # 0, 1, 2 labelled hours: the holdout's interval
        e = results[h].estimated
        assert e.served_periods == h and e.interval_factor is None, e
        assert f"interval from the holdout: {h} served period(s) labelled (< 3" in e.reason
    estimator = registry.load_estimator("1")
    for h in (3, 4):
        e = results[h].estimated
        assert e.served_periods == h and e.interval_factor > 1.5, e
        assert f"interval calibrated on {h} served periods (x" in e.reason
        rows = hours[h]
        holdout = estimator.estimate(features(rows, plan.settings.model), rows_pred(plan, rows))
        assert e.value == pytest.approx(holdout.value)
        assert e.high - e.low > 1.5 * (holdout.high - holdout.low)
        realised = float(np.sqrt(np.mean((rows["y"] - rows_pred(plan, rows)) ** 2)))
        assert not holdout.low <= realised <= holdout.high  # the holdout's interval misses it
        assert e.low <= realised <= e.high  # the calibrated one holds it
    line = next(x for x in report_lines(results[4]) if x.startswith("estimated rmse"))
    assert "interval calibrated on 4 served periods" in line
    metrics = estimated_metrics(results[4].estimated)
    assert metrics["estimated_served_periods"] == 4 and metrics["estimated_interval_factor"] > 1.5
    again = MonitorResult.from_dict(results[4].to_dict())  # the result JSON keeps both
    assert again.estimated.served_periods == 4


def rows_pred(plan, rows):
    """The champion's predictions of ``rows`` (the registry's model, as the monitor loads it)."""
    from driftwatch.model.estimators import predict
    from driftwatch.store.models import RegistryModels

    return predict(RegistryModels(plan).load_model("1"), rows, plan.settings.model)


def test_the_backtests_in_memory_history_calibrates_the_same_way(tmp_path, make_config) -> None:
    """The backtest's ports (in-memory history, labels in the batches): the same code path, so
    the same periods calibrate the interval and the result says so."""
    import yaml

    from driftwatch.monitor.plan import Plan
    from tests.test_pipeline import memory_cycle

    rng = np.random.default_rng(5)
    reference = tmp_path / "synthetic.parquet"
    _hidden_noise(rng, "2024-01-01", 6000, 1.0).to_parquet(reference, index=False)
    config = make_config(
        model=synthetic_model(),
        drift={"calibration": {"quiet": "rows", "batches": 200}},
        retrain={"min_age_days": None, "max_age_days": None, "triggers": ["age"]},
        quality={"baseline": "holdout", "estimate": {"served": {"min_periods": 3}}},
    )
    raw = yaml.safe_load(config.read_text())
    raw["paths"]["reference"] = str(reference)
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    plan = Plan.load(config)
    items = [("boot", _hidden_noise(rng, "2024-01-05", 500, 1.0).drop(columns="id"))]
    items += [
        (f"hour-{h}", _hidden_noise(rng, f"2024-01-06 {h:02d}:00", 60, 2.0).drop(columns="id"))
        for h in range(5)
    ]
    cycle, _ = memory_cycle(plan, items)
    results = [cycle.run(run_id=str(i)) for i in range(len(items))]
    assert results[0].retrain.promoted
    served = [r.estimated.served_periods for r in results[1:]]
    assert served == [0, 1, 2, 3, 4]  # each hour's labels came with it
    last = results[-1].estimated
    assert last.interval_factor > 1.5 and "interval calibrated on 4 served periods" in last.reason


def test_periods_are_cut_at_their_edges_and_the_lag_counts_time(make_config) -> None:
    """A row at exactly one period before the batch is in the newest period, not the one
    before; a period of too few labelled rows is left out of the list but not of the clock:
    hours labelled up to the one before the batch give a lag of 1 however many night hours
    were left out."""
    import pandas as pd

    from driftwatch.config import load_settings
    from driftwatch.monitor.plan import Plan
    from driftwatch.monitor.ports import PREDICTED, SERVED_BY
    from driftwatch.monitor.served_interval import grid_start, served_periods

    plan = Plan(settings=load_settings(make_config()))
    spec = plan.settings.model
    least = plan.settings.quality.min_labelled_rows
    start = pd.Timestamp("2013-02-02 12:00", tz="UTC")
    hours = [start - pd.Timedelta(hours=h) for h in (1, 2, 10)]  # 11:00, 10:00, then 02:00
    rows = pd.DataFrame(
        {
            spec.timestamp: [h for h in hours for _ in range(least)],
            spec.target: 100.0,
            PREDICTED: 101.0,
            SERVED_BY: "1",
        }
    )
    periods = served_periods(plan, rows, "1", start, pd.Timedelta(hours=1))
    assert [(b, str(t.time()), len(g)) for b, t, g in periods] == [
        (9, "02:00:00", least),
        (1, "10:00:00", least),
        (0, "11:00:00", least),
    ]
    # A batch whose first row is at 12:07 meets the same periods (the grid is whole hours).
    later = pd.Series([start + pd.Timedelta(minutes=7)])
    assert grid_start(later, pd.Timedelta(hours=1)) == start
    # With gaps, the lag is counted in time: periods two hours apart, labels 3 hours late:
    # when a period was served, all but the one just before it were labelled (a lag of 2 in
    # the list), not all but two (3 in the list, what counting periods given would say).
    rng = np.random.default_rng(6)
    e, lo, hi, r = _periods(rng, 30, 0.1, 0.3, "rmse")
    pos = -np.arange(60, 0, -2)  # every other hour: night hours left out
    fit = ServedCalibration(0.9, min_periods=8).fit
    gapped = fit("rmse", e, lo, hi, r, lag=3, positions=pos)
    assert gapped.correction_ == pytest.approx(fit("rmse", e, lo, hi, r, lag=2).correction_)
    assert gapped.correction_ != pytest.approx(fit("rmse", e, lo, hi, r, lag=3).correction_)


def test_the_factor_reported_is_the_factor_applied() -> None:
    """Below ``narrow_after`` a measured narrowing is held: the note and ``applied_factor_``
    say what the interval got (x1), and the measured factor is named beside it."""
    rng = np.random.default_rng(7)
    cal = ServedCalibration(0.9, min_periods=8).fit(
        "rmse", *_periods(rng, 12, 0.1, 1.645 * 0.1 * 3, "rmse")
    )
    assert cal.factor_ < 1 and cal.applied_factor_ == 1.0
    assert "(x1; " in cal.note and "narrowed only from 20" in cal.note


def test_the_period_cache_belongs_to_its_estimator() -> None:
    """Cached served periods are kept per estimator object (weakly): another estimator never
    reads them, even one born at the same address after the first is gone."""
    import gc

    from driftwatch.monitor import served_interval as si

    class Est:  # any object the cache can key weakly, as the estimators are
        pass

    first = Est()
    with si._CACHE_LOCK:
        si._CACHE.setdefault(first, {})[("k",)] = (1.0, 0.5, 2.0, 1.0)
    del first
    gc.collect()
    second = Est()
    with si._CACHE_LOCK:
        assert ("k",) not in si._CACHE.get(second, {})
