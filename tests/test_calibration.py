"""Calibrated thresholds, Bonferroni and Benjamini-Hochberg: the dataset-level alarm rate is what
the config promises, on sources where the truth is known."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from driftwatch.engine.calibration import (
    Calibration,
    ThresholdCalibrator,
    _null_scores,
    allowed_alarms,
    size_bucket,
)
from driftwatch.engine.drift import ColumnDrift, DriftDetector, correct_p_values
from driftwatch.engine.stattests import ColumnSample
from driftwatch.monitor.plan import Plan
from driftwatch.store.calibrations import CalibrationStore, write_calibration
from driftwatch.store.references import ReferenceFiles, active_reference

CATS = np.array(["a", "b", "c", "d", "e", "f"])
SHARES = [0.35, 0.25, 0.15, 0.12, 0.08, 0.05]


def source(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    """A stationary source with the awkward parts of real data: ties, few distinct values, NaN."""
    x = rng.normal(shift, 1.0, n)
    y = rng.gamma(2.0, 1.0, n).round(1)
    y[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "y": y,
            "z": rng.integers(0, 4, n).astype(float),
            "c": rng.choice(CATS, n, p=SHARES),
        }
    )


def detector(**kw) -> DriftDetector:
    return DriftDetector(
        numerical=["x", "y", "z"], categorical=["c"], method="calibrated", min_rows=30, **kw
    )


def alarm_rate(det: DriftDetector, batches: list[pd.DataFrame]) -> float:
    return float(np.mean([det.check(b).dataset_drift for b in batches]))


def test_calibrated_false_alarm_rate_holds_on_fresh_data_from_the_source() -> None:
    rng = np.random.default_rng(7)
    reference = source(20_000, rng)
    cal = ThresholdCalibrator(detector(), batch_rows=500, false_alarm_rate=0.05).fit(reference)
    tests = {c: (t.test, t.threshold) for c, t in cal.thresholds_.items()}
    fitted = detector(tests=tests, alpha=0.05).fit(reference)
    quiet = [source(500, rng) for _ in range(600)]
    rate = alarm_rate(fitted, quiet)
    # Within the target (3 binomial standard errors of sampling error), and not vacuously so:
    # each of the 4 columns at the dataset rate would alarm on ~4x as many batches.
    assert 0.01 <= rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 600), rate
    per_column = [
        float(np.mean([fitted.check(b).column(c).drifted for b in quiet[:200]])) for c in "xyzc"
    ]
    assert max(per_column) < 0.05  # the budget is shared between the columns
    shifted = [source(500, rng, shift=0.3) for _ in range(100)]
    assert alarm_rate(fitted, shifted) >= 0.95  # one shifted column is enough for an alarm


def test_vectorised_null_statistics_equal_the_monitors_tests() -> None:
    rng = np.random.default_rng(3)
    reference = source(4_000, rng)
    cal = ThresholdCalibrator(detector(), batch_rows=300)
    fit_rows = rng.permutation(4_000)[:2_000]
    picks = rng.integers(0, 4_000, size=(6, 300))
    for col in cal._columns(reference):
        assert col.test.name in ("wasserstein", "jensenshannon")
        fast = _null_scores(col, fit_rows, picks, min_rows=1)
        values = reference[col.name]
        ref, _ = ColumnSample.from_series(values.iloc[fit_rows], col.kind)  # type: ignore[arg-type]
        for i, rows in enumerate(picks):
            cur, _ = ColumnSample.from_series(values.iloc[rows], col.kind)  # type: ignore[arg-type]
            exact = col.test(ref, cur, 0.1).statistic
            assert fast[i] == pytest.approx(exact, rel=1e-9, abs=1e-12), col.name


def test_any_configured_test_is_calibrated_through_its_own_function() -> None:
    """A p-value test (K-S) pinned by name only: its threshold is calibrated, on the p scale."""
    rng = np.random.default_rng(5)
    reference = source(6_000, rng)
    det = detector(tests={"x": ("ks", None)})
    cal = ThresholdCalibrator(det, batch_rows=400, false_alarm_rate=0.05, batches=300).fit(
        reference
    )
    x = cal.thresholds_["x"]
    assert x.test == "ks" and 0 < x.threshold < 0.05  # a p-value cut-off, below the nominal 5%


def test_allowed_alarms_is_a_binomial_tolerance_bound() -> None:
    assert allowed_alarms(1000, 0.01, 0.95) == 4
    assert allowed_alarms(1000, 0.05, 0.95) == 38
    assert allowed_alarms(100, 0.01, 0.95) == -1  # too few batches to show 1%


def test_size_bucket_is_exact_for_small_batches_and_within_an_eighth_octave_above() -> None:
    assert [size_bucket(n) for n in (1, 30, 31, 63)] == [1, 30, 31, 63]
    assert size_bucket(1000) == 939 and size_bucket(1024) == 1024 and size_bucket(6000) == 5792
    sizes = range(64, 300_000, 7)
    assert all(size_bucket(n) <= n < size_bucket(n) * 2 ** (1 / 8) + 1 for n in sizes)
    assert all(size_bucket(size_bucket(n)) == size_bucket(n) for n in sizes)  # its own bucket
    # The cap (drift.calibration.max_batch_rows) bounds the cost; it is a bucket itself.
    assert size_bucket(100_000, cap=2000) == size_bucket(2000) == size_bucket(1900)


def test_report_only_columns_are_tested_but_never_raise_the_alarm() -> None:
    rng = np.random.default_rng(11)
    reference = source(10_000, rng)
    det = detector(report_only=["x"])
    cal = ThresholdCalibrator(det, batch_rows=500, batches=300, false_alarm_rate=0.05).fit(
        reference
    )
    tests = {c: (t.test, t.threshold) for c, t in cal.thresholds_.items()}
    fitted = detector(report_only=["x"], tests=tests).fit(reference)
    result = fitted.check(source(500, rng, shift=1.0))
    assert result.column("x").drifted and "report only" in result.column("x").note
    assert not result.dataset_drift and result.n_tested == 3
    assert "report-only columns drifted: x" in result.summary()
    # All columns report-only: still calibrated (as if they counted), never an alarm.
    everything = detector(report_only=["x", "y", "z", "c"])
    fitted = ThresholdCalibrator(everything, batch_rows=200, batches=200).fit(reference)
    thresholds = {c: t.threshold for c, t in fitted.thresholds_.items()}
    assert set(thresholds) == {"x", "y", "z", "c"}
    assert all(np.isfinite(t) and t > 0 for t in thresholds.values())
    shifted = source(200, np.random.default_rng(9))
    shifted["x"] += 10.0
    result = detector(tests=fitted_tests(fitted), report_only=["x", "y", "z", "c"]).fit(reference)
    checked = result.check(shifted)
    assert checked.column("x").drifted and not checked.dataset_drift


def column(name: str, p: float) -> ColumnDrift:
    return ColumnDrift(
        column=name, kind="numerical", test="ks", statistic=0.0, p_value=p, score=p,
        threshold=0.05, drifted=p <= 0.05, status="ok", rows_reference=100, rows_current=100,
        dropped_current=0,
    )  # fmt: skip


# The textbook example: 10 p-values, alpha 5%.
P_VALUES = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]


def test_bonferroni_on_constructed_p_values() -> None:
    cols = [column(f"c{i}", p) for i, p in enumerate(P_VALUES)]
    cols = correct_p_values(cols, "bonferroni", 0.05)
    assert [c.column for c in cols if c.drifted] == ["c0"]  # only p <= 0.005
    assert all(c.threshold == pytest.approx(0.005) for c in cols)


def test_benjamini_hochberg_on_constructed_p_values() -> None:
    cols = [column(f"c{i}", p) for i, p in enumerate(reversed(P_VALUES))]  # order must not matter
    cols = correct_p_values(cols, "bh", 0.05)
    # p_(2) = 0.008 <= 2 * 0.05 / 10; p_(3) = 0.039 > 0.015, and no later p_(k) <= k * 0.005.
    assert sorted(c.p_value for c in cols if c.drifted) == [0.001, 0.008]
    assert all(c.threshold == pytest.approx(0.01) for c in cols)
    # A step-up: p_(4) = 0.019 <= 0.02 rejects the three before it too, though 0.018 > 0.015.
    cols = [column(f"d{i}", p) for i, p in enumerate([0.001, 0.009, 0.018, 0.019, 0.5, 0.9])]
    cols = correct_p_values(cols, "bh", 0.03)
    assert [c.drifted for c in cols] == [True, True, True, True, False, False]
    nothing = [column(f"e{i}", p) for i, p in enumerate([0.02, 0.3, 0.7])]
    nothing = correct_p_values(nothing, "bh", 0.05)
    assert not any(c.drifted for c in nothing)


def test_bonferroni_and_bh_detectors_pick_p_value_tests_and_hold_the_rate() -> None:
    rng = np.random.default_rng(2)
    reference = source(20_000, rng)
    quiet = [source(500, rng) for _ in range(300)]
    for method in ("bonferroni", "bh"):
        det = DriftDetector(
            numerical=["x", "y", "z"], categorical=["c"], method=method, alpha=0.05
        ).fit(reference)
        result = det.check(quiet[0])
        assert {c.column: c.test for c in result.columns} == {
            "x": "ks",
            "y": "ks",
            "z": "chi2_contingency",
            "c": "chi2_contingency",
        }
        assert alarm_rate(det, quiet) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 300)
        assert det.check(source(500, rng, shift=0.4)).dataset_drift


# -- the files the monitor and `driftwatch calibrate` read and write -----------------------------


def test_pinned_thresholds_survive_recalibration(make_config: Callable[..., Path]) -> None:
    config = make_config(
        drift={
            "columns": {"temp": {"threshold": 0.5}},
            "calibration": {"batches": 300, "batch_rows": 1000},
        }
    )
    plan = Plan.load(config)
    settings = plan.settings
    ref = active_reference(plan)
    frame = ReferenceFiles(plan).frame(ref)
    first, path = write_calibration(plan, frame, ref, 1000)
    assert path == settings.drift.calibration.file and path.is_file()
    assert first.columns["temp"].threshold == 0.5 and first.columns["temp"].pinned
    assert first.reference_sha256 == ref.sha256 and first.batch_rows == 1000
    # The user pins a calibrated value by hand in the file; recalibration keeps it.
    raw = yaml.safe_load(path.read_text())
    raw["columns"]["carrier"]["threshold"] = 0.3
    raw["columns"]["carrier"]["pinned"] = True
    path.write_text(yaml.safe_dump(raw))
    second, _ = write_calibration(plan, frame, ref, 1000)
    assert second.columns["carrier"].threshold == 0.3 and second.columns["carrier"].pinned
    assert second.columns["temp"].threshold == 0.5
    free = [c for c, t in second.columns.items() if not t.pinned]
    assert free and all(second.columns[c].threshold > 0 for c in free)


def test_monitor_uses_a_matching_file_and_recalibrates_when_the_reference_moves(
    make_config: Callable[..., Path], january: pd.DataFrame, tmp_path: Path
) -> None:
    config = make_config(drift={"calibration": {"batches": 200}})
    plan = Plan.load(config)
    settings = plan.settings
    references = ReferenceFiles(plan)
    ref = active_reference(plan)
    written, _ = write_calibration(plan, references.frame(ref), ref, plan.calibration_rows(1000))
    found = CalibrationStore(plan, references).thresholds(ref, 1000)
    assert found.key == written.key and not list((settings.paths.state).glob("calibration/*"))
    # Another batch size: computed once, cached under the state dir, then reused.
    other = CalibrationStore(plan, references).thresholds(ref, 300)
    assert other.batch_rows == size_bucket(300) and other.key != written.key
    (cached,) = (settings.paths.state / "calibration").glob("*.yaml")
    assert Calibration.load(cached).key == other.key
    assert CalibrationStore(plan, references).thresholds(ref, 300).created == other.created
    # Batches above drift.calibration.max_batch_rows share the cap's thresholds (bounded cost).
    assert plan.calibration_rows(20_000) == plan.calibration_rows(100_000) == size_bucket(2000)
    # The reference moves (a promotion): the file no longer applies.
    moved = tmp_path / "reference-v2.parquet"
    january.iloc[::2].to_parquet(moved)
    new = CalibrationStore(plan, references).thresholds(active_reference(plan, str(moved)), 1000)
    assert new.key != written.key and new.reference_sha256 != written.reference_sha256


def test_unreadable_calibration_file_is_named_and_recalibrated(
    make_config: Callable[..., Path],
) -> None:
    config = make_config(drift={"calibration": {"batches": 200}})
    plan = Plan.load(config)
    settings = plan.settings
    settings.drift.calibration.file.write_text("columns: [not, a, mapping\n")
    with pytest.raises(ValueError, match=r"calibration\.yaml: unreadable calibration file"):
        Calibration.load(settings.drift.calibration.file)
    cal = CalibrationStore(plan, ReferenceFiles(plan)).thresholds(active_reference(plan), 2000)
    assert cal.columns and cal.batch_rows == plan.calibration_rows(2000)


def test_batches_where_a_column_cannot_be_tested_are_not_alarms() -> None:
    """80% of y missing, 45-row batches, min_rows 30: y is (almost) never testable."""
    rng = np.random.default_rng(13)
    reference = source(8_000, rng)
    reference.loc[rng.random(8_000) < 0.8, "y"] = np.nan
    cal = ThresholdCalibrator(detector(), batch_rows=45, batches=1000).fit(reference)
    y = list(cal.columns_).index("y")
    assert np.isnan(cal.null_[:, y]).mean() > 0.99  # resampled batches could not test y
    assert cal.in_sample_alarms_ <= cal.allowed_alarms_
    x = list(cal.columns_).index("x")
    # The shared level is not collapsed to "above everything" by the untestable batches.
    assert cal.thresholds_["x"].threshold < np.nanmax(cal.null_[:, x])
    y_t = cal.thresholds_["y"]
    assert y_t.threshold is None and "too few to estimate its threshold" in y_t.reason  # said so
    assert any("column 'y'" in w and "not judged" in w for w in cal.warnings_)
    # ... and the detector reports y "insufficient data" with that reason, never a silent ok.
    tests = {c: t for c, t in rules_of(cal).items()}
    fitted = detector(tests=tests).fit(reference)
    batch = source(45, rng)
    col = fitted.check(batch).column("y")
    assert col.status == "insufficient_data" and "too few to estimate" in col.note


def rules_of(cal: ThresholdCalibrator) -> dict:
    from driftwatch.engine.rules import ColumnRule

    return {
        c: ColumnRule(test=t.test, threshold=t.threshold, pinned=t.pinned, reason=t.reason)
        for c, t in cal.thresholds_.items()
    }


def fitted_tests(fitted: ThresholdCalibrator) -> dict[str, tuple[str, float]]:
    return {c: (t.test, t.threshold) for c, t in fitted.thresholds_.items()}


def test_bh_cutoff_matches_the_step_up_rule_on_random_families() -> None:
    """scipy's adjusted p-values give the same cut-off as the textbook step-up definition."""
    from driftwatch.engine.rules import rule_for

    def p_value_cutoff(ps: list[float | None], method: str, alpha: float) -> float:
        return rule_for(method, alpha).cutoff(ps)

    def step_up(ps: list[float | None], alpha: float) -> float:
        s = sorted(1.0 if p is None else p for p in ps)
        m = len(s)
        passing = [k for k, p in enumerate(s, start=1) if p <= k * alpha / m]
        return max(passing) * alpha / m if passing else alpha / m

    rng = np.random.default_rng(7)
    for _ in range(500):
        m = int(rng.integers(1, 30))
        ps: list[float | None] = list(rng.uniform(0, 0.2, m) ** rng.uniform(1, 3))
        ps[0] = None if rng.random() < 0.2 else ps[0]
        ps += ps[: int(rng.integers(0, 3))]  # ties
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        got = p_value_cutoff(ps, "bh", alpha)
        assert got == pytest.approx(step_up(ps, alpha), rel=1e-12)
        assert sum(p is not None and p <= got for p in ps) == sum(
            p is not None and p <= step_up(ps, alpha) for p in ps
        )
    assert p_value_cutoff([], "bh", 0.05) == 0.05


@pytest.mark.slow
def test_recalibration_with_five_seeds_is_within_the_stated_uncertainty() -> None:
    """random_state 0-4: thresholds within a few of their own standard errors; detection moves
    by a few points where it is most sensitive (a shift caught about 2 times in 3) and less
    where a monitor operates (caught ~95%). With thresholds at the sample maximum it moved by
    more than 20 points."""
    rows = 300
    rng = np.random.default_rng(21)
    reference = source(20_000, rng)
    fits = [
        ThresholdCalibrator(detector(), batch_rows=rows, random_state=seed).fit(reference)
        for seed in range(5)
    ]
    for c in "xyzc":
        values = np.array([f.thresholds_[c].threshold for f in fits])
        se = np.median([f.thresholds_[c].threshold_se for f in fits])
        assert 0 < se < 0.05 * values.mean(), c  # the uncertainty is stated, and small
        assert np.abs(values - values.mean()).max() <= 3 * se, (c, values, se)
    fitted = [detector(tests=rules_of(f)).fit(reference) for f in fits]
    quiet = [source(rows, rng) for _ in range(300)]
    false_alarms = [alarm_rate(d, quiet) for d in fitted]
    assert max(false_alarms) <= 0.01 + 3 * np.sqrt(0.01 * 0.99 / 300), false_alarms
    for shift, mean_range, spread in ((0.22, (0.4, 0.85), 0.10), (0.3, (0.9, 1.0), 0.05)):
        shifted = [source(rows, rng, shift=shift) for _ in range(300)]
        detection = [alarm_rate(d, shifted) for d in fitted]
        assert mean_range[0] < np.mean(detection) <= mean_range[1], (shift, detection)
        assert max(detection) - min(detection) <= spread, (shift, detection)


def test_wasserstein_from_sorted_codes_equals_the_count_matrix_form() -> None:
    """The O(rows) path for columns with many distinct values gives the same W1 as the
    O(distinct values) one (including missing values and batches of repeated values)."""
    from driftwatch.engine.calibration import _wasserstein_codes, _wasserstein_counts

    rng = np.random.default_rng(4)
    values = np.unique(rng.normal(size=5000).round(3))
    ref_counts = rng.integers(0, 5, values.size)
    codes = rng.integers(-1, values.size, size=(40, 150))
    codes[0] = 7  # one value repeated
    valid = codes >= 0
    offsets = (np.arange(40) * values.size)[:, None]
    counts = np.bincount((codes + offsets)[valid], minlength=40 * values.size)
    expected = _wasserstein_counts(
        values, ref_counts, counts.reshape(40, values.size), valid.sum(axis=1)
    )
    np.testing.assert_allclose(_wasserstein_codes(values, ref_counts, codes), expected, atol=1e-12)
