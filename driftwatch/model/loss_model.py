"""The loss model of Direct Loss Estimation: LightGBM at its defaults, kept as LightGBM's text.

Why LightGBM and not scikit-learn's ``HistGradientBoostingRegressor`` (which the champion
uses): with the same capacity (31 leaves of at least 20 rows, learning rate 0.1, 100 rounds,
no L2, no early stopping) LightGBM predicted a held-out block's RMSE better on the holdouts of
three of four 2013 champions (5 contiguous folds, each predicted by a model fitted on the
others: mean absolute error over days 6.24 against 6.79, summed over the four champions;
over 6-hour blocks 7.71 against 8.33), and the difference is its regularisation of
categorical splits (``cat_smooth``, ``cat_l2``: without them its holdout error rose on all
four), which HistGradientBoosting has no setting for. Departure airport, destination (100
values), carrier and weekday are exactly such columns. No other setting tried beat the
defaults on those holdouts, and the defaults are what NannyML's DLE fits
(``benchmarks/estimate_2013.py``).

Storage: the fitted booster is kept as LightGBM's own text format (a string), so the
estimator's skops file holds only driftwatch's classes and plain values (``store/registry.py``
refuses any other type at load); the booster is rebuilt from the text on first use.
lightgbm is imported inside ``fit`` and ``predict`` (``driftwatch --help`` stays instant).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# LightGBM's defaults, spelled out (what ``LGBMRegressor()`` and NannyML's DLE fit); the number
# of rounds is lightgbm.train's ``num_boost_round``.
DEFAULTS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "min_sum_hessian_in_leaf": 1e-3,
    "lambda_l2": 0.0,
    "num_iterations": 100,
}


class LightGBMLoss:
    """A row's expected loss from its features: ``fit(Z, loss)``, ``predict(Z)``.

    ``categorical``: column indices holding category codes (non-negative integers, missing as
    NaN). ``params`` override :data:`DEFAULTS` (LightGBM parameter names). One thread: the
    fits are small and the machine is shared with the monitor's other work (FACTS: threads).
    """

    def __init__(
        self, categorical: list[int] | None = None, random_state: int = 0, **params: Any
    ) -> None:
        self.categorical = categorical
        self.random_state = random_state
        self.params = params

    def _params(self) -> dict[str, Any]:
        return {
            **DEFAULTS,
            "seed": self.random_state,
            "deterministic": True,
            "num_threads": 1,
            "verbosity": -1,
            **self.params,
        }

    def fit(self, Z: np.ndarray, y: np.ndarray) -> LightGBMLoss:
        import lightgbm as lgb

        params = self._params()
        rounds = int(params.pop("num_iterations"))
        data = lgb.Dataset(
            np.asarray(Z, dtype=float),
            np.asarray(y, dtype=float),
            categorical_feature=list(self.categorical or []),
            params={"verbosity": -1},
            free_raw_data=True,
        )
        self._booster = lgb.train(params, data, num_boost_round=rounds)
        self.model_text_ = self._booster.model_to_string()
        return self

    def predict(self, Z: np.ndarray) -> np.ndarray:
        booster = getattr(self, "_booster", None)
        if booster is None:
            import lightgbm as lgb

            booster = self._booster = lgb.Booster(model_str=self.model_text_)
        return np.asarray(booster.predict(np.asarray(Z, dtype=float), num_threads=1))

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the live booster: its text is the stored form."""
        return {k: v for k, v in self.__dict__.items() if k != "_booster"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
