"""Big batches in the hourly monitor (issue 19 part 3): what judging a partitioned batch per
local hour costs, at 1M, 3M and 10M rows, on a LocalCluster of 2 workers.

The batch and reference are benchmarks/big_batches.py's (NYC flights March-December 2013
resampled day by day in calendar order, 500,000-row partitions; January-February reference),
written once under benchmarks/.cache/big_batches. The model spec is the shipped one without the
columns that data lacks (``weekday``, ``flight_id``): 9 numerical + 3 categorical features,
target ``air_time``, time blocks at 1h, 6h and 1D on the shipped settings.

Timed with the cluster up, the block profile, the three horizons' thresholds and the champion
(HistGradientBoosting as shipped, trained on the reference) ready (their cost is printed
apart: production caches them): the monitor's big-batch port (``DaskBigBatches.summarise``:
every partition read, validated, summarised per local hour, scored by the champion, merged
keeping the newest day) and the judging of the three horizons on the merged hours. Wall and
CPU seconds (every process's user + system time), peak memory of the sum of every process.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/big_monitor.py [--sizes 1 3 10]

Writes benchmarks/results/big_monitor.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from big_batches import MemorySampler, build, cpu_seconds, subset  # noqa: E402


def plan_for(address: str):
    from driftwatch.config import ScaleSettings, load_settings
    from driftwatch.monitor.plan import Plan

    settings = load_settings(HERE.parent / "config.yaml")
    spec = settings.model.model_copy(
        update={
            "numerical": [c for c in settings.model.numerical],
            "categorical": [c for c in settings.model.categorical if c != "weekday"],
            "id_column": None,
        }
    )
    scale = ScaleSettings(runner="address", address=address)
    return Plan(settings=settings.model_copy(update={"model": spec, "scale": scale}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 10], help="millions of rows")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    from driftwatch.engine.blocks import BlockDetector
    from driftwatch.model.estimators import train
    from driftwatch.model.schema import validate_batch
    from driftwatch.orchestration.dask_cluster import DaskBigBatches

    ref_path, data = build(10_000_000)
    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        memory_limit="1GB",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )
    client = Client(cluster)
    client.wait_for_workers(2, timeout=300)
    startup = time.perf_counter() - t0
    plan = plan_for(cluster.scheduler_address)
    spec = plan.settings.model
    t0 = time.perf_counter()
    ref = validate_batch(pd.read_parquet(ref_path), spec, str(ref_path))
    profile = plan.block_profile(ref)
    spans = [pd.Timedelta(h) for h in plan.settings.drift.horizons]
    thresholds = [plan.calibrate_blocks(ref, s).thresholds_ for s in spans]
    prepared = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = train(ref.dropna(subset=[spec.target]), spec, random_state=0)
    trained = time.perf_counter() - t0
    print(
        f"cluster start {startup:.1f} s; profile + 3 thresholds {prepared:.1f} s;"
        f" champion {trained:.1f} s (all apart)"
    )
    rows_out = []
    port = DaskBigBatches(plan)
    for millions in args.sizes:
        path = data if millions == 10 else subset(data, millions)
        for scored in (True, False):
            load = os.getloadavg()[0]
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            with MemorySampler() as mem:
                hours = port.summarise(str(path), profile, max(spans), model if scored else None)
                t1 = time.perf_counter()
                verdicts = [
                    BlockDetector(profile, t, plan.counting).check_summary(hours.window(t.span))
                    for t in thresholds
                ]
            judge = time.perf_counter() - t1
            row = {
                "rows": hours.rows,
                "partitions": hours.partitions,
                "scored": scored,
                "wall_s": round(time.perf_counter() - t0, 2),
                "cpu_s": round(cpu_seconds() - cpu0, 2),
                "judge_s": round(judge, 3),
                "peak_mb": round(mem.peak_total / 2**20),
                "peak_by_mb": {k: round(v / 2**20) for k, v in mem.peak_by.items()},
                "hours_kept": len(hours.hours),
                "verdicts": {span_of(v): v.summary() for v in verdicts},
                "labelled": hours.quality.n if hours.quality else 0,
                "load_1min": round(load, 1),
            }
            rows_out.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "peak_by_mb"}))
    client.close()
    cluster.close()
    print()
    print(
        "| rows | partitions | champion scores each partition | wall s | CPU s | judging 3 horizons | peak memory (all processes) | load (1 min) |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows_out:
        print(
            f"| {r['rows']:,} | {r['partitions']} | {'yes' if r['scored'] else 'no'} |"
            f" {r['wall_s']} | {r['cpu_s']} | {r['judge_s']} s | {r['peak_mb']} MB | {r['load_1min']} |"
        )
    out = HERE / "results" / "big_monitor.json"
    out.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "cluster_start_s": round(startup, 1),
                "profile_and_thresholds_s": round(prepared, 1),
                "champion_train_s": round(trained, 1),
                "runs": rows_out,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


def span_of(result) -> str:
    return str(result.span)


if __name__ == "__main__":
    main()
