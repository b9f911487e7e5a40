"""Building, training and scoring the monitored model from the config's model spec.

The estimator is configuration: a named built-in pipeline or ``package.module:factory``
returning any scikit-learn estimator, so users can monitor their own model without forking.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from driftwatch.config import ModelSettings, label_problem
from driftwatch.errors import ConfigError


def _hist_gradient_boosting(
    spec: ModelSettings, params: dict[str, Any], random_state: int = 0
) -> BaseEstimator:
    n_num, n_cat = len(spec.numerical), len(spec.categorical)
    encode = ColumnTransformer(
        [
            ("num", "passthrough", spec.numerical),
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                ),
                spec.categorical,
            ),
        ]
    )
    cat_mask = [False] * n_num + [True] * n_cat
    kw: dict[str, Any] = {"categorical_features": cat_mask, "random_state": random_state, **params}
    est = (
        HistGradientBoostingRegressor(**kw)
        if spec.family == "regression"
        else HistGradientBoostingClassifier(**kw)
    )
    return Pipeline([("encode", encode), ("model", est)])


def _linear(spec: ModelSettings, params: dict[str, Any], random_state: int = 0) -> BaseEstimator:
    """One-hot + linear model, the classic taxi-duration baseline."""
    encode = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), spec.numerical),
            ("cat", OneHotEncoder(handle_unknown="ignore"), spec.categorical),
        ]
    )
    # Ridge uses its seed only with the sag/saga solvers, LogisticRegression with liblinear,
    # sag and saga: set anyway, so a solver change in model.params stays reproducible.
    kw: dict[str, Any] = {"random_state": random_state, **params}
    est = (
        Ridge(**kw)
        if spec.family == "regression"
        else LogisticRegression(**{"max_iter": 500, **kw})
    )
    return Pipeline([("encode", encode), ("model", est)])


# Each takes (spec, params, random_state); a random_state in model.params wins over the argument.
BUILTIN_ESTIMATORS: dict[str, Callable[[ModelSettings, dict[str, Any], int], BaseEstimator]] = {
    "hist_gradient_boosting": _hist_gradient_boosting,
    "linear": _linear,
}


def build_estimator(spec: ModelSettings, *, random_state: int = 0) -> BaseEstimator:
    """The configured estimator, unfitted. ``random_state`` (``retrain.random_state``) seeds the
    built-in pipelines; a factory's estimator gets only its ``model.params``."""
    if spec.estimator in BUILTIN_ESTIMATORS:
        return BUILTIN_ESTIMATORS[spec.estimator](spec, dict(spec.params), random_state)
    if ":" not in spec.estimator:
        raise ConfigError(
            f"model.estimator: unknown estimator {spec.estimator!r}; use one of "
            f"{sorted(BUILTIN_ESTIMATORS)} or 'package.module:factory'"
        )
    module_name, _, attr = spec.estimator.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"model.estimator: cannot import {spec.estimator!r}: {exc}") from None
    est = factory(**spec.params)
    if not (hasattr(est, "fit") and hasattr(est, "predict")):
        raise ConfigError(f"model.estimator: {spec.estimator!r} did not return an estimator")
    return est


def features(frame: pd.DataFrame, spec: ModelSettings) -> pd.DataFrame:
    return frame[spec.features]


def target(frame: pd.DataFrame, spec: ModelSettings) -> pd.Series:
    """The label: the target itself, or ``target > target_threshold`` for a binary task."""
    y = frame[spec.target]
    if spec.task == "binary" and spec.target_threshold is not None:
        return (y > spec.target_threshold).astype(np.int64).where(y.notna())
    return y


def train(
    frame: pd.DataFrame,
    spec: ModelSettings,
    *,
    random_state: int = 0,
    sample_weight: np.ndarray | None = None,
) -> BaseEstimator:
    """Fit on the labelled rows of ``frame``; unlabelled rows cannot teach anything.

    ``random_state``: pass ``settings.retrain.random_state``. ``sample_weight``: one weight per
    row of ``frame`` (``retrain.half_life_days``), or None; an estimator whose fit cannot take
    weights is refused with a ConfigError rather than trained unweighted behind the setting's
    back."""
    mask = frame[spec.target].notna().to_numpy()
    rows = frame[mask]
    if rows.empty:
        raise ValueError("no labelled rows to train on")
    y = target(rows, spec)
    if spec.family == "classification":
        y = class_labels(y, spec)
    est = build_estimator(spec, random_state=random_state)
    if sample_weight is None:
        est.fit(features(rows, spec), y)
        return est
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (len(frame),):
        raise ValueError(f"sample_weight has {weights.shape} values for {len(frame)} rows")
    est.fit(features(rows, spec), y, **{weight_param(est, spec): weights[mask]})
    return est


def weight_param(est: Any, spec: ModelSettings) -> str:
    """The fit keyword that takes sample weights: ``sample_weight`` for a plain estimator,
    ``<last step>__sample_weight`` for a Pipeline (which routes ``step__param`` to that step's
    fit). A ConfigError naming the settings when the (final) estimator's fit has no such
    parameter: weights asked for must not be dropped silently."""
    from sklearn.utils.validation import has_fit_parameter

    name, final = "", est
    if isinstance(est, Pipeline):
        name, final = est.steps[-1][0], est.steps[-1][1]
    if not has_fit_parameter(final, "sample_weight"):
        raise ConfigError(
            f"retrain.half_life_days is set but model.estimator {spec.estimator!r}"
            f" ({type(final).__name__}) takes no sample_weight in fit; set"
            " retrain.half_life_days: null or use an estimator that accepts weights"
        )
    return f"{name}__sample_weight" if name else "sample_weight"


def class_labels(y: pd.Series, spec: ModelSettings) -> pd.Series:
    """Integer class labels of a classification task, or a ConfigError naming the setting that
    does not fit the data (:func:`driftwatch.config.label_problem`): a run would otherwise fail
    deep inside scikit-learn (a 3-class target under binary: ``average='binary'``)."""
    problem = label_problem(y.dropna().to_numpy(dtype=np.float64), spec)
    if problem:
        raise ConfigError(problem)
    return y.astype(np.int64)


def predict(model: Any, frame: pd.DataFrame, spec: ModelSettings) -> np.ndarray:
    """Predictions to monitor (one number a row, kept in history with the row): the value for
    regression, P(label 1) for binary, the predicted class for multiclass (its probabilities
    are :func:`predict_proba`'s, used where the model itself is at hand: holdout scores)."""
    x = features(frame, spec)
    if spec.task == "binary" and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(x))
        classes = list(getattr(model, "classes_", range(proba.shape[1])))
        return proba[:, classes.index(1)] if 1 in classes else proba[:, -1]
    return np.asarray(model.predict(x), dtype=np.float64)


def predict_proba(model: Any, frame: pd.DataFrame, spec: ModelSettings) -> tuple[Any, Any] | None:
    """Class probabilities and the classes they are for, or None (no ``predict_proba``)."""
    if spec.family != "classification" or not hasattr(model, "predict_proba"):
        return None
    proba = np.asarray(model.predict_proba(features(frame, spec)))
    return proba, np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])))
