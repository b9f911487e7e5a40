"""Recency weighting of the training window (retrain.half_life_days): the weights, that the
retrain applies them (the backtest and the flow share ``challenge``), and the refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from driftwatch.config import load_settings
from driftwatch.errors import ConfigError
from driftwatch.model.estimators import build_estimator, predict, train, weight_param
from driftwatch.model.schema import labelled
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.window import recency_weights, split_holdout
from tests.test_history import day
from tests.test_pipeline import FAST, WHOLE, memory_cycle


def test_a_row_one_half_life_old_weighs_half_the_newest(make_config: Callable[..., Path]) -> None:
    settings = load_settings(make_config(retrain={"half_life_days": 10}))
    t = pd.to_datetime(["2013-03-01", "2013-03-11", "2013-03-21", None], utc=True)
    w = recency_weights(pd.DataFrame({"time_hour": t}), settings)
    # Newest 1, ten days older 1/2, twenty days older 1/4; a row without a time as the oldest.
    assert w is not None and np.allclose(w, [0.25, 0.5, 1.0, 0.25])
    unweighted = load_settings(make_config())
    assert unweighted.retrain.half_life_days is None  # the default: every row counts the same
    assert recency_weights(pd.DataFrame({"time_hour": t}), unweighted) is None


def test_half_life_needs_a_timestamp_and_a_positive_value(
    make_config: Callable[..., Path],
) -> None:
    with pytest.raises(ConfigError, match=r"retrain.half_life_days \(14\) needs model.timestamp"):
        load_settings(make_config(model={"timestamp": None}, retrain={"half_life_days": 14}))
    with pytest.raises(ConfigError, match="half_life_days"):
        load_settings(make_config(retrain={"half_life_days": 0}))


def test_an_estimator_that_takes_no_weights_is_refused_naming_the_setting(
    make_config: Callable[..., Path],
) -> None:
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    spec = load_settings(make_config()).model
    # The built-in pipelines route the weights to their final step.
    assert weight_param(build_estimator(spec), spec) == "model__sample_weight"
    assert weight_param(Ridge(), spec) == "sample_weight"
    # KNeighborsRegressor's fit has no sample_weight: weights must not be dropped silently.
    for est in (KNeighborsRegressor(), make_pipeline(StandardScaler(), KNeighborsRegressor())):
        with pytest.raises(ConfigError, match=r"retrain.half_life_days is set but model.estim"):
            weight_param(est, spec)


def test_the_retrain_trains_on_the_weighted_window(
    make_config: Callable[..., Path], january: pd.DataFrame, july: pd.DataFrame
) -> None:
    """The challenger and its refit are the weighted fits of the window's rows: the same
    ``challenge`` the flow runs, so the backtest and the monitor train on the same rows with
    the same weights (the slow same-decisions test compares the rows)."""
    items = [
        ("2013-01-15.parquet", day(january, 15)),
        ("2013-07-10.parquet", day(july, 10)),  # drift: the retrain
    ]
    fitted = {}
    for half_life in (None, 3.0):
        plan = Plan.load(
            make_config(
                model=FAST,
                drift=WHOLE,
                retrain={"window_days": 200, "half_life_days": half_life, "promote": "always"},
            )
        )
        cycle, log = memory_cycle(plan, items)
        results = [cycle.run(run_id=label) for label, _ in items]
        assert results[1].retrain is not None and results[1].retrain.promoted
        c = log.challenges[-1]
        s, spec = plan.settings, plan.settings.model
        rows = labelled(c.window, spec)
        assert len(c.train_rows) == len(rows)  # refit on the whole window
        weights = recency_weights(rows, s)
        expected = train(rows, spec, sample_weight=weights)
        probe = day(july, 11)
        assert np.allclose(predict(c.model, probe, spec), predict(expected, probe, spec))
        # The challenger scored on the holdout was the weighted fit of the rows before it.
        before, holdout = split_holdout(c.window, s)
        scored = train(before, spec, sample_weight=recency_weights(before, s))
        err = holdout[spec.target] - predict(scored, holdout, spec)
        assert c.challenger_scores["rmse"] == pytest.approx(float(np.sqrt(np.mean(err**2))))
        fitted[half_life] = predict(c.model, probe, spec)
        if half_life is not None:
            # January rows are months older than July's: they count for almost nothing.
            january_rows = rows["time_hour"].dt.month == 1
            assert weights is not None and weights[january_rows.to_numpy()].max() < 1e-6
    assert not np.allclose(fitted[None], fitted[3.0])
