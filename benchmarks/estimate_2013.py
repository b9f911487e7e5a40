"""Estimated performance before the labels arrive, on 2013: driftwatch vs NannyML (issue 18).

The January champion is trained as the monitor trains one (``driftwatch.monitor.window``
``split_holdout``): the labelled flights of January 2013 (local time) in time order, the newest
20% held out, the model (the shipped config's HistGradientBoosting and features) trained on the
older 80%. The estimators are fitted on that holdout (never on the champion's training rows),
then estimate the champion's performance on every weekly, daily and hourly period of
February-December 2013 (time-contiguous, as production sends data) from the features and the
champion's predictions alone: the labels are hidden from them, and used only afterwards to
compute the realised figure of each period.

Two tasks on the same flights:

- regression: ``air_time`` (minutes), RMSE, estimated by driftwatch's ``LossEstimator`` and by
  NannyML's Direct Loss Estimation (``nml.DLE``);
- classification: ``arr_delay > 15`` (rows without ``arr_delay``, the cancelled and diverted
  flights, dropped and counted), a HistGradientBoostingClassifier champion, ROC AUC estimated
  by driftwatch's ``ConfidenceEstimator`` and by NannyML's ``nml.CBPE``.

Figures over the periods: Pearson correlation of estimated and realised, mean absolute error of
the estimate, the share of periods whose realised value is inside the estimate's 90% interval,
and how well the estimate's "degraded" verdict (worse than the holdout baseline by more than
``quality.relative_tolerance``) agrees with the realised one: precision and recall. NannyML's
own band is value +- 3 sampling errors (~99.7% if its sampling error were the whole error);
its 90% interval here is value +- 1.645 sampling errors, so both promise the same coverage.

NannyML 0.13's pins conflict with driftwatch's, so it runs in its own virtual environment, as a
subprocess (``benchmarks/nannyml_side.py``), on parquet files this script writes: the same
holdout as NannyML's reference (with the champion's predictions and probabilities computed
here) and the same periods (chunked by the period column)::

    python3 -m venv /work/nannyml-venv
    /work/nannyml-venv/bin/pip install nannyml==0.13.1 "pandas<3" statsmodels
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/estimate_2013.py [--quick]
        [--nannyml /work/nannyml-venv/bin/python]

Periods: weekly, daily and hourly (the daemon's batches; hours with fewer than 30 labelled
flights left out and counted; NannyML on weeks and days only). ``--grains weekly daily``: some.
``--quick``: weekly periods only. Without the NannyML venv, driftwatch's figures alone.
``--loss-params KEY=VALUE ...``: a variant of the loss model's settings, LightGBM's names (e.g.
``cat_smooth=50 min_data_in_leaf=50``), written to ``estimate_2013_variant.json``.
``--champion-months 6 7``: the champion of a 60-day window ending in July (periods from August),
as the monitor's would be: a check, on champions the settings were not chosen on, of what the
January champion shows (``estimate_2013_champion_6-7[_variant][_quick].json``).
Writes benchmarks/results/estimate_2013.json (``estimate_2013_quick.json`` with ``--quick``).

"Degraded" verdicts are counted three ways: the point estimate beyond tolerance; that and the
interval excluding the baseline; and the monitor's own trigger (``assess_estimate``: both, and
the estimate flagged reliable), which only driftwatch has.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one fit per core; FACTS: oversubscription

import numpy as np
import pandas as pd

from driftwatch.config import ModelSettings, Settings, load_settings
from driftwatch.model.estimators import predict, target, train
from driftwatch.monitor.window import split_holdout
from driftwatch.store.flights import FLIGHTS_TZ, load_flights, local_month

ROOT = Path(__file__).resolve().parents[1]
NANNYML_PYTHON = Path("/work/nannyml-venv/bin/python")
SIDE_SCRIPT = Path(__file__).resolve().parent / "nannyml_side.py"
LEVEL = 0.9
Z90 = 1.6448536269514722  # the normal quantile of a two-sided 90% interval
PERIOD = "period"
# How production cuts the year: weeks ending on Sunday (the replay's), calendar days, and the
# daemon's hours; local time.
GRANULARITIES = {"weekly": "W-SUN", "daily": "D", "hourly": "h"}
# Hours with fewer labelled flights are left out (a night hour's 5 flights have no RMSE or AUC
# worth judging an interval by); counted in the results. NannyML is not run on hours (~8,000
# chunks), its columns stay those of weeks and days.
MIN_HOUR_ROWS = 30
NANNYML_GRAINS = ("weekly", "daily")


@dataclass
class Task:
    """One monitored model: what it predicts, its champion, and the rows it is judged on."""

    name: str  # regression / classification
    metric: str  # rmse / roc_auc
    spec: ModelSettings
    settings: Settings
    higher_is_better: bool
    model: Any = None
    holdout: pd.DataFrame | None = None
    holdout_pred: np.ndarray | None = None
    baseline: float = float("nan")  # the champion's metric on its holdout
    later: pd.DataFrame | None = None  # labelled rows after the champion's months
    later_pred: np.ndarray | None = None
    counts: dict[str, Any] | None = None


# -- data and champions -------------------------------------------------------------------------


def tasks(settings: Settings) -> list[Task]:
    """The two tasks on the shipped config's features: air_time (RMSE), arr_delay > 15 (AUC)."""
    reg = settings.model
    clf = reg.model_copy(update={"task": "binary", "target": "arr_delay", "target_threshold": 15})
    return [
        Task("regression", "rmse", reg, settings, higher_is_better=False),
        Task(
            "classification",
            "roc_auc",
            clf,
            settings.model_copy(update={"model": clf}),
            higher_is_better=True,
        ),
    ]


def prepare(task: Task, flights: pd.DataFrame, months: tuple[int, ...] = (1,)) -> Task:
    """Train the champion of ``months`` (January by default) without its holdout (the newest
    20% of those months by time) and predict the holdout and every labelled row of the months
    after them."""
    spec = task.spec
    month = local_month(flights)
    jan = flights[month.isin(months)].sort_values(spec.timestamp, kind="stable")
    jan = jan.reset_index(drop=True)
    later = flights[month > max(months)].reset_index(drop=True)
    train_rows, holdout = split_holdout(jan, task.settings)  # labelled rows only, as the monitor
    t0 = time.perf_counter()
    model = train(train_rows, spec, random_state=0)
    fit_s = time.perf_counter() - t0
    lab_later = later[later[spec.target].notna()].reset_index(drop=True)
    task.model, task.holdout = model, holdout.reset_index(drop=True)
    task.holdout_pred = predict(model, task.holdout, spec)
    task.later = lab_later
    task.later_pred = predict(model, lab_later, spec)
    y_hold = target(task.holdout, spec).to_numpy(dtype=float)
    task.baseline = metric(task.metric, y_hold, task.holdout_pred)
    task.counts = {
        "champion_months": list(months),
        "champion_rows": len(jan),
        "champion_unlabelled_dropped": int(jan[spec.target].isna().sum()),
        "train_rows": len(train_rows),
        "holdout_rows": len(holdout),
        "holdout_from": str(holdout[spec.timestamp].min()),
        "holdout_to": str(holdout[spec.timestamp].max()),
        "later_rows": len(later),
        "later_unlabelled_dropped": int(later[spec.target].isna().sum()),
        "later_labelled_rows": len(lab_later),
        "champion_fit_s": round(fit_s, 2),
        "baseline": round(task.baseline, 4),
    }
    if task.name == "classification":
        task.counts["positive_share_holdout"] = round(float(y_hold.mean()), 4)
        y_later = target(lab_later, spec).to_numpy(dtype=float)
        task.counts["positive_share_later"] = round(float(y_later.mean()), 4)
    return task


def metric(name: str, y: np.ndarray, p: np.ndarray) -> float:
    """The realised metric of one period (the labels the estimators never see)."""
    if name == "rmse":
        return float(np.sqrt(np.mean((y - p) ** 2)))
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def periods(frame: pd.DataFrame, ts: str, freq: str) -> pd.Series:
    """Each row's period in local time (weeks ending Sunday, calendar days, or hours; an hour
    with fewer than ``MIN_HOUR_ROWS`` rows gets "" and is left out)."""
    local = frame[ts].dt.tz_convert(FLIGHTS_TZ).dt.tz_localize(None)
    keys = local.dt.to_period(freq).astype(str)
    if freq == "h":
        sizes = keys.map(keys.value_counts())
        keys = keys.where(sizes >= MIN_HOUR_ROWS, "")
    return keys


# -- driftwatch's estimators --------------------------------------------------------------------


def driftwatch_estimator(
    task: Task, loss_params: dict[str, Any] | None = None
) -> tuple[Any, float]:
    """The task's estimator fitted on the champion's holdout, and the fit's seconds.
    ``loss_params``: a variant of the loss model's settings (regression only)."""
    from driftwatch.model.estimate import ConfidenceEstimator, LossEstimator

    y = target(task.holdout, task.spec).to_numpy(dtype=float)
    x = task.holdout[task.spec.features]
    t0 = time.perf_counter()
    if task.name == "regression":
        kw = loss_params or {}
        est = LossEstimator(metric="rmse", level=LEVEL, **kw).fit(x, y, task.holdout_pred)
    else:
        est = ConfidenceEstimator(metric="roc_auc", level=LEVEL).fit(y, task.holdout_pred, X=x)
    return est, time.perf_counter() - t0


def driftwatch_estimate(task: Task, est: Any, rows: pd.DataFrame, pred: np.ndarray) -> Any:
    if task.name == "regression":
        return est.estimate(rows[task.spec.features], pred)
    return est.estimate(pred, X=rows[task.spec.features])


def per_period_driftwatch(task: Task, est: Any, keys: pd.Series) -> pd.DataFrame:
    """Realised and driftwatch's estimate, one row per period, with the monitor's verdict on
    it (``assess_estimate`` against the estimator's holdout value, as every tick judges)."""
    from driftwatch.model.quality import assess_estimate

    y_all = target(task.later, task.spec).to_numpy(dtype=float)
    out = []
    for key, idx in task.later.groupby(keys.to_numpy(), sort=True).indices.items():
        if key == "":  # an hour with too few flights
            continue
        rows = task.later.iloc[idx]
        e = driftwatch_estimate(task, est, rows, task.later_pred[idx])
        verdict = assess_estimate(e, est.holdout_value_, task.settings.quality)
        out.append(
            {
                PERIOD: key,
                "month": int(local_month(rows.iloc[[len(rows) // 2]]).iloc[0]),
                "rows": len(idx),
                "realised": metric(task.metric, y_all[idx], task.later_pred[idx]),
                "estimate": _num(e.value),
                "low": _num(e.low),
                "high": _num(e.high),
                "reliable": bool(e.reliable),
                "monitor_degraded": verdict.degraded,
                "reason": e.reason or "",
            }
        )
    return pd.DataFrame(out)


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


# -- NannyML, in its own venv -------------------------------------------------------------------


def run_nannyml(
    task: Task, keys: dict[str, pd.Series], python: Path, workdir: Path
) -> dict[str, Any]:
    """NannyML's DLE / CBPE on the same holdout and periods: per-period estimates by
    granularity, or {"error": ...} when it could not run."""
    spec = task.spec
    feats = spec.features
    ref = task.holdout[feats].copy()
    ref["y_true"] = target(task.holdout, spec).to_numpy(dtype=float)
    ref["y_pred"] = task.holdout_pred
    ana = task.later[feats].copy()
    ana["y_pred"] = task.later_pred
    if task.name == "classification":
        ref["y_pred_proba"], ana["y_pred_proba"] = ref["y_pred"], ana["y_pred"]
        ref["y_pred"] = (ref["y_pred_proba"] >= 0.5).astype(int)
        ana["y_pred"] = (ana["y_pred_proba"] >= 0.5).astype(int)
    for name, k in keys.items():
        ana[f"{PERIOD}_{name}"] = k.to_numpy()
    d = workdir / task.name
    d.mkdir(parents=True, exist_ok=True)
    ref.to_parquet(d / "reference.parquet", index=False)
    ana.to_parquet(d / "analysis.parquet", index=False)
    spec_file = {
        "task": task.name,
        "numerical": list(spec.numerical),
        "categorical": list(spec.categorical),
        "periods": [f"{PERIOD}_{name}" for name in keys],
    }
    (d / "spec.json").write_text(json.dumps(spec_file))
    cmd = [str(python), str(SIDE_SCRIPT), str(d)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)  # NannyML's venv must not import driftwatch's packages
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"error": f"nannyml_side.py exited {done.returncode}: " + " | ".join(tail)}
    out = json.loads((d / "result.json").read_text())
    result: dict[str, Any] = {"seconds": round(seconds, 1), "timing": out.get("timing", {})}
    for name in keys:
        result[name] = pd.DataFrame(out["periods"][f"{PERIOD}_{name}"])
    result["version"] = out.get("version")
    return result


# -- figures ------------------------------------------------------------------------------------


def verdicts(task: Task, value: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict[str, Any]:
    """Degraded by the point estimate alone, and by the estimated trigger's rule without its
    reliability condition (beyond tolerance *and* the interval excludes the baseline), which
    any estimator with an interval can be held to. The monitor's full rule is
    ``assess_estimate``'s (per period, :func:`per_period_driftwatch`)."""
    tol = task.settings.quality.relative_tolerance
    if task.higher_is_better:
        limit = task.baseline * (1 - tol)
        point = value < limit
        interval = point & (high < task.baseline)
    else:
        limit = task.baseline * (1 + tol)
        point = value > limit
        interval = point & (low > task.baseline)
    return {"limit": limit, "point": point, "interval": interval}


def truth_degraded(task: Task, realised: np.ndarray) -> np.ndarray:
    tol = task.settings.quality.relative_tolerance
    if task.higher_is_better:
        return realised < task.baseline * (1 - tol)
    return realised > task.baseline * (1 + tol)


def agreement(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "flagged": int(pred.sum()),
        "degraded": int(truth.sum()),
        "true_positives": tp,
    }


def figures(task: Task, table: pd.DataFrame) -> dict[str, Any]:
    """The accuracy of one estimator's per-period estimates against the realised values."""
    t = table[np.isfinite(table["realised"]) & np.isfinite(table["estimate"])]
    real, est = t["realised"].to_numpy(), t["estimate"].to_numpy()
    low, high = t["low"].to_numpy(), t["high"].to_numpy()
    inside = (low <= real) & (real <= high)
    truth = truth_degraded(task, real)
    v = verdicts(task, est, low, high)
    out: dict[str, Any] = {
        "periods": len(t),
        "pearson_r": float(np.corrcoef(est, real)[0, 1]) if len(t) > 2 else None,
        "mae": float(np.mean(np.abs(est - real))),
        "coverage": float(inside.mean()),
        "mean_interval_width": float(np.mean(high - low)),
        "degraded_point": agreement(v["point"], truth),
        "degraded_interval": agreement(v["interval"], truth),
        # What "no estimator" would say: every period performs as on the holdout.
        "mae_of_baseline_as_estimate": float(np.mean(np.abs(task.baseline - real))),
    }
    if "monitor_degraded" in t.columns:
        flagged = t["monitor_degraded"].to_numpy(dtype=object) == True  # noqa: E712 (None: no verdict)
        out["degraded_monitor"] = agreement(flagged, truth)
    if "reliable" in t.columns:
        ok = t["reliable"].to_numpy(dtype=bool)
        out["reliable_periods"] = int(ok.sum())
        out["reliable_coverage"] = float(inside[ok].mean()) if ok.any() else None
        out["reliable_mae"] = float(np.mean(np.abs(est - real)[ok])) if ok.any() else None
        bad = ~ok
        out["unreliable_coverage"] = float(inside[bad].mean()) if bad.any() else None
        out["unreliable_mae"] = float(np.mean(np.abs(est - real)[bad])) if bad.any() else None
    return out


def monthly(table: pd.DataFrame) -> pd.DataFrame:
    """Mean realised and estimated value per month (a period's month is its middle row's)."""
    t = table.copy()
    t["inside"] = (t["low"] <= t["realised"]) & (t["realised"] <= t["high"])
    g = t.groupby("month")
    return pd.DataFrame(
        {
            "realised": g["realised"].mean(),
            "estimate": g["estimate"].mean(),
            "coverage": g["inside"].mean(),
            "periods": g.size(),
        }
    )


# -- cost ---------------------------------------------------------------------------------------


def tick_seconds() -> float | None:
    """The warm no-drift tick of benchmarks/process_speed.py, shipped config."""
    path = ROOT / "benchmarks" / "results" / "process_speed.json"
    try:
        return float(json.loads(path.read_text())["tick"]["shipped"]["summary"]["total_s"])
    except (OSError, KeyError, ValueError):
        return None


def cost(task: Task, est: Any, fit_s: float, repeats: int = 15) -> dict[str, Any]:
    """Seconds of one ``estimate`` on the busiest day and the busiest hour of the first month
    after the champion's (February; median of ``repeats``), against the warm no-drift tick."""
    ts = task.spec.timestamp
    feb = task.later[local_month(task.later) == local_month(task.later).min()]
    out: dict[str, Any] = {"fit_s": round(fit_s, 3)}
    tick = tick_seconds()
    for name, freq in (("daily", "D"), ("hourly", "h")):
        keys = periods(feb, ts, freq)
        key = keys[keys != ""].value_counts().idxmax()  # "": the hours left out
        idx = np.flatnonzero((keys == key).to_numpy())
        rows = feb.iloc[idx]
        pred = predict(task.model, rows, task.spec)  # the tick predicts the batch anyway
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            driftwatch_estimate(task, est, rows, pred)
            times.append(time.perf_counter() - t0)
        s = float(np.median(times))
        out[name] = {
            "rows": len(rows),
            "estimate_s": round(s, 4),
            "share_of_tick": round(s / tick, 4) if tick else None,
        }
    out["tick_s"] = tick
    return out


# -- output -------------------------------------------------------------------------------------


def fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def side_by_side(name: str, figs: dict[str, dict[str, Any]]) -> str:
    """One markdown table: each estimator's figures in a column."""
    cols = list(figs)
    rows = [
        ("periods", lambda f: fmt(f["periods"])),
        ("Pearson r (estimated vs realised)", lambda f: fmt(f["pearson_r"], 2)),
        ("MAE of the estimate", lambda f: fmt(f["mae"])),
        (
            "MAE if the holdout score were the estimate",
            lambda f: fmt(f["mae_of_baseline_as_estimate"]),
        ),
        ("realised inside the 90% interval", lambda f: pct(f["coverage"])),
        ("mean interval width", lambda f: fmt(f["mean_interval_width"])),
        ("degraded (point): precision", lambda f: pct(f["degraded_point"]["precision"])),
        ("degraded (point): recall", lambda f: pct(f["degraded_point"]["recall"])),
        (
            "degraded (+ interval excludes baseline): precision",
            lambda f: pct(f["degraded_interval"]["precision"]),
        ),
        (
            "degraded (+ interval excludes baseline): recall",
            lambda f: pct(f["degraded_interval"]["recall"]),
        ),
        (
            "degraded (the monitor's trigger: + reliable): precision",
            lambda f: pct(f.get("degraded_monitor", {}).get("precision")),
        ),
        (
            "degraded (the monitor's trigger: + reliable): recall",
            lambda f: pct(f.get("degraded_monitor", {}).get("recall")),
        ),
        (
            "periods degraded (realised) / flagged (point / interval / monitor)",
            lambda f: f"{f['degraded_point']['degraded']} / {f['degraded_point']['flagged']}"
            f" / {f['degraded_interval']['flagged']}"
            f" / {f.get('degraded_monitor', {}).get('flagged', '-')}",
        ),
        ("periods flagged reliable", lambda f: fmt(f.get("reliable_periods"))),
        ("reliable only: inside the interval", lambda f: pct(f.get("reliable_coverage"))),
        ("reliable only: MAE", lambda f: fmt(f.get("reliable_mae"))),
        ("unreliable only: inside the interval", lambda f: pct(f.get("unreliable_coverage"))),
        ("unreliable only: MAE", lambda f: fmt(f.get("unreliable_mae"))),
    ]
    lines = [f"#### {name}", "", "| figure | " + " | ".join(cols) + " |"]
    lines.append("|---|" + "---:|" * len(cols))
    for label, get in rows:
        lines.append(f"| {label} | " + " | ".join(get(figs[c]) for c in cols) + " |")
    return "\n".join(lines)


def monthly_table(name: str, tables: dict[str, pd.DataFrame]) -> str:
    """Per month: realised and each estimator's mean estimate and coverage."""
    months = {k: monthly(t) for k, t in tables.items()}
    first = next(iter(months.values()))
    head = (
        "| month | realised | " + " | ".join(f"{k}: estimate | {k}: inside" for k in months) + " |"
    )
    lines = [f"#### {name}", "", head, "|---|---:|" + "---:|---:|" * len(months)]
    for m in first.index:
        cells = [fmt(first.loc[m, "realised"], 2)]
        for t in months.values():
            cells += [fmt(t.loc[m, "estimate"], 2), pct(t.loc[m, "coverage"])]
        lines.append(f"| {pd.Timestamp(2013, m, 1):%b} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="weekly periods only")
    ap.add_argument("--config", default=str(ROOT / "config.yaml"))
    ap.add_argument("--nannyml", default=str(NANNYML_PYTHON), help="NannyML venv's python")
    ap.add_argument(
        "--loss-params",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="a variant of LossEstimator's loss model (LightGBM parameters, e.g."
        " min_data_in_leaf=50); results go to estimate_2013_variant.json",
    )
    ap.add_argument(
        "--champion-months",
        nargs="+",
        type=int,
        default=[1],
        metavar="MONTH",
        help="the champion's window (default: 1, January); e.g. 6 7: a 60-day window ending in"
        " July, periods from August (a check on champions the settings were not chosen on)",
    )
    ap.add_argument(
        "--grains",
        nargs="+",
        choices=list(GRANULARITIES),
        default=list(GRANULARITIES),
        help="period lengths (default: weekly daily hourly; --quick: weekly)",
    )
    args = ap.parse_args()
    loss_params = {k: _value(v) for k, v in (p.split("=", 1) for p in args.loss_params)}
    chosen = ["weekly"] if args.quick else args.grains
    grains = {g: GRANULARITIES[g] for g in chosen}
    settings = load_settings(args.config)
    nml_python = Path(args.nannyml)
    machine = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_at_start": round(os.getloadavg()[0], 2),
    }
    if not nml_python.exists():
        print(
            f"NannyML venv not found ({nml_python}): driftwatch's figures only. To compare:"
            " python3 -m venv /work/nannyml-venv && /work/nannyml-venv/bin/pip install"
            " nannyml==0.13.1 'pandas<3' statsmodels",
            flush=True,
        )
    t0 = time.perf_counter()
    flights = load_flights()
    results: dict[str, Any] = {
        "machine": machine,
        "level": LEVEL,
        "quick": args.quick,
        "champion_months": args.champion_months,
    }
    if loss_params:
        results["loss_params"] = loss_params
    report: list[str] = []
    hourly: dict[str, pd.DataFrame] = {}  # driftwatch's hourly periods, per task
    with tempfile.TemporaryDirectory(prefix="driftwatch-estimate-") as tmp:
        for task in tasks(settings):
            prepare(task, flights, tuple(args.champion_months))
            print(f"{task.name}: {json.dumps(task.counts)}", flush=True)
            est, fit_s = driftwatch_estimator(task, loss_params)
            keys = {g: periods(task.later, task.spec.timestamp, f) for g, f in grains.items()}
            nml: dict[str, Any] = {"error": f"NannyML venv not found: {nml_python}"}
            nml_keys = {g: k for g, k in keys.items() if g in NANNYML_GRAINS}
            if nml_python.exists() and nml_keys:
                nml = run_nannyml(task, nml_keys, nml_python, Path(tmp))
                if "error" in nml:
                    print(f"{task.name}: NannyML failed: {nml['error']}", flush=True)
            entry: dict[str, Any] = {"counts": task.counts, "metric": task.metric}
            if "hourly" in keys:
                small = keys["hourly"] == ""
                entry["counts"]["hours_dropped"] = int(
                    task.later.loc[small, task.spec.timestamp]
                    .dt.tz_convert(FLIGHTS_TZ)
                    .dt.floor("h")
                    .nunique()
                )
                entry["counts"]["hours_kept"] = int(keys["hourly"][~small].nunique())
                entry["counts"]["rows_in_dropped_hours"] = int(small.sum())
            nml_name = "NannyML DLE" if task.name == "regression" else "NannyML CBPE"
            for g in grains:
                dw = per_period_driftwatch(task, est, keys[g])
                tables = {"driftwatch": dw}
                if "error" not in nml and g in nml:
                    n = nml[g].set_index(PERIOD)
                    nt = dw[[PERIOD, "month", "rows", "realised"]].join(n, on=PERIOD)
                    # NannyML's 90% interval from its sampling error (its band is 3 sigma).
                    nt["low"] = nt["estimate"] - Z90 * nt["sampling_error"]
                    nt["high"] = nt["estimate"] + Z90 * nt["sampling_error"]
                    tables[nml_name] = nt
                    band = nt.assign(low=nt["lower_band"], high=nt["upper_band"])
                    tables[f"{nml_name} (own 3-sigma band)"] = band
                figs = {k: figures(task, t) for k, t in tables.items()}
                entry[g] = {
                    "figures": figs,
                }
                if g == "hourly":  # ~5,000 rows a task: a compressed CSV beside the JSON
                    hourly[task.name] = tables["driftwatch"]
                else:
                    entry[g]["periods"] = {
                        k: t.replace({np.nan: None}).to_dict(orient="records")
                        for k, t in tables.items()
                    }
                title = f"{task.name}, {task.metric}, {g} periods (baseline {task.baseline:.3f})"
                report.append(side_by_side(title, figs))
                monthly_tables = {k: v for k, v in tables.items() if "band" not in k}
                report.append(monthly_table(f"{title}: by month", monthly_tables))
                print("\n" + report[-2] + "\n\n" + report[-1], flush=True)
            if "error" in nml:
                entry["nannyml_error"] = nml["error"]
            else:
                entry["nannyml"] = {"seconds": nml["seconds"], "timing": nml["timing"]}
                results["nannyml_version"] = nml.get("version")
            entry["cost"] = cost(task, est, fit_s)
            c = entry["cost"]
            print(
                f"\n{task.name}: estimator fit {c['fit_s']} s; estimate on a day"
                f" ({c['daily']['rows']} rows) {c['daily']['estimate_s']} s ="
                f" {pct(c['daily']['share_of_tick'])} of a warm tick ({c['tick_s']} s); on an"
                f" hour ({c['hourly']['rows']} rows) {c['hourly']['estimate_s']} s ="
                f" {pct(c['hourly']['share_of_tick'])}",
                flush=True,
            )
            results[task.name] = entry
    machine["load_at_end"] = round(os.getloadavg()[0], 2)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    name = "estimate_2013"
    if args.champion_months != [1]:
        name += "_champion_" + "-".join(str(m) for m in args.champion_months)
    name += ("_variant" if loss_params else "") + ("_quick" if args.quick else "")
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    write_hourly(results, hourly, out.with_name(f"{name}_hourly.csv.gz"))
    out.write_text(json.dumps(results, indent=1, default=_json_default) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)} ({results['seconds']} s)")


def write_hourly(results: dict[str, Any], hourly: dict[str, pd.DataFrame], path: Path) -> None:
    """The hourly periods of both tasks in one compressed CSV (column ``task``), named in the
    results (``hourly_periods_file``): as JSON records they made the file ~5 times bigger."""
    if not hourly:
        return
    frame = pd.concat([t.assign(task=name) for name, t in hourly.items()], ignore_index=True)
    frame.round(5).to_csv(path, index=False, compression="gzip")
    results["hourly_periods_file"] = path.name


def _value(text: str) -> Any:
    """A --loss-params value: an int, a float, or the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v)}")


if __name__ == "__main__":
    main()
