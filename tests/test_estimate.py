"""Estimated performance without labels (issue 18): the estimators on synthetic data whose
truth is known, so every claim is checked against the analytic answer or the realised metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftwatch.model.estimate import (
    ConfidenceEstimator,
    Estimate,
    LossEstimator,
    fit_estimator,
)


def _regression(rng: np.random.Generator, n: int, lo: float = 0, hi: float = 10) -> tuple:
    """y = 2x + z + noise, the noise three times larger where x > 7; the "model" is 2x + z."""
    x = rng.uniform(lo, hi, n)
    z = rng.normal(size=n)
    cat = rng.choice(["a", "b", "c"], n)
    y = 2 * x + z + rng.normal(size=n) * np.where(x > 7, 3.0, 1.0)
    return pd.DataFrame({"x": x, "z": z, "cat": cat}), y, 2 * x + z


@pytest.fixture(scope="module")
def loss_estimator() -> LossEstimator:
    X, y, p = _regression(np.random.default_rng(0), 4000)
    return LossEstimator("rmse", level=0.9).fit(X, y, p)


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def test_noisy_region_raises_the_estimate_and_the_truth_is_inside(loss_estimator):
    rng = np.random.default_rng(1)
    Xq, _, pq = _regression(rng, 500, 0, 7)  # quiet region: noise sd 1
    quiet = loss_estimator.estimate(Xq, pq)
    assert quiet.reliable and quiet.value == pytest.approx(1.0, abs=0.1)  # the noise sd
    inside = 0
    for _ in range(20):
        Xs, ys, ps = _regression(rng, 500, 7, 10)  # shifted into the noisy region: noise sd 3
        est = loss_estimator.estimate(Xs, ps)
        assert est.reliable, est.reason  # x in [7, 10] lies inside the holdout's range
        assert est.value > 2 * quiet.value and est.excludes(quiet.value)
        inside += est.low <= _rmse(ys, ps) <= est.high
    assert inside >= 16  # a 90% interval: 18 of 20 expected


def test_interval_covers_about_its_level_on_data_like_the_holdout(loss_estimator):
    rng = np.random.default_rng(2)
    hits = []
    for _ in range(100):
        X, y, p = _regression(rng, 200)
        est = loss_estimator.estimate(X, p)
        hits.append(est.low <= _rmse(y, p) <= est.high)
    assert 0.8 <= np.mean(hits) <= 0.99
    # The interval narrows as the batch grows (sampling noise shrinks with rows).
    X, _, p = _regression(rng, 4000)
    assert (lambda e: e.high - e.low)(loss_estimator.estimate(X, p)) < est.high - est.low


def test_interval_widens_away_from_the_holdout_mostly_upward_and_keeps_a_floor(loss_estimator):
    """Away from the holdout the loss model errs more, mostly low (a stale model's concept
    drift no feature shows: 2013's winds), and a day's errors do not shrink with its rows: the
    RMSE interval widens with the batch's distance from the holdout, more above than below,
    and never narrows to nothing (README, "Estimated performance")."""
    rng = np.random.default_rng(8)
    X, _, p = _regression(rng, 2000, 0, 7)
    near = loss_estimator.estimate(X, p)
    moved = X.assign(z=X["z"] + 1.0)  # z moved by one holdout sd; the loss does not depend on z
    far = loss_estimator.estimate(moved, p)
    assert loss_estimator.support_.distance(X) < 0.35 < loss_estimator.support_.distance(moved)
    assert far.value == pytest.approx(near.value, rel=0.05)  # same loss, same estimate
    assert far.high - far.value > near.high - near.value  # wider above
    assert far.value - far.low > near.value - near.low  # and below
    assert (far.high / far.value) / (near.high / near.value) > (near.low / near.value) / (
        far.low / far.value
    )  # more above than below
    # A batch as big as the holdout itself still has an interval worth its name.
    Xb, _, pb = _regression(rng, 20_000)
    big = loss_estimator.estimate(Xb, pb)
    assert big.high / big.value > 1.05


def test_covariate_shift_that_keeps_the_loss_keeps_the_estimate():
    """x moves (feature drift), the noise depends on z only: the model's error does not move."""
    rng = np.random.default_rng(3)

    def make(n: int, lo: float, hi: float) -> tuple:
        x, z = rng.uniform(lo, hi, n), rng.normal(size=n)
        y = 2 * x + rng.normal(size=n) * np.where(z > 1, 2.0, 1.0)
        return pd.DataFrame({"x": x, "z": z}), y, 2 * x

    est = LossEstimator().fit(*make(4000, 0, 10))
    X, y, p = make(1000, 0, 3)  # the batch sits in the lowest 30% of x
    from scipy.stats import ks_2samp

    assert ks_2samp(X["x"], rng.uniform(0, 10, 4000)).pvalue < 1e-6  # drift is real
    got = est.estimate(X, p)
    assert got.reliable
    assert abs(got.value / est.holdout_value_ - 1) < 0.10  # within quality's default tolerance
    assert got.low <= _rmse(y, p) <= got.high


def test_batch_outside_the_holdout_support_is_flagged_naming_the_columns(loss_estimator):
    rng = np.random.default_rng(4)
    X, _, p = _regression(rng, 300, 12, 15)
    X.loc[: len(X) // 2, "cat"] = "new-category"
    est = loss_estimator.estimate(X, p)
    assert not est.reliable
    assert "x 100%" in est.reason and "cat" in est.reason and "z" not in est.reason.split(":")[-1]
    assert est.to_dict()["reliable"] is False


def test_mae_and_the_log_line(loss_estimator):
    rng = np.random.default_rng(5)
    X, y, p = _regression(rng, 3000)
    mae = LossEstimator("mae").fit(X, y, p)
    Xb, yb, pb = _regression(rng, 800)
    est = mae.estimate(Xb, pb)
    assert est.low <= float(np.mean(np.abs(yb - pb))) <= est.high
    line = loss_estimator.estimate(Xb, pb).line()
    assert line.startswith("estimated rmse ") and "on 800 rows (reliable)" in line


def _known_probability(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores s ~ U(0, 1) with true P(y = 1 | s) = s^2: miscalibrated, so the estimator must
    calibrate them to get the expectation right."""
    s = rng.uniform(0, 1, n)
    return s, (rng.uniform(size=n) < s**2).astype(int)


def test_classification_expected_accuracy_is_the_analytic_one():
    rng = np.random.default_rng(6)
    est = ConfidenceEstimator("accuracy").fit(*reversed(_known_probability(rng, 20000)))
    assert est.calibration_ == ["isotonic"]
    s, _ = _known_probability(rng, 5000)
    analytic = float(np.mean(np.where(s >= 0.5, s**2, 1 - s**2)))
    got = est.estimate(s)
    assert abs(got.value - analytic) < 0.01
    assert got.low < analytic < got.high
    # Where the model is confident and right (s near 0), accuracy is near 1.
    low_scores = s[s < 0.3]
    assert est.estimate(low_scores).value == pytest.approx(
        float(np.mean(1 - low_scores**2)), abs=0.01
    )


def test_classification_expected_roc_auc_and_f1_track_the_realised():
    from sklearn import metrics as skm

    rng = np.random.default_rng(7)
    s, y = _known_probability(rng, 20000)
    auc = ConfidenceEstimator("roc_auc").fit(y, s)
    f1 = fit_estimator("binary", "f1", None, y, s)
    hits_auc, hits_f1 = [], []
    for _ in range(30):
        sb, yb = _known_probability(rng, 1000)
        e_auc, e_f1 = auc.estimate(sb), f1.estimate(sb)
        hits_auc.append(e_auc.low <= skm.roc_auc_score(yb, sb) <= e_auc.high)
        hits_f1.append(e_f1.low <= skm.f1_score(yb, sb >= 0.5) <= e_f1.high)
    assert np.mean(hits_auc) >= 0.75 and np.mean(hits_f1) >= 0.75
    # Expected AUC of s against labels drawn from s^2: P(s_pos > s_neg) with densities 3s^2
    # and (1 - s^2) * 3/2 on [0, 1] = 4.5 * (1/4 - 1/18) = 0.875 exactly.
    assert auc.estimate(rng.uniform(0, 1, 50000)).value == pytest.approx(0.875, abs=0.005)


def test_multiclass_expected_accuracy_with_calibrated_probabilities():
    rng = np.random.default_rng(8)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        logits = rng.normal(size=(n, 3)) * 1.5
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.array([rng.choice(3, p=row) for row in p])
        return p, y

    p, y = make(6000)
    est = ConfidenceEstimator("accuracy", classes=[0, 1, 2]).fit(y, p)
    pb, _ = make(3000)
    analytic = float(np.mean(pb.max(axis=1)))  # calibrated already: P(correct) = max proba
    assert est.estimate(pb).value == pytest.approx(analytic, abs=0.015)


def test_bad_inputs_get_one_clear_line():
    with pytest.raises(ValueError, match="metric 'auc'"):
        LossEstimator("auc")
    with pytest.raises(ValueError, match="rows differ"):
        LossEstimator().fit(pd.DataFrame({"x": [1.0, 2.0]}), [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown task"):
        fit_estimator("ranking", "rmse", None, [], [])
    assert Estimate("rmse", 1, 0.5, 2, 0.9, 10, True, None).excludes(2.5)


def test_an_estimator_stored_before_the_widening_is_fitted_again(loss_estimator):
    """A loss estimator stored by an older driftwatch (no holdout centres: its interval would
    not widen away from the holdout) is not current, so the monitor fits its champion a new
    one where the window is at hand (``MonitorCycle.champion_estimator``)."""
    import copy

    from driftwatch.monitor.estimated import is_current

    assert is_current(loss_estimator)
    old = copy.deepcopy(loss_estimator)
    del old.support_.centres_
    assert not is_current(old)
    assert old.support_.distance(pd.DataFrame({"x": [100.0]})) == 0.0
