"""Estimated performance without labels (issue 18): the estimators on synthetic data whose
truth is known, so every claim is checked against the analytic answer or the realised metric."""

from __future__ import annotations

from itertools import pairwise

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


def test_interval_covers_about_its_level_on_data_like_the_holdout(loss_estimator, monkeypatch):
    """The holdout-measured interval (the widening's floors set to 0: on data like the holdout
    the excess distance is ~0) holds about its level; the shipped floors, chosen for batches
    months from the holdout, only add to it."""
    from driftwatch.model import estimate as E

    rng = np.random.default_rng(2)
    hits, wide = [], []
    for _ in range(100):
        X, y, p = _regression(rng, 200)
        r = _rmse(y, p)
        wide.append(loss_estimator.estimate(X, p).low <= r <= loss_estimator.estimate(X, p).high)
        with monkeypatch.context() as m:
            m.setattr(E, "_SHIFT_FLOOR", 0.0)
            m.setattr(E, "_SHIFT_FLOOR_LOW", 0.0)
            est = loss_estimator.estimate(X, p)
        hits.append(est.low <= r <= est.high)
    assert 0.8 <= np.mean(hits) <= 0.99
    assert np.mean(wide) >= np.mean(hits)
    # The measured interval narrows as the batch grows (sampling noise shrinks with rows).
    X, _, p = _regression(rng, 4000)
    monkeypatch.setattr(E, "_SHIFT_FLOOR", 0.0)
    monkeypatch.setattr(E, "_SHIFT_FLOOR_LOW", 0.0)
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


def test_chance_distance_of_short_holdout_like_batches_gives_almost_no_widening(loss_estimator):
    """A short batch's mean moves by chance even when its rows are like the holdout's: the
    estimator learns that distance per batch size at fit (contiguous holdout blocks) and widens
    only by what lies beyond it, so a 40-row batch like the holdout gets the interval of a
    batch at distance 0, while a 40-row batch moved by one sd still widens."""
    from driftwatch.model.estimate import beyond_chance

    est = loss_estimator
    chance = est.chance_distance_
    assert chance.rows_[0] == 10 and chance.rows_ == sorted(chance.rows_)
    # i.i.d. rows: a mean's chance move shrinks with rows (~1/sqrt(rows)).
    assert chance.at(10) > 2 * chance.at(1000) > 0
    assert chance.at(40) == pytest.approx(
        float(np.interp(np.log(40), np.log(chance.rows_), chance.distance_))
    )
    rng = np.random.default_rng(11)
    raw, excess, moved_excess, near_w, moved_w = [], [], [], [], []
    for _ in range(60):
        X, _, p = _regression(rng, 40)
        d = est.support_.distance(X)
        raw.append(d)
        excess.append(beyond_chance(chance, d, 40))
        e = est.estimate(X, p)
        near_w.append(np.log(e.high / e.low))
        moved = X.assign(z=X["z"] + 1.0)  # z moved by one holdout sd, the loss does not depend on z
        moved_excess.append(beyond_chance(chance, est.support_.distance(moved), 40))
        m = est.estimate(moved, p)
        moved_w.append(np.log(m.high / m.low))
    assert np.median(raw) > 0.08  # the chance part is real at 40 rows...
    assert np.median(excess) == 0.0 and np.mean(np.array(excess) > 0.1) < 0.15  # ...and removed
    assert np.median(moved_excess) > 0.3  # a real move is kept
    assert np.median(moved_w) > np.median(near_w)  # and widens the interval


def test_the_big_batch_sums_path_equals_the_in_memory_one(loss_estimator):
    """A big batch's estimate is merged from its partitions' sums (``LossEstimator.sums``,
    ``LossSums.merge``, ``from_sums``): the chance distance is read at the merged rows, so the
    interval is the in-memory one, for a short batch and a long shifted one."""
    rng = np.random.default_rng(12)
    for n, shift in ((45, 0.0), (3000, 0.8)):
        X, _, p = _regression(rng, n)
        X = X.assign(z=X["z"] + shift)
        whole = loss_estimator.estimate(X, p)
        cuts = [0, n // 3, n // 2, n]
        parts = [loss_estimator.sums(X.iloc[a:b], p[a:b]) for a, b in pairwise(cuts)]
        merged = parts[0].merge(parts[1]).merge(parts[2])
        got = loss_estimator.from_sums(merged)
        assert got.rows == whole.rows == n
        for f in ("value", "low", "high"):
            assert getattr(got, f) == pytest.approx(getattr(whole, f), rel=1e-9)


def test_cbpe_interval_widens_on_a_covariate_shift(monkeypatch):
    """CBPE's interval, too, widens away from the holdout (on the logit scale, both sides):
    scores keep their calibration but the batch's feature moved by 1.5 holdout sd, so the
    calibration map is asked about rows it learnt from few of. A batch like the holdout gets its
    measured interval with the floor in quadrature and (nearly) nothing for distance, and the
    ends never leave [0, 1]."""
    from driftwatch.model import estimate as E

    rng = np.random.default_rng(13)

    def make(n: int, shift: float = 0.0) -> tuple:
        x = rng.normal(shift, 1.0, n)
        s = 1 / (1 + np.exp(-x))
        y = (rng.uniform(size=n) < s).astype(int)
        return pd.DataFrame({"x": x}), y, s

    X, y, s = make(4000)
    est = ConfidenceEstimator("roc_auc").fit(y, s, X=X)
    assert est.chance_distance_.rows_
    Xn, _, sn = make(400)
    Xf, _, sf = make(400, shift=1.5)
    near, far = est.estimate(sn, X=Xn), est.estimate(sf, X=Xf)
    assert E._CBPE_SLOPE > 0 and E._CBPE_FLOOR >= 0
    # A batch like the holdout: its measured interval (the widening off) with the floor in
    # quadrature, and at most a tenth of a slope for distance beyond chance.
    with monkeypatch.context() as m:
        m.setattr(E, "_CBPE_FLOOR", 0.0)
        m.setattr(E, "_CBPE_SLOPE", 0.0)
        measured = est.estimate(sn, X=Xn)
    floor_only = E.widen_logit(
        near.value, measured.low, measured.high, est.multiplier_, 0.0, E._CBPE_FLOOR, 0.0
    )
    lv, (a, b) = E._logit(np.array([near.value]))[0], E._logit(np.array(floor_only))
    assert (
        E._logit(np.array([near.low]))[0] <= a + 1e-9
        and b <= E._logit(np.array([near.high]))[0] + 1e-9
    )
    assert lv - E._logit(np.array([near.low]))[0] <= lv - a + 0.1 * E._CBPE_SLOPE
    assert E._logit(np.array([near.high]))[0] - lv <= b - lv + 0.1 * E._CBPE_SLOPE
    w_near = E._logit(np.array([near.high]))[0] - E._logit(np.array([near.low]))[0]
    w_far = E._logit(np.array([far.high]))[0] - E._logit(np.array([far.low]))[0]
    assert w_far > w_near + E._CBPE_SLOPE  # 1.5 sd beyond chance: > one slope's worth wider
    assert far.low < far.value < far.high
    assert far.low >= 0.0 and far.high <= 1.0
    # An accuracy of 1 stays inside [0, 1] however far the batch is.
    assert E.widen_logit(1.0, 0.99, 1.0, 1.645, 5.0, 0.5, 1.0)[1] <= 1.0


def test_an_estimator_stored_before_the_chance_distance_is_fitted_again(loss_estimator):
    """An estimator stored before the chance distance was learnt is not current (the monitor
    fits its champion a new one where the window is at hand); until then it still estimates,
    widening by the whole distance as before. Both kinds; and skops loads the new state."""
    import copy

    import skops.io as sio

    from driftwatch.monitor.estimated import is_current

    rng = np.random.default_rng(14)
    X, _, p = _regression(rng, 40)
    old = copy.deepcopy(loss_estimator)
    del old.chance_distance_
    assert not is_current(old) and is_current(loss_estimator)
    was, now = old.estimate(X, p), loss_estimator.estimate(X, p)
    assert was.value == now.value and was.high >= now.high
    s, yb = _known_probability(rng, 2000)
    cbpe = ConfidenceEstimator("roc_auc").fit(yb, s, X=pd.DataFrame({"s": s}))
    old_cbpe = copy.deepcopy(cbpe)
    del old_cbpe.chance_distance_
    assert is_current(cbpe) and not is_current(old_cbpe)
    assert old_cbpe.estimate(s[:50], X=pd.DataFrame({"s": s[:50]})).value == pytest.approx(
        cbpe.estimate(s[:50], X=pd.DataFrame({"s": s[:50]})).value
    )
    data = sio.dumps(loss_estimator)
    types = sio.get_untrusted_types(data=data)
    from driftwatch.store.registry import _ESTIMATOR_TYPES

    assert all(t.startswith(_ESTIMATOR_TYPES) for t in types)
    back = sio.loads(data, trusted=types)
    assert back.chance_distance_ == loss_estimator.chance_distance_
    assert back.estimate(X, p) == now
