"""Big batches on Dask (issue 19): a 10M-row x 22-column partitioned parquet batch on a
LocalCluster of 2 workers; 1M / 3M / 10M rows for the scaling; summary vs exact statistics.

Data (written once under benchmarks/.cache/big_batches, not in git): the NYC flights of
March-December 2013 resampled in time order (each day's flights drawn with replacement,
the days in calendar order, so every partition is a contiguous stretch of the year as
production sends it), 22 columns: the timestamp, 3 categories, and 18 numbers, among them
``speed`` (mph, continuous: the quantile lattice) and ``delay_gain``. Partitions of 500,000 rows
(one file, one row group each). The reference is January-February 2013 (~51k rows): its exact
profile is fitted first, outside the timings.

For every size, timed with the cluster already up (its start-up is reported apart):
the summaries on 2 workers, merged, and the check of the merged summary (Evidently's tests,
and Bonferroni's K-S / chi-square). Peak memory: psutil samples every process (this client,
the scheduler runs in it; the nannies and workers) every 50 ms; the peak of the sum and each
process's own peak. Exact statistics at 10M rows ("in chunks": one column of the whole batch
read at a time, the exact path of ``DriftDetector.check`` on it): per column the relative
difference of the statistic and whether the verdict matches.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/big_batches.py
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/big_batches.py --sizes 1 3 --no-exact

Writes benchmarks/results/big_batches.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from driftwatch.store.flights import WEATHER_COLUMNS  # noqa: E402  (after the path insert)

CACHE = HERE / ".cache" / "big_batches"
PART_ROWS = 500_000
CATEGORICAL = ["origin", "dest", "carrier"]
NUMERICAL = [
    "distance",
    "hour",
    "weekday_num",
    "month",
    "day",
    *WEATHER_COLUMNS,
    "air_time",
    "arr_delay",
    "dep_delay",
    "speed",
    "delay_gain",
]
COLUMNS = ["time_hour", *CATEGORICAL, *NUMERICAL]  # 22


def flights_frame() -> pd.DataFrame:
    from driftwatch.store.flights import FLIGHTS_TZ, load_flights

    fl = load_flights()
    local = fl["time_hour"].dt.tz_convert(FLIGHTS_TZ)
    fl["month"] = local.dt.month.astype(np.int64)
    fl["day"] = local.dt.day.astype(np.int64)
    fl["weekday_num"] = local.dt.weekday.astype(np.int64)
    fl["speed"] = fl["distance"] / fl["air_time"] * 60.0
    fl["delay_gain"] = fl["dep_delay"] - fl["arr_delay"]
    for c in CATEGORICAL:
        fl[c] = fl[c].astype(str)
    return fl[COLUMNS]


def build(rows_total: int) -> tuple[Path, Path]:
    """The reference file and the partitioned batch (written once; reused when present)."""
    ref_path = CACHE / "reference.parquet"
    data = CACHE / f"batch_{rows_total // 1_000_000}M"
    done = data / "_DONE"
    if ref_path.exists() and done.exists():
        return ref_path, data
    CACHE.mkdir(parents=True, exist_ok=True)
    fl = flights_frame()
    ref = fl[fl["month"] <= 2].reset_index(drop=True)
    ref.to_parquet(ref_path, index=False)
    pool = fl[fl["month"] >= 3].reset_index(drop=True)
    rng = np.random.default_rng(0)
    # Each day's rows drawn with replacement, days in order: contiguous like production.
    days = pool["time_hour"].dt.tz_convert("America/New_York").dt.date
    groups = list(pool.groupby(days.to_numpy()).indices.values())  # in calendar order
    per_day = rows_total / len(pool)
    data.mkdir(parents=True, exist_ok=True)
    buf: list[pd.DataFrame] = []
    held, part = 0, 0
    for idx in groups:
        take = rng.choice(idx, size=round(len(idx) * per_day), replace=True)
        # In time order by hour, in random order within the hour: copies of one flight are not
        # neighbours (sorted copies would let parquet's run-length encoding shrink the files
        # ~10x, which real data does not allow).
        rows = pool.iloc[take]
        buf.append(rows.iloc[np.argsort(rows["time_hour"].to_numpy(), kind="stable")])
        held += len(take)
        while held >= PART_ROWS:
            frame = pd.concat(buf, ignore_index=True)
            frame.iloc[:PART_ROWS].to_parquet(
                data / f"part-{part:04d}.parquet", index=False, row_group_size=PART_ROWS
            )
            part += 1
            rest = frame.iloc[PART_ROWS:]
            buf, held = [rest], len(rest)
    if held:
        pd.concat(buf, ignore_index=True).to_parquet(
            data / f"part-{part:04d}.parquet", index=False, row_group_size=PART_ROWS
        )
    done.write_text("ok")
    return ref_path, data


def subset(data: Path, millions: int) -> Path:
    """A dataset of the first ``millions`` x 1M rows: symlinks to the big one's files."""
    out = CACHE / f"first_{millions}M"
    files = sorted(data.glob("part-*.parquet"))[: millions * 1_000_000 // PART_ROWS]
    out.mkdir(exist_ok=True)
    for f in files:
        link = out / f.name
        if not link.exists():
            link.symlink_to(f)
    return out


class MemorySampler:
    """Peak RSS of this process and all its descendants (sampled every ``period`` s)."""

    def __init__(self, period: float = 0.05) -> None:
        import psutil

        self._me = psutil.Process()
        self.period = period
        self.peak_total = 0
        self.peak_by: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _name(self, p: Any) -> str:
        if p.pid == self._me.pid:
            return "client+scheduler"
        try:
            cmd = " ".join(p.cmdline())
        except Exception:
            cmd = ""
        return ("worker" if "spawn_main" in cmd or "multiprocessing" in cmd else "child") + (
            f" {p.pid}"
        )

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            try:
                procs = [self._me, *self._me.children(recursive=True)]
            except psutil.Error:
                procs = [self._me]
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                name = self._name(p)
                self.peak_by[name] = max(self.peak_by.get(name, 0), rss)
            self.peak_total = max(self.peak_total, total)
            self._stop.wait(self.period)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """User + system CPU time of this process and its descendants (the workers) so far: what a
    check costs whatever else the shared machine runs (wall time does not say that)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def detectors(ref: pd.DataFrame) -> dict[str, Any]:
    from driftwatch.engine.drift import DriftDetector

    return {
        m: DriftDetector(numerical=NUMERICAL, categorical=CATEGORICAL, method=m).fit(ref)
        for m in ("evidently", "bonferroni")
    }


def exact_in_chunks(det: Any, data: Path) -> dict[str, Any]:
    """The exact statistics of every column of the whole batch, one column read at a time."""
    from driftwatch.engine.drift import DriftDetector
    from driftwatch.store.partitions import parquet_files

    files = parquet_files(data)
    out = {}
    for col in det.profile_.columns:
        values = pd.concat(
            [pd.read_parquet(f, columns=[col])[col] for f in files], ignore_index=True
        )
        one = DriftDetector(
            numerical=[col] if col in NUMERICAL else [],
            categorical=[col] if col in CATEGORICAL else [],
            rule=det.rule,
        ).with_profile(det.profile_)
        one.ignore = [c for c in det.profile_.columns if c != col]
        res = one.check(pd.DataFrame({col: values}))
        out[col] = res.column(col)
        del values
    if det.rule.corrects_p_values:  # judged as one family, as the check judges them
        from driftwatch.engine.drift import correct_p_values

        judged = correct_p_values(list(out.values()), det.rule.name, det.rule.alpha)
        out = {c.column: c for c in judged}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 10], help="millions of rows")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="1GB")
    ap.add_argument("--points", type=int, default=2048)
    ap.add_argument("--no-exact", action="store_true", help="skip the exact comparison")
    ap.add_argument("--out", default=str(HERE / "results" / "big_batches.json"))
    args = ap.parse_args()

    import scipy.stats  # noqa: F401  (imported once per process: not part of a check's time)

    from driftwatch.config import ScaleSettings
    from driftwatch.orchestration.dask_cluster import check_big, dask_client, summarise
    from driftwatch.store.partitions import partitions

    t0 = time.perf_counter()
    ref_path, data = build(max(args.sizes) * 1_000_000)
    build_s = time.perf_counter() - t0
    ref = pd.read_parquet(ref_path)
    t0 = time.perf_counter()
    dets = detectors(ref)
    profile_s = time.perf_counter() - t0
    kinds = {c: s.kind for c, s in dets["evidently"].profile_.columns.items()}
    lattices = dets["evidently"].lattices(args.points)
    scale = ScaleSettings(
        runner="local_cluster",
        n_workers=args.workers,
        threads_per_worker=1,
        memory_limit=args.memory_limit,
        points=args.points,
    )
    load = os.getloadavg()
    runs: list[dict[str, Any]] = []
    results: dict[int, dict[str, Any]] = {}
    with MemorySampler() as mem:
        t0 = time.perf_counter()
        with dask_client(scale) as client:
            cluster_s = time.perf_counter() - t0
            for millions in args.sizes:
                path = data if millions == max(args.sizes) else subset(data, millions)
                row: dict[str, Any] = {"rows": millions * 1_000_000}
                # One check = summarise every partition on the workers, merge, judge. The
                # second method re-summarises (a check does not reuse another's summary).
                for method, det in dets.items():
                    t0, c0 = time.perf_counter(), cpu_seconds()
                    res = check_big(det, str(path), scale, client=client)
                    row[f"{method}_seconds"] = round(time.perf_counter() - t0, 2)
                    row[f"{method}_cpu_seconds"] = round(cpu_seconds() - c0, 2)
                    row[f"{method}_verdict"] = res.verdict
                    row["partitions"] = res.description.split("summarised from ")[-1].split()[0]
                    results[millions] = results.get(millions, {}) | {method: res}
                # Where the time goes: the partitions' summaries vs judging the merged one.
                t0, c0 = time.perf_counter(), cpu_seconds()
                summary = summarise(client, partitions(path, scale.partition_rows), kinds, lattices)
                row["summarise_seconds"] = round(time.perf_counter() - t0, 2)
                row["summarise_cpu_seconds"] = round(cpu_seconds() - c0, 2)
                t0 = time.perf_counter()
                dets["evidently"].check_summary(summary)
                row["judge_seconds"] = round(time.perf_counter() - t0, 3)
                row["load_1min"] = round(os.getloadavg()[0], 2)
                runs.append(row)
                print(f"{millions}M rows: {row}", flush=True)
    peak_total_mb = mem.peak_total / 2**20
    per_process = {k: round(v / 2**20) for k, v in sorted(mem.peak_by.items())}

    accuracy: list[dict[str, Any]] = []
    exact_s = None
    if not args.no_exact:
        big = max(args.sizes)
        t0 = time.perf_counter()
        for method, det in dets.items():
            exact = exact_in_chunks(det, data)
            summ = results[big][method]
            for col, e in exact.items():
                s = summ.column(col)
                rel = abs(s.statistic - e.statistic) / max(abs(e.statistic), 1e-12)
                accuracy.append(
                    {
                        "method": method,
                        "column": col,
                        "test": e.test if e.test == s.test else f"{e.test} (summary: {s.test})",
                        "exact": e.statistic,
                        "summary": s.statistic,
                        "relative_difference": rel,
                        "same_verdict": bool(s.drifted == e.drifted),
                    }
                )
        exact_s = round(time.perf_counter() - t0, 1)

    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_at_start": [round(x, 2) for x in load],
            "load_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "workers": args.workers,
            "threads_per_worker": 1,
            "memory_limit": args.memory_limit,
            "points": args.points,
            "partition_rows": PART_ROWS,
            "columns": len(COLUMNS),
            "reference_rows": len(ref),
        },
        "data_build_seconds": round(build_s, 1),
        "reference_profile_seconds": round(profile_s, 2),
        "cluster_start_seconds": round(cluster_s, 2),
        "runs": runs,
        "peak_memory_total_mb": round(peak_total_mb),
        "peak_memory_by_process_mb": per_process,
        "exact_seconds": exact_s,
        "accuracy": accuracy,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))

    print(f"\nload {load[0]:.1f} (1 min avg) at start; cluster start {cluster_s:.1f} s;")
    print(
        "| rows | partitions | check, Evidently's tests: wall s (CPU s) | check, K-S / chi-square:"
        " wall s (CPU s) | summaries alone: wall s (CPU s) | judging the merged summary (s) |"
        " load (1 min) | verdicts |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in runs:
        print(
            f"| {r['rows']:,} | {r['partitions']} | {r['evidently_seconds']}"
            f" ({r['evidently_cpu_seconds']}) | {r['bonferroni_seconds']}"
            f" ({r['bonferroni_cpu_seconds']}) | {r['summarise_seconds']}"
            f" ({r['summarise_cpu_seconds']}) | {r['judge_seconds']} | {r['load_1min']} |"
            f" {r['evidently_verdict']} / {r['bonferroni_verdict']} |"
        )
    print(f"\npeak memory, all processes together: {peak_total_mb:.0f} MB; by process (MB):")
    for k, v in per_process.items():
        print(f"  {k}: {v}")
    if accuracy:
        print("\n| method | column | test | exact | summary | relative difference | same verdict |")
        print("|---|---|---|---:|---:|---:|---|")
        for a in accuracy:
            print(
                f"| {a['method']} | {a['column']} | {a['test']} | {a['exact']:.6g} |"
                f" {a['summary']:.6g} | {a['relative_difference']:.2e} | {a['same_verdict']} |"
            )
        worst = max(accuracy, key=lambda a: a["relative_difference"])
        print(
            f"\nworst: {worst['method']} {worst['column']} {worst['relative_difference']:.2e};"
            f" all verdicts same: {all(a['same_verdict'] for a in accuracy)}"
        )


if __name__ == "__main__":
    main()
