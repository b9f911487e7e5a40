"""The estimate's interval calibrated on the champion's served periods, on 2013 (issue 18).

``benchmarks/estimate_2013.py`` measures the estimate with its interval from the champion's
holdout alone: 82-100% of realised values inside the 90% interval depending on the champion,
the task and the period length, and where it is 98-100% too wide to ever exclude the baseline.
Here the same champions, estimators and periods (imported from it, not rewritten) are replayed
in time order, as the monitor sees them: the labels of a period are known one period later
(weekly: from the next week on; daily: the next day; hourly, with ``--hourly``: six hours
later, when nearly every flight has landed), and each period's interval is the holdout's one
rescaled by :class:`driftwatch.model.served_calibration.ServedCalibration` fitted on the
periods labelled by then (the newest ``--max-periods``; none below ``--min-periods``), exactly
what the monitor does with ``quality.estimate.served`` (its defaults).

Per champion (January, and ``--champion-months`` 3 4, 6 7, 9 10 as estimate_2013 defines
them), task (RMSE of air_time; ROC AUC of arr_delay > 15) and period length: coverage (realised
inside the interval), mean width, and precision / recall of "degraded" by the estimated rule
(the point estimate worse than the baseline beyond ``quality.relative_tolerance`` and the
interval excluding the baseline), with the holdout's interval alone and with the served
calibration; over all periods, and split into the first periods (fewer than ``min_periods``
labelled: the holdout's interval stands in both columns) and the calibrated ones. Periods of
fewer than ``quality.min_labelled_rows`` (30) flights are left out, as the monitor leaves them
out of the calibration (night hours, mostly).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/estimate_served_2013.py [--hourly]

Writes benchmarks/results/estimate_served_2013.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from estimate_2013 import (  # noqa: E402
    LEVEL,
    Task,
    agreement,
    driftwatch_estimator,
    metric,
    pct,
    periods,
    prepare,
    tasks,
    truth_degraded,
    verdicts,
)

from driftwatch.config import load_settings  # noqa: E402
from driftwatch.model.estimate import Estimate  # noqa: E402
from driftwatch.model.estimators import target  # noqa: E402
from driftwatch.model.served_calibration import ServedCalibration  # noqa: E402
from driftwatch.store.flights import load_flights  # noqa: E402

CHAMPIONS = ([1], [3, 4], [6, 7], [9, 10])
# period length: (pandas frequency, periods until its labels are known)
GRAINS = {"weekly": ("W-SUN", 1), "daily": ("D", 1), "hourly": ("h", 6)}


def per_period(task: Task, est: Any, keys: pd.Series) -> pd.DataFrame:
    """Each period in time order: driftwatch's estimate and interval from the holdout, the
    batch's sampling sd on the interval's scale (the calibration's floor), realised."""
    y_all = target(task.later, task.spec).to_numpy(dtype=float)
    x_all = task.later[task.spec.features]
    out = []
    least = task.settings.quality.min_labelled_rows
    for key, idx in task.later.groupby(keys.to_numpy(), sort=True).indices.items():
        if key == "" or len(idx) < least:  # "": hours of too few flights (estimate_2013's
            continue  # periods); as the monitor, no period of fewer labelled rows is judged
        x, p = x_all.iloc[idx], task.later_pred[idx]
        if task.name == "regression":
            sums = est.sums(x, p)
            e, floor = est.from_sums(sums), est.sampling_part(sums)
        else:
            e, floor = est.estimate_with_sampling(p, X=x)
        out.append(
            {
                "period": key,
                "rows": len(idx),
                "realised": metric(task.metric, y_all[idx], p),
                "estimate": e.value,
                "low": e.low,
                "high": e.high,
                "floor": floor,
                "reliable": e.reliable,
            }
        )
    return pd.DataFrame(out)


def served(table: pd.DataFrame, metric_name: str, lag: int, opts: Any, freq: str) -> pd.DataFrame:
    """The table with each period's interval calibrated on the periods labelled by then (those
    ``lag`` or more periods before it in time: periods of too few rows are left out of the
    table, not of the clock, as the monitor counts them), the number it was calibrated on and
    the factor it applied."""
    t = table.reset_index(drop=True)
    e, low, high, real = (
        t[c].to_numpy(dtype=float) for c in ("estimate", "low", "high", "realised")
    )
    first = pd.Period(str(t["period"][0]), freq)
    pos = np.array([(pd.Period(str(k), freq) - first).n for k in t["period"]])
    labelled_by = np.searchsorted(pos, pos - lag, side="right")
    new_low, new_high, used, factor = [], [], [], []
    for i in range(len(t)):
        known = slice(0, int(labelled_by[i]))
        cal = ServedCalibration(
            LEVEL, opts.min_periods, opts.max_periods, narrow_after=opts.narrow_after
        ).fit(
            metric_name,
            e[known],
            low[known],
            high[known],
            real[known],
            lag=lag,
            positions=pos[known],
        )
        base = Estimate(metric_name, e[i], low[i], high[i], LEVEL, int(t["rows"][i]), True, None)
        adj = cal.adjust(base, float(t["floor"][i]))
        new_low.append(adj.low)
        new_high.append(adj.high)
        used.append(cal.periods_)
        factor.append(cal.applied_factor_)
    return t.assign(
        served_low=new_low, served_high=new_high, calibrated_on=used, factor=factor
    ).assign(calibrated=lambda d: d["calibrated_on"] >= opts.min_periods)


def figures(task: Task, t: pd.DataFrame, low: str, high: str) -> dict[str, Any]:
    t = t[np.isfinite(t["realised"]) & np.isfinite(t["estimate"])]
    real, value = t["realised"].to_numpy(), t["estimate"].to_numpy()
    lo, hi = t[low].to_numpy(dtype=float), t[high].to_numpy(dtype=float)
    inside = (lo <= real) & (real <= hi)
    v = verdicts(task, value, lo, hi)
    a = agreement(v["interval"], truth_degraded(task, real))
    return {
        "periods": len(t),
        "coverage": float(inside.mean()) if len(t) else None,
        "mean_width": float(np.mean(hi - lo)) if len(t) else None,
        # The median too: a few hours' calibrated upper bound is many times the estimate (an
        # hour's RMSE is one bad flight away from anything), which a mean cannot show.
        "median_width": float(np.median(hi - lo)) if len(t) else None,
        "precision": a["precision"],
        "recall": a["recall"],
        "flagged": a["flagged"],
        "degraded": a["degraded"],
    }


def compare(task: Task, t: pd.DataFrame) -> dict[str, Any]:
    """Holdout vs served figures: all periods, the first (uncalibrated) ones, the calibrated."""
    out: dict[str, Any] = {}
    for part, rows in (
        ("all", t),
        ("first", t[~t["calibrated"]]),
        ("calibrated", t[t["calibrated"]]),
    ):
        out[part] = {
            "holdout": figures(task, rows, "low", "high"),
            "served": figures(task, rows, "served_low", "served_high"),
        }
    f = t.loc[t["calibrated"], "factor"]
    out["factor"] = (
        {"min": float(f.min()), "median": float(f.median()), "max": float(f.max())}
        if len(f)
        else None
    )
    return out


def cost(task: Task, est: Any, ticks: int = 12) -> dict[str, Any]:
    """Seconds of the monitor's own calibration step (:func:`fit_served_calibration`: cut the
    history into periods, estimate and score those not cached, fit) at hourly ticks: history is
    every labelled flight of the month after the champion's, served by it; the first tick after
    a start estimates all its periods (cold), each later one only the hour that came in (warm;
    median of ``ticks``). Against the warm no-drift tick of ``process_speed.json``."""
    from estimate_2013 import tick_seconds

    from driftwatch.monitor import served_interval
    from driftwatch.monitor.plan import Plan
    from driftwatch.monitor.ports import PREDICTED, SERVED_BY

    quality = task.settings.quality.model_copy(update={"metric": task.metric})
    plan = Plan(settings=task.settings.model_copy(update={"quality": quality}))
    ts = task.spec.timestamp
    rows = task.later.assign(**{PREDICTED: task.later_pred, SERVED_BY: "1"})
    hours = rows[ts].dt.floor("h")
    starts = sorted(hours.unique())[120 : 120 + ticks + 1]  # 5 days of history at the first
    served_interval._CACHE.clear()
    times, periods = [], 0
    for start in starts:
        batch = rows.loc[hours == start, ts]
        history = rows[rows[ts] < start]
        t0 = time.perf_counter()
        cal = served_interval.fit_served_calibration(plan, est, task.model, history, "1", batch)
        times.append(time.perf_counter() - t0)
        periods = cal.periods_
    tick = tick_seconds()
    warm = float(np.median(times[1:]))
    return {
        "periods": periods,
        "cold_s": round(times[0], 3),
        "warm_s": round(warm, 4),
        "tick_s": tick,
        "warm_share_of_tick": round(warm / tick, 4) if tick else None,
        "cold_share_of_tick": round(times[0] / tick, 4) if tick else None,
    }


def fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| champion | task | periods | labels known | inside: holdout / served | calibrated"
        " periods only: holdout / served | first periods: inside | median width: holdout / served | degraded recall: holdout"
        " / served | precision: holdout / served | factor (median, range) |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, c = r["figures"]["all"], r["figures"]["calibrated"]
        first = r["figures"]["first"]["holdout"]
        f = r["figures"]["factor"]
        factor = "-" if f is None else f"{f['median']:.2f} ({f['min']:.2f}-{f['max']:.2f})"
        lines.append(
            f"| {r['champion']} | {r['task']} {r['grain']} | {a['holdout']['periods']}"
            f" ({c['holdout']['periods']} calibrated) | {r['lag']} |"
            f" {pct(a['holdout']['coverage'])} / {pct(a['served']['coverage'])} |"
            f" {pct(c['holdout']['coverage'])} / {pct(c['served']['coverage'])} |"
            f" {pct(first['coverage'])} of {first['periods']} |"
            f" {fmt(a['holdout']['median_width'])} / {fmt(a['served']['median_width'])} |"
            f" {pct(a['holdout']['recall'])} / {pct(a['served']['recall'])}"
            f" (of {a['holdout']['degraded']}) |"
            f" {pct(a['holdout']['precision'])} / {pct(a['served']['precision'])} | {factor} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(ROOT / "config.yaml"))
    ap.add_argument("--hourly", action="store_true", help="hourly periods too (minutes more)")
    ap.add_argument("--champions", nargs="+", default=["1", "3-4", "6-7", "9-10"])
    args = ap.parse_args()
    settings = load_settings(args.config)
    opts = settings.quality.estimate.served
    grains = {k: v for k, v in GRAINS.items() if k != "hourly" or args.hourly}
    lags = {"weekly": "next week", "daily": "next day", "hourly": "6 hours later"}
    t0 = time.perf_counter()
    flights = load_flights()
    results: dict[str, Any] = {
        "level": LEVEL,
        "min_periods": opts.min_periods,
        "max_periods": opts.max_periods,
        "narrow_after": opts.narrow_after,
        "machine": {"cpus": os.cpu_count(), "load_at_start": round(os.getloadavg()[0], 2)},
        "rows": [],
    }
    for champ in args.champions:
        months = tuple(int(m) for m in champ.split("-"))
        name = (
            "January"
            if months == (1,)
            else "-".join(pd.Timestamp(2013, m, 1).strftime("%b") for m in months)
        )
        for task in tasks(settings):
            prepare(task, flights, months)
            est, _ = driftwatch_estimator(task)
            if months == (1,):
                c = cost(task, est)
                results.setdefault("cost", {})[task.name] = c
                print(
                    f"{task.name}: calibration at an hourly tick ({c['periods']} periods):"
                    f" {c['cold_s']} s cold, {c['warm_s']} s warm = {pct(c['warm_share_of_tick'])}"
                    f" of a warm no-drift tick ({c['tick_s']} s)",
                    flush=True,
                )
            for grain, (freq, lag) in grains.items():
                t1 = time.perf_counter()
                keys = periods(task.later, task.spec.timestamp, freq)
                base = per_period(task, est, keys)
                t = served(base, task.metric, lag, opts, freq)
                row = {
                    "champion": name,
                    "task": f"{task.name} {task.metric}",
                    "grain": grain,
                    "lag": lags[grain],
                    "baseline": task.baseline,
                    "figures": compare(task, t),
                    "seconds": round(time.perf_counter() - t1, 1),
                }
                results["rows"].append(row)
                print(table([row]).splitlines()[-1], flush=True)
    results["machine"]["load_at_end"] = round(os.getloadavg()[0], 2)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    print("\n" + table(results["rows"]))
    out = ROOT / "benchmarks" / "results" / "estimate_served_2013.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
