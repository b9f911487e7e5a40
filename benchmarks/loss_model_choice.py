"""Which loss model for Direct Loss Estimation, chosen on the champions' holdouts alone (issue 18).

The regression estimate's loss model (``driftwatch/model/loss_model.py``) was chosen here, on
data the accuracy benchmark (``benchmarks/estimate_2013.py``) never judges: the holdouts of four
2013 champions (January; 60-day windows ending in April, July and October, as the monitor's
are), each cut into 5 contiguous folds in time, each fold's rows predicted by a loss model fitted
on the other four. The figure: the mean absolute error of the estimated RMSE against the
realised one over the holdout's calendar days and 6-hour blocks (blocks of 30+ flights), summed
over the four champions. Candidates: scikit-learn's HistGradientBoostingRegressor with
LightGBM's default settings (31 leaves of 20+ rows, rate 0.1, 100 rounds, no L2, no early
stopping), LightGBM at its defaults (what NannyML's DLE fits), LightGBM without its categorical
regularisation, and a few LightGBM settings around its defaults.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/loss_model_choice.py

Writes benchmarks/results/loss_model_choice.json and prints a table.
"""

from __future__ import annotations

import json
import os
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from driftwatch.config import load_settings
from driftwatch.model.estimate import LossEstimator
from driftwatch.model.estimators import predict, target, train
from driftwatch.model.loss_model import LightGBMLoss
from driftwatch.monitor.window import split_holdout
from driftwatch.store.flights import FLIGHTS_TZ, load_flights, local_month

ROOT = Path(__file__).resolve().parents[1]
CHAMPIONS = [(1,), (3, 4), (6, 7), (9, 10)]
FOLDS = 5
MIN_BLOCK_ROWS = 30


def hist_gradient_boosting(categorical: list[bool]) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=31,
        min_samples_leaf=20,
        l2_regularization=0.0,
        early_stopping=False,
        categorical_features=categorical,
        random_state=0,
    )


CANDIDATES: dict[str, Any] = {
    "HistGradientBoosting, LightGBM's settings": lambda cat: hist_gradient_boosting(cat),
    "LightGBM defaults (shipped)": lambda cat: LightGBMLoss(_idx(cat)),
    "LightGBM, no categorical regularisation": lambda cat: LightGBMLoss(
        _idx(cat), cat_smooth=0.0, cat_l2=0.0
    ),
    "LightGBM cat_smooth 50": lambda cat: LightGBMLoss(_idx(cat), cat_smooth=50.0),
    "LightGBM 50-row leaves": lambda cat: LightGBMLoss(_idx(cat), min_data_in_leaf=50),
    "LightGBM rate 0.05, 200 rounds": lambda cat: LightGBMLoss(
        _idx(cat), learning_rate=0.05, num_iterations=200
    ),
    "LightGBM L2 1": lambda cat: LightGBMLoss(_idx(cat), lambda_l2=1.0),
}


def _idx(mask: list[bool]) -> list[int]:
    return [i for i, m in enumerate(mask) if m]


def holdout(flights: pd.DataFrame, months: tuple[int, ...], settings: Any) -> pd.DataFrame:
    """The champion's holdout with the predictions of the model trained without it."""
    spec = settings.model
    rows = flights[local_month(flights).isin(months)].sort_values(spec.timestamp, kind="stable")
    train_rows, hold = split_holdout(rows.reset_index(drop=True), settings)
    hold = hold.reset_index(drop=True)
    model = train(train_rows, spec, random_state=0)
    return hold.assign(_y=target(hold, spec).to_numpy(dtype=float), _p=predict(model, hold, spec))


def block_errors(hold: pd.DataFrame, features: list[str], ts: str) -> dict[str, dict[str, float]]:
    """Each candidate's MAE of the cross-fitted RMSE estimate over days and 6-hour blocks."""
    design = LossEstimator().fit(hold[features], hold["_y"], hold["_p"])  # codes, as shipped
    Z = design._design(hold[features], hold["_p"].to_numpy())
    loss = (hold["_y"] - hold["_p"]).to_numpy() ** 2
    local = hold[ts].dt.tz_convert(FLIGHTS_TZ)
    keys = {
        "day": local.dt.strftime("%m%d").to_numpy(),
        "6h": (local.dt.strftime("%m%d") + (local.dt.hour // 6).astype(str)).to_numpy(),
    }
    n = len(loss)
    edges = np.linspace(0, n, FOLDS + 1).astype(int)
    out: dict[str, dict[str, float]] = {}
    for name, make in CANDIDATES.items():
        oof = np.empty(n)
        for a, b in pairwise(edges):
            rest = np.r_[0:a, b:n]
            model = make(design.categorical_mask_).fit(Z[rest], loss[rest])
            oof[a:b] = np.clip(model.predict(Z[a:b]), 0, None)
        out[name] = {}
        for grain, k in keys.items():
            g = pd.DataFrame({"k": k, "o": oof, "l": loss}).groupby("k")
            agg = g.agg(o=("o", "mean"), l=("l", "mean"), rows=("o", "size"))
            agg = agg[agg["rows"] >= MIN_BLOCK_ROWS]
            err = np.abs(np.sqrt(agg["o"].to_numpy()) - np.sqrt(agg["l"].to_numpy()))
            out[name][grain] = float(err.mean())
            out[name][f"{grain}_blocks"] = len(agg)
    return out


def main() -> None:
    t0 = time.perf_counter()
    settings = load_settings(ROOT / "config.yaml")
    spec = settings.model
    flights = load_flights()
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "champions": {}}
    for months in CHAMPIONS:
        name = "-".join(map(str, months))
        hold = holdout(flights, months, settings)
        results["champions"][name] = {
            "holdout_rows": len(hold),
            "errors": block_errors(hold, list(spec.features), spec.timestamp),
        }
        print(f"champion {name}: {len(hold)} holdout rows", flush=True)
    totals = {
        c: {g: sum(v["errors"][c][g] for v in results["champions"].values()) for g in ("day", "6h")}
        for c in CANDIDATES
    }
    results["totals"] = totals
    champs = list(results["champions"])
    print("\n| loss model | " + " | ".join(f"{c}: day / 6h" for c in champs) + " | sum: day / 6h |")
    print("|---|" + "---:|" * (len(champs) + 1))
    for c in CANDIDATES:
        cells = [
            f"{results['champions'][k]['errors'][c]['day']:.2f} / "
            f"{results['champions'][k]['errors'][c]['6h']:.2f}"
            for k in champs
        ]
        cells.append(f"{totals[c]['day']:.2f} / {totals[c]['6h']:.2f}")
        print(f"| {c} | " + " | ".join(cells) + " |")
    results["seconds"] = round(time.perf_counter() - t0, 1)
    out = ROOT / "benchmarks" / "results" / "loss_model_choice.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
