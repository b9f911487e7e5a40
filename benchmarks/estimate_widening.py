"""Choosing the estimate's widening away from the holdout on one 2013 champion (issue 18).

The 90% interval of an estimate is measured on the champion's holdout (``driftwatch.model.
estimate``), and widened away from it by a floor and a slope times the batch's distance from the
holdout beyond chance (what a holdout block of the batch's rows shows). Those two numbers per
task cannot be measured on a holdout of a few days: this script chooses them on ONE champion's
periods, the narrowest interval (mean width over weeks, days and hours, each weighted alike)
with at least 90% of realised values inside on weeks, days AND hours, then reports every
champion with the chosen numbers (weeks, days, hours; coverage, mean width, recall of "degraded"
with the interval excluding the baseline), the check on data they were not chosen on.

Each period's estimate is computed once with the widening off (its sums for RMSE, its measured
interval and excess distance for ROC AUC); the grid then costs arithmetic only. The champions,
holdouts and periods are ``benchmarks/estimate_2013.py``'s (hours with fewer than 30 labelled
flights left out)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/estimate_widening.py \
        [--choose-on 6,7] [--choose-auc-on 1]

Writes benchmarks/results/estimate_widening.json. The shipped constants (``_SHIFT_FLOOR``,
``_SHIFT_SLOPE``, ``_CBPE_FLOOR``, ``_CBPE_SLOPE``) are set by hand from its choice.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import estimate_2013 as e13
import numpy as np
import pandas as pd

from driftwatch.config import load_settings
from driftwatch.model import estimate as E
from driftwatch.model.estimators import target
from driftwatch.store.flights import load_flights

ROOT = Path(__file__).resolve().parents[1]
CHAMPIONS = ((1,), (3, 4), (6, 7), (9, 10))
RMSE_FLOORS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
RMSE_SLOPES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2)
AUC_FLOORS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
AUC_SLOPES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def pieces(task: e13.Task, est: Any, keys: pd.Series) -> pd.DataFrame:
    """Per period: realised value, rows, and what the interval is built from."""
    y_all = target(task.later, task.spec).to_numpy(dtype=float)
    feats = task.spec.features
    out = []
    for key, idx in task.later.groupby(keys.to_numpy(), sort=True).indices.items():
        if key == "":
            continue
        rows, pred = task.later.iloc[idx], task.later_pred[idx]
        row: dict[str, Any] = {
            "period": key,
            "rows": len(idx),
            "realised": e13.metric(task.metric, y_all[idx], pred),
        }
        if task.name == "regression":
            row["sums"] = est.sums(rows[feats], pred)
        else:
            e = est.estimate(pred, X=rows[feats])  # the constants are 0 here: measured interval
            row.update(value=e.value, low=e.low, high=e.high)
            d = est.support_.distance(rows[feats])
            row["excess"] = E.beyond_chance(est.chance_distance_, d, len(idx))
        out.append(row)
    return pd.DataFrame(out)


def intervals(task: e13.Task, est: Any, t: pd.DataFrame, floor: float, slope: float) -> tuple:
    """(value, low, high) arrays of every period at one widening."""
    if task.name == "regression":
        E._SHIFT_FLOOR, E._SHIFT_SLOPE = floor, slope
        es = [est.from_sums(s) for s in t["sums"]]
        return tuple(np.array([getattr(e, f) for e in es]) for f in ("value", "low", "high"))
    lo, hi = [], []
    for v, a, b, x in zip(t["value"], t["low"], t["high"], t["excess"], strict=True):
        w = E.widen_logit(v, a, b, est.multiplier_, x, floor, slope)
        lo.append(w[0])
        hi.append(w[1])
    return t["value"].to_numpy(dtype=float), np.array(lo), np.array(hi)


def score(task: e13.Task, t: pd.DataFrame, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> dict:
    real = t["realised"].to_numpy(dtype=float)
    ok = np.isfinite(real) & np.isfinite(v)
    real, v, lo, hi = real[ok], v[ok], lo[ok], hi[ok]
    truth = e13.truth_degraded(task, real)
    flagged = e13.verdicts(task, v, lo, hi)["interval"]
    inside = (lo <= real) & (real <= hi)
    return {
        "periods": int(ok.sum()),
        "coverage": float(inside.mean()),
        "below": float((real < lo).mean()),
        "above": float((real > hi).mean()),
        "mean_width": float(np.mean(hi - lo)),
        "degraded": int(truth.sum()),
        "recall": float((flagged & truth).sum() / truth.sum()) if truth.any() else None,
        "precision": float((flagged & truth).sum() / flagged.sum()) if flagged.any() else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--choose-on", default="6,7", help="RMSE: the champion's months")
    ap.add_argument("--choose-auc-on", default="6,7", help="ROC AUC: the champion's months")
    ap.add_argument("--target", type=float, default=0.9)
    args = ap.parse_args()
    choose = {
        "regression": tuple(int(m) for m in args.choose_on.split(",")),
        "classification": tuple(int(m) for m in args.choose_auc_on.split(",")),
    }
    t0 = time.perf_counter()
    settings = load_settings(ROOT / "config.yaml")
    flights = load_flights()
    E._CBPE_FLOOR = E._CBPE_SLOPE = 0.0  # pieces() wants the measured interval alone
    tables: dict[str, dict[tuple[int, ...], Any]] = {"regression": {}, "classification": {}}
    for months in CHAMPIONS:
        for task in e13.tasks(settings):
            e13.prepare(task, flights, months)
            est, _ = e13.driftwatch_estimator(task)
            grains = {
                g: pieces(task, est, e13.periods(task.later, task.spec.timestamp, f))
                for g, f in e13.GRANULARITIES.items()
            }
            chance = dict(
                zip(est.chance_distance_.rows_, est.chance_distance_.distance_, strict=True)
            )
            tables[task.name][months] = (task, est, grains, chance)
            print(
                f"{task.name} {months}: "
                + ", ".join(f"{g} {len(t)}" for g, t in grains.items())
                + f"; chance distance by rows { ({k: round(v, 2) for k, v in chance.items()}) }"
                f" ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    results: dict[str, Any] = {"target": args.target, "choose_on": {}, "chosen": {}}
    for name, (floors, slopes) in {
        "regression": (RMSE_FLOORS, RMSE_SLOPES),
        "classification": (AUC_FLOORS, AUC_SLOPES),
    }.items():
        task, est, grains, _ = tables[name][choose[name]]
        grid = []
        for floor in floors:
            for slope in slopes:
                figs = {
                    g: score(task, t, *intervals(task, est, t, floor, slope))
                    for g, t in grains.items()
                }
                grid.append({"floor": floor, "slope": slope, **figs})
        meets = [r for r in grid if all(r[g]["coverage"] >= args.target for g in e13.GRANULARITIES)]

        def width(r: dict) -> float:
            return float(np.mean([r[g]["mean_width"] for g in e13.GRANULARITIES]))

        best = (
            min(meets, key=width)
            if meets
            else max(grid, key=lambda r: min(r[g]["coverage"] for g in e13.GRANULARITIES))
        )
        results["choose_on"][name] = {"champion_months": list(choose[name]), "grid": grid}
        results["chosen"][name] = {
            "floor": best["floor"],
            "slope": best["slope"],
            "met_on_chosen_champion": bool(meets),
        }
        print(
            f"\n{name}: chosen on {choose[name]}: floor {best['floor']}, slope {best['slope']}"
            f" ({'meets' if meets else 'does NOT meet'} {args.target:.0%} on all grains)"
        )
        report = []
        for months, (task, est, grains, chance) in tables[name].items():
            row = {"champion_months": list(months), "baseline": task.baseline, "chance": chance}
            for g, t in grains.items():
                row[g] = score(task, t, *intervals(task, est, t, best["floor"], best["slope"]))
                off = score(task, t, *intervals(task, est, t, 0.0, 0.0))
                row[g]["no_widening"] = {k: off[k] for k in ("coverage", "mean_width", "recall")}
            report.append(row)
            print(
                f"  champion {months}: "
                + "; ".join(
                    f"{g} {row[g]['periods']}: inside {row[g]['coverage']:.0%}"
                    f" (below {row[g]['below']:.0%}) width {row[g]['mean_width']:.3g}"
                    f" recall {e13.pct(row[g]['recall'])}"
                    f" [no widening {row[g]['no_widening']['coverage']:.0%},"
                    f" {row[g]['no_widening']['mean_width']:.3g}]"
                    for g in grains
                )
            )
        results["chosen"][name]["champions"] = report
    results["seconds"] = round(time.perf_counter() - t0, 1)
    out = ROOT / "benchmarks" / "results" / "estimate_widening.json"
    out.write_text(json.dumps(results, indent=1, default=e13._json_default) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
