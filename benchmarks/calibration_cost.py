"""What a random-row calibration (`drift.calibration.quiet: rows`) costs, by batch size, on a
1M-row reference: the cost model of README "Random-row calibration".

Reference: 1,000,000 rows drawn from all 2013 flights (the config's 14 features), with
`distance`, `pressure` and `temp` made continuous by a small jitter (about a million distinct
values each, the worst case for the statistics on distinct values). Each batch size is mapped
to the size it is calibrated for by the monitor's rule (Plan.calibration_rows: exact below 64
rows, a 2^(1/8) step down above, at most drift.calibration.max_batch_rows), then calibrated
with the shipped settings (4,000 resampled batches), uncached, one after the other.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibration_cost.py      # ~2 min

CPU seconds are reported next to wall seconds: on a shared machine the wall time says more
about the other processes than about the calibration.
    .venv/bin/python benchmarks/calibration_cost.py --rows 200000 --sizes 30 1000

Writes benchmarks/results/calibration_cost.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from driftwatch.config import load_settings
from driftwatch.monitor.plan import Plan
from driftwatch.store.flights import load_flights

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="reference rows")
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[30, 100, 1000, 10_000, 100_000, 2_000_000]
    )
    args = ap.parse_args()
    overrides = {"drift.calibration.quiet": "rows", "drift.report_only": [], "drift.ignore": []}
    plan = Plan(settings=load_settings(HERE.parent / "config.yaml", overrides=overrides))
    features = list(plan.settings.model.numerical) + list(plan.settings.model.categorical)
    flights = load_flights()[features]
    rng = np.random.default_rng(0)
    reference = flights.iloc[rng.integers(0, len(flights), args.rows)].reset_index(drop=True)
    for col, width in (("distance", 1.0), ("pressure", 0.1), ("temp", 0.1)):
        reference[col] = reference[col] + rng.uniform(-width / 2, width / 2, args.rows)
    distinct = {c: int(reference[c].nunique()) for c in ("distance", "pressure", "temp")}
    conf = plan.settings.drift.calibration
    rows_out = []
    for n in args.sizes:
        size = plan.calibration_rows(n)
        t0, c0 = time.perf_counter(), time.process_time()
        cal = plan.calibrate_rows(reference, "bench", size)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows_out.append(
            {
                "batch_rows": n,
                "calibrated_rows": size,
                "seconds": round(secs, 2),
                "cpu_seconds": round(cpu, 2),
                "loadavg": os.getloadavg()[0],
            }
        )
        print(
            f"batch {n:,}: calibrated for {size:,} rows in {secs:.1f} s ({cpu:.1f} s CPU)",
            flush=True,
        )
        assert cal.columns
    print(
        f"\nreference {args.rows:,} rows x {len(features)} columns ({distinct} distinct in the"
        f" jittered columns); {conf.batches} resampled batches,"
        f" max_batch_rows {conf.max_batch_rows}\n"
    )
    print("| batch rows | calibrated for | wall s | CPU s | load average |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows_out:
        print(
            f"| {r['batch_rows']:,} | {r['calibrated_rows']:,} | {r['seconds']:.1f} |"
            f" {r['cpu_seconds']:.1f} | {r['loadavg']:.1f} |"
        )
    out = HERE / "results" / "calibration_cost.json"
    out.write_text(
        json.dumps(
            {
                "reference_rows": args.rows,
                "columns": len(features),
                "distinct_in_jittered_columns": distinct,
                "batches": conf.batches,
                "max_batch_rows": conf.max_batch_rows,
                "cpu_count": os.cpu_count(),
                "loadavg_before": os.getloadavg(),
                "python": platform.python_version(),
                "results": rows_out,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
