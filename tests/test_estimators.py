"""The built-in estimators take the configured random state (retrain.random_state)."""

from __future__ import annotations

import pandas as pd
import pytest

from driftwatch.config import load_settings
from driftwatch.model.estimators import BUILTIN_ESTIMATORS, build_estimator, train
from tests.conftest import REFERENCE


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return pd.read_parquet(REFERENCE).dropna(subset=["air_time"]).head(400)


@pytest.mark.parametrize("estimator", sorted(BUILTIN_ESTIMATORS))
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_build_estimator_applies_random_state(make_config, estimator: str, task: str) -> None:
    model = {"estimator": estimator, "task": task, "params": {}}
    quality = {}
    if task == "classification":
        model["target_threshold"] = 150.0
        quality["metric"] = "roc_auc"
    spec = load_settings(make_config(model=model, quality=quality)).model
    assert build_estimator(spec).get_params()["model__random_state"] == 0  # the default stays
    assert build_estimator(spec, random_state=7).get_params()["model__random_state"] == 7


def test_model_params_random_state_wins_over_the_retrain_setting(make_config) -> None:
    spec = load_settings(make_config(model={"params": {"max_iter": 5, "random_state": 3}})).model
    assert build_estimator(spec, random_state=7).get_params()["model__random_state"] == 3


def test_train_passes_random_state_to_the_fitted_model(make_config, rows) -> None:
    spec = load_settings(make_config(model={"params": {"max_iter": 5}})).model
    assert train(rows, spec).get_params()["model__random_state"] == 0
    fitted = train(rows, spec, random_state=11)
    assert fitted.get_params()["model__random_state"] == 11
    assert len(fitted.predict(rows[spec.features])) == len(rows)
