"""Time-block drift thresholds: quiet hours and days of an autocorrelated source stay quiet,
a too-short history is reported and handled by the stated rule, and data-quality incidents
(a null feed, a frozen column, a recoding) raise the alarm.

All data is synthetic and all computations are real: an hourly source whose rows share a
per-day and a per-hour level (and a categorical mix that moves from day to day), like flights
that share one day's weather and one hour's traffic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from driftwatch.engine.blocks import (
    BlockCalibrator,
    BlockDetector,
    block_statistics,
    min_blocks_for_empirical,
)
from driftwatch.engine.calibration import ThresholdCalibrator
from driftwatch.engine.drift import DriftDetector

NUMERICAL = ["x", "y"]
CATEGORICAL = ["c"]
CATS = np.array(["AA", "B6", "DL", "EV", "UA"])
SHARES = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
ROWS_PER_HOUR = 40
RATE = 0.01


def hourly(rng: np.random.Generator, n_days: int, hours: int = 24) -> pd.DataFrame:
    """``n_days`` days of ``hours`` hours, ROWS_PER_HOUR rows each, strongly autocorrelated.

    x: a per-day level (sd 1) + a per-hour level (sd 0.5) shared by all rows of the hour + row
    noise (sd 1), on a 0.1 lattice. y: a per-day level + row noise, integers, independent of x
    (no cross-column regression is fitted). c: each day draws its own mix of the carriers."""
    d = np.repeat(np.arange(n_days), hours * ROWS_PER_HOUR)
    h = np.tile(np.repeat(np.arange(hours), ROWS_PER_HOUR), n_days)
    n = len(d)
    day_x = rng.normal(0.0, 1.0, n_days)
    hour_x = rng.normal(0.0, 0.5, (n_days, hours))
    day_y = rng.normal(0.0, 2.0, n_days)
    x = (day_x[d] + hour_x[d, h] + rng.normal(0.0, 1.0, n)).round(1)
    y = (20.0 + day_y[d] + rng.normal(0.0, 3.0, n)).round(0)
    mix = rng.dirichlet(20 * SHARES, n_days)
    code = np.minimum((rng.random(n)[:, None] > np.cumsum(mix, axis=1)[d]).sum(axis=1), 4)
    ts = (
        pd.Timestamp("2024-01-01")
        + pd.to_timedelta(d, unit="D")
        + pd.to_timedelta(h, unit="h")
        + pd.to_timedelta(rng.integers(0, 3600, n), unit="s")
    )
    return pd.DataFrame({"ts": ts, "x": x, "y": y, "c": CATS[code]})


def by_day(frame: pd.DataFrame) -> list[pd.DataFrame]:
    return [g.reset_index(drop=True) for _, g in frame.groupby(frame["ts"].dt.normalize())]


def calibrate(reference: pd.DataFrame, span: str, **kw) -> BlockCalibrator:
    return BlockCalibrator(NUMERICAL, CATEGORICAL, rate=RATE, **kw).fit(
        reference, reference["ts"], span
    )


def threshold(cal: BlockCalibrator, component: str) -> float:
    t = cal.thresholds_
    return float(t.thresholds[t.components.index(component)])


@pytest.fixture(scope="module")
def two_months() -> pd.DataFrame:
    return hourly(np.random.default_rng(11), 60)


@pytest.fixture(scope="module")
def daily(two_months: pd.DataFrame) -> BlockCalibrator:
    """1-day blocks of two months of reference: the default (auto) rule is conservative."""
    return calibrate(two_months, "1D")


@pytest.fixture(scope="module")
def quiet_day() -> pd.DataFrame:
    """A fresh day from the same process that the daily thresholds judge quiet."""
    return by_day(hourly(np.random.default_rng(12), 1))[0]


# -- 1. quiet blocks of an autocorrelated source stay quiet -------------------------------------


@pytest.mark.parametrize(
    ("n_days", "span", "rule"),
    [
        # The empirical joint rule, asked for explicitly: 300 days >= the 299 it needs at
        # rate 0.01 with 95% confidence.
        (300, "1h", "empirical"),
        # The default rule ("auto") on two months: too few days, so the conservative rule.
        (60, "1h", "auto"),
    ],
)
def test_time_block_thresholds_hold_their_rate_where_random_row_thresholds_alarm(
    n_days: int, span: str, rule: str
) -> None:
    reference = hourly(np.random.default_rng(1), n_days)
    cal = calibrate(reference, span, rule=rule)
    t = cal.thresholds_
    assert t.n_days == n_days and t.n_blocks == n_days * 24
    expected = "empirical" if n_days >= min_blocks_for_empirical(RATE, 0.95) else "conservative"
    assert t.rule == expected

    # 200 fresh, independent hour blocks (one hour of each of 200 new days) of the same process.
    fresh = by_day(hourly(np.random.default_rng(2), 200, hours=1))
    assert all(len(b) == ROWS_PER_HOUR for b in fresh)
    blocks = BlockDetector(cal.profile_, t)
    block_alarms = float(np.mean([blocks.check(b).dataset_drift for b in fresh]))
    # Target 1%: 10 alarms in 200 would be 7 binomial standard errors above it.
    assert block_alarms < 0.05, block_alarms

    # The random-row calibration on the same reference, at the same rate and batch size:
    # a batch of 40 random rows is far tighter than an hour that shares its day and hour.
    def detector(**kw) -> DriftDetector:
        return DriftDetector(
            numerical=NUMERICAL, categorical=CATEGORICAL, method="calibrated", min_rows=20, **kw
        )

    rows = ThresholdCalibrator(detector(), batch_rows=ROWS_PER_HOUR, false_alarm_rate=RATE)
    rows.fit(reference)
    pins = {c: (v.test, v.threshold) for c, v in rows.thresholds_.items()}
    random_rows = detector(tests=pins, alpha=RATE).fit(reference)
    row_alarms = float(np.mean([random_rows.check(b).dataset_drift for b in fresh]))
    assert row_alarms > 0.5, row_alarms


# -- 2. a too-short history ---------------------------------------------------------------------


def test_twenty_days_use_the_stated_conservative_rule_and_say_so() -> None:
    reference = hourly(np.random.default_rng(3), 20)
    cal = calibrate(reference, "1h")
    t = cal.thresholds_
    need = min_blocks_for_empirical(RATE, 0.95)
    assert t.rule == "conservative" and t.n_days == 20 and t.n_blocks == 20 * 24
    notes = [w for w in t.warnings if "20 days" in w and "conservative rule" in w]
    assert len(notes) == 1, t.warnings
    assert f"needs {need} days" in notes[0]
    # The rule as stated: a finite bound per statistic, never below the largest quiet block.
    assert np.isfinite(t.thresholds).all()
    largest = np.nanmax(np.where(np.isfinite(cal.null_), cal.null_, -np.inf), axis=0)
    assert (t.thresholds >= largest).all()
    # ... so the reference's own blocks do not alarm, and a recoding still does.
    assert t.in_sample_alarms == 0
    hour = reference[reference["ts"] < reference["ts"].min() + pd.Timedelta("1h")]
    result = BlockDetector(cal.profile_, t).check(hour.assign(c=hour["c"].str.lower()))
    assert result.dataset_drift and result.drifted_columns == ["c"]


@pytest.mark.parametrize(
    ("n_days", "span", "min_rows", "n_blocks"),
    [
        (2, "1D", 20, 2),  # two day blocks
        (3, "1h", 10_000, 0),  # no hour holds 10,000 rows
    ],
)
def test_fewer_than_three_blocks_cannot_be_calibrated_and_cannot_alarm(
    n_days: int, span: str, min_rows: int, n_blocks: int
) -> None:
    reference = hourly(np.random.default_rng(4), n_days)
    cal = calibrate(reference, span, min_rows=min_rows)
    t = cal.thresholds_
    assert t.n_blocks == n_blocks
    assert any(
        f"only {n_blocks} blocks" in w and "nothing can be calibrated" in w for w in t.warnings
    ), t.warnings
    assert np.isinf(t.thresholds).all()
    # Even a recoded, all-null batch raises nothing: there is nothing to compare it with.
    broken = reference.head(200).assign(x=np.nan, c=reference["c"].head(200).str.lower())
    result = BlockDetector(cal.profile_, t).check(broken)
    assert not result.dataset_drift and result.drifted_columns == []


# -- 3. data-quality incidents -----------------------------------------------------------------

INCIDENTS: dict[str, tuple[str, Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame], set[str]]] = {
    "null_feed": ("x", lambda day, ref: day.assign(x=np.nan), {"missing"}),
    "frozen": ("x", lambda day, ref: day.assign(x=float(ref["x"].median())), {"modal"}),
    "recoded": (
        "c",
        lambda day, ref: day.assign(c=day["c"].str.lower()),
        {"novel", "jensenshannon"},
    ),
}


def test_the_quiet_day_is_quiet(daily: BlockCalibrator, quiet_day: pd.DataFrame) -> None:
    result = BlockDetector(daily.profile_, daily.thresholds_).check(quiet_day)
    assert result.verdict == "no_drift" and result.n_tested == 3


@pytest.mark.parametrize("incident", list(INCIDENTS))
def test_data_quality_incidents_raise_the_alarm(
    incident: str, two_months: pd.DataFrame, daily: BlockCalibrator, quiet_day: pd.DataFrame
) -> None:
    column, breaks, tests = INCIDENTS[incident]
    result = BlockDetector(daily.profile_, daily.thresholds_).check(breaks(quiet_day, two_months))
    assert result.dataset_drift and result.verdict == "drift"
    assert result.drifted_columns == [column]
    broken = result.column(column)
    assert broken.test in tests, (broken.test, broken.note)
    assert broken.status == "drift" and broken.score > broken.threshold
    for other in result.columns:
        if other.column != column:
            assert other.drifted is False and other.status == "ok", other


def test_a_broken_feed_in_the_reference_does_not_blind_the_missing_share(
    two_months: pd.DataFrame, quiet_day: pd.DataFrame
) -> None:
    """One reference day with x entirely null (as 31 Dec 2013 has no weather): taken as quiet
    it would put x's missing-share threshold at 1, where an all-null x can never alarm. It is
    set aside as a broken feed, said in the calibration's warnings, and all-null x alarms."""
    reference = two_months.copy()
    day = reference["ts"].dt.normalize() == pd.Timestamp("2024-01-31")
    reference.loc[day, "x"] = np.nan
    cal = calibrate(reference, "1D")
    assert threshold(cal, "x:missing") < 0.5
    assert any(
        "x was entirely null in the reference on 2024-01-31" in w for w in cal.thresholds_.warnings
    )
    detector = BlockDetector(cal.profile_, cal.thresholds_)
    assert detector.check(quiet_day.assign(x=np.nan)).drifted_columns == ["x"]
    assert detector.check(quiet_day).verdict == "no_drift"


def test_a_column_that_is_often_null_is_normal_and_its_blind_spot_is_said(
    two_months: pd.DataFrame,
) -> None:
    """x entirely null on one day in six (more than the 5% of days that may be set aside as
    broken feeds): that is how x is, an all-null x cannot alarm, and the calibration says so."""
    reference = two_months.copy()
    days = (reference["ts"] - reference["ts"].min()).dt.days
    reference.loc[days % 6 == 0, "x"] = np.nan
    cal = calibrate(reference, "1D")
    assert threshold(cal, "x:missing") >= 1.0
    spots = [w for w in cal.thresholds_.warnings if w.startswith("blind spots at 1d")]
    assert len(spots) == 1 and "all-null: x (" in spots[0], cal.thresholds_.warnings


# -- 4. an empty batch --------------------------------------------------------------------------


def test_an_empty_batch_has_no_verdict(daily: BlockCalibrator, quiet_day: pd.DataFrame) -> None:
    result = BlockDetector(daily.profile_, daily.thresholds_).check(quiet_day.iloc[:0])
    assert result.verdict == "no_verdict"
    assert result.dataset_drift is False and result.n_tested == 0
    assert all(c.status == "insufficient_data" and c.drifted is None for c in result.columns)


# -- 5. pinned thresholds -----------------------------------------------------------------------


def test_pinned_thresholds_are_used_exactly(
    two_months: pd.DataFrame, daily: BlockCalibrator, quiet_day: pd.DataFrame
) -> None:
    comps = daily.thresholds_.components
    w1 = float(block_statistics(daily.profile_, quiet_day)[comps.index("x:wasserstein")])
    assert 0 < w1 < threshold(daily, "x:wasserstein")
    for pin, drifted in ((w1 / 2, True), (w1 * 2, False)):
        cal = calibrate(two_months, "1D", pinned={"x": pin, "c": 0.123})
        assert threshold(cal, "x:wasserstein") == pin  # exactly, not recalibrated
        assert threshold(cal, "c:jensenshannon") == 0.123  # categorical: Jensen-Shannon
        assert np.isfinite(threshold(cal, "x:ks"))  # the other statistics still calibrated
        x = BlockDetector(cal.profile_, cal.thresholds_).check(quiet_day).column("x")
        assert x.drifted is drifted
        if drifted:
            assert x.test == "wasserstein" and x.threshold == pin


# -- 6. report-only columns ---------------------------------------------------------------------


def test_a_drifted_report_only_column_is_shown_but_raises_no_alarm(
    daily: BlockCalibrator, quiet_day: pd.DataFrame
) -> None:
    batch = quiet_day.assign(x=np.nan)
    counted = BlockDetector(daily.profile_, daily.thresholds_).check(batch)
    assert counted.dataset_drift  # the same batch with every column counting

    result = BlockDetector(daily.profile_, daily.thresholds_, counting=["y", "c"]).check(batch)
    x = result.column("x")
    assert x.drifted is True and x.test == "missing" and "report only" in x.note
    assert result.report_only == ["x"] and result.drifted_columns == ["x"]
    assert result.dataset_drift is False and result.verdict == "no_drift"
    assert result.n_tested == 2 and result.n_drifted == 0
    assert "report-only columns drifted: x" in result.summary()


def test_novel_numbers_are_off_the_lattice_or_out_of_range_not_gaps_in_a_sparse_column() -> None:
    """Rain in inches is a sparse 0.01 lattice: a wet day brings amounts the reference never
    had inside its range, which is not a new kind of value. A rescaled column (miles in km)
    is off the lattice, and values past the range are new: both count as novel."""
    from driftwatch.engine.blocks import fit_profile

    reference = pd.DataFrame({"rain": [0.0] * 90 + [0.01, 0.02, 0.05, 0.2, 0.5] * 2})
    column = fit_profile(reference, ["rain"], []).columns["rain"]
    assert column.step == pytest.approx(0.01)
    novel = column.novel(np.array([0.0, 0.29, 0.33, 0.5, 0.8, 0.016]))
    assert novel.tolist() == [False, False, False, False, True, True]


def test_a_record_day_is_not_a_new_kind_of_value_but_a_unit_change_past_a_hard_bound_is() -> None:
    """A stationary series sets a record on about one day in n + 1: a day slightly colder than
    every reference day is weather, not novelty. A column that reaches the same bound every
    day (the longest route flies daily) gets no margin: miles sent as km still leave it."""
    from driftwatch.engine.blocks import fit_profile

    rng = np.random.default_rng(3)
    days = np.repeat(pd.date_range("2024-01-01", periods=30, freq="D"), 24)
    level = np.repeat(rng.normal(0.0, 5.0, 30), 24)
    reference = pd.DataFrame(
        {
            "temp": (level + rng.normal(0.0, 2.0, len(days))).round(1),
            "distance": np.tile([100.0, 500.0, 1000.0, 4983.0], len(days) // 4),
        }
    )
    profile = fit_profile(reference, ["temp", "distance"], [], timestamps=pd.Series(days))
    temp, distance = profile.columns["temp"], profile.columns["distance"]
    lo, hi = temp.values[0], temp.values[-1]
    assert temp.margins[0] > 0 and temp.margins[1] > 0
    assert not temp.novel(np.array([lo - 1.0, hi + 1.0])).any()  # a record, on the lattice
    assert temp.novel(np.array([lo - 10 * temp.margins[0], hi + 10 * temp.margins[1]])).all()
    assert distance.margins == (0.0, 0.0)
    assert distance.novel(np.array([4983.0 * 1.609])).all()
    bare = fit_profile(reference, ["temp"], []).columns["temp"]  # no timestamps: bare range
    assert bare.margins == (0.0, 0.0) and bare.novel(np.array([hi + 1.0])).all()


def test_a_one_hour_gap_is_caught_by_the_hour_not_by_the_day(
    two_months: pd.DataFrame, daily: BlockCalibrator, quiet_day: pd.DataFrame
) -> None:
    """Feeds fail by the hour: a day with one hour of x missing (1/24 of its rows) is not a day
    of drift (the hourly tick re-judges the newest day for 24 ticks), the hour itself is."""
    gap = quiet_day["ts"].dt.hour == 13
    day = BlockDetector(daily.profile_, daily.thresholds_).check(
        quiet_day.assign(x=quiet_day["x"].where(~gap))
    )
    assert day.verdict == "no_drift", day.column("x")
    hourly_cal = calibrate(two_months, "1h")
    hour = BlockDetector(hourly_cal.profile_, hourly_cal.thresholds_).check(
        quiet_day[gap].assign(x=np.nan)
    )
    assert hour.drifted_columns == ["x"] and hour.column("x").test == "missing"
