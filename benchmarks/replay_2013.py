"""2013 replayed week by week with the shipped config: never retrain, driftwatch, always retrain.

All three start from the same champion, trained on the shipped January reference, and see the
same weekly batches (February to December, labelled). "driftwatch" retrains when the monitor
would (dataset drift on the non-report-only columns, or the champion's RMSE more than 10% over
its baseline) and promotes only a challenger that beats the champion on the newest holdout;
"always" retrains after every batch with the same promotion rule; "never" keeps the January
model. Monthly RMSE is the champion's error on each month's flights as they arrived (before any
retrain on them), pooled over the month's rows. Runs through ``driftwatch.monitor.backtest`` (no state,
no MLflow), so it is the same code path as ``driftwatch backtest --policy``.

    .venv/bin/python benchmarks/replay_2013.py        # ~2 min on 2 cores

Writes benchmarks/results/replay_2013.json, docs/replay_2013.png, prints a markdown table.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd

from driftwatch.config import load_settings
from driftwatch.monitor.backtest import Backtester, BacktestResult
from driftwatch.report.plot import plot_backtest
from driftwatch.store.flights import FLIGHTS_TZ
from driftwatch.store.replay import history_batches, shipped_reference

ROOT = Path(__file__).resolve().parents[1]
POLICIES = {"never retrain": "never", "driftwatch": "config", "always retrain": "always"}


def monthly(result: BacktestResult) -> dict[int, float]:
    frame = result.to_frame()
    frame = frame[frame["value"].notna()]
    month = pd.to_datetime(frame["start"], utc=True).dt.tz_convert(FLIGHTS_TZ).dt.month
    out = {}
    for m, g in frame.groupby(month):
        out[int(m)] = math.sqrt(
            (g["value"] ** 2 * g["labelled_rows"]).sum() / g["labelled_rows"].sum()
        )
    return out


def main() -> None:
    settings = load_settings(ROOT / "config.yaml")
    batches = history_batches(settings, end="2013-12-31")
    results, seconds = {}, {}
    for name, policy in POLICIES.items():
        t0 = time.perf_counter()
        results[name] = Backtester(settings, name, policy).run(batches, shipped_reference(settings))
        seconds[name] = time.perf_counter() - t0
        print(f"{name}: {results[name].summary()} ({seconds[name]:.0f} s)", flush=True)
    months = {name: monthly(r) for name, r in results.items()}
    names = list(POLICIES)
    print(f"\n{len(batches)} weekly batches, Feb-Dec 2013; champion RMSE (minutes) per month\n")
    print("| month | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for m in sorted(months["never retrain"]):
        cells = " | ".join(f"{months[n].get(m, float('nan')):.2f}" for n in names)
        print(f"| {pd.Timestamp(2013, m, 1):%b} | {cells} |")
    summaries = {n: r.summary() for n, r in results.items()}
    print(
        "| **whole replay** | "
        + " | ".join(f"**{summaries[n]['pooled_metric']:.2f}**" for n in names)
        + " |"
    )
    print("| retrains | " + " | ".join(str(summaries[n]["retrains"]) for n in names) + " |")
    print("| promotions | " + " | ".join(str(summaries[n]["promotions"]) for n in names) + " |")
    print(
        "| drift / quality alarms | "
        + " | ".join(f"{summaries[n]['alarms']} / {summaries[n]['quality_alarms']}" for n in names)
        + " |"
    )
    png = plot_backtest(
        [results["driftwatch"]],
        ROOT / "docs" / "replay_2013.png",
        title="2013 replayed weekly with the shipped config (driftwatch backtest)",
        quality_only=[results["never retrain"], results["always retrain"]],
    )
    out = ROOT / "benchmarks" / "results" / "replay_2013.json"
    out.write_text(
        json.dumps(
            {
                "batches": len(batches),
                "monthly_rmse": months,
                "summary": summaries,
                "seconds": seconds,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out} and {png}")


if __name__ == "__main__":
    main()
