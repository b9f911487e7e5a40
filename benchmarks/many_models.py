"""Many models in one deployment (issue 19): one tick over 20 models against 20 single runs.

20 generated models, each with its own data (10 numerical + 3 categorical features, a
regression target, a 10,000-row reference of its own: other means, other scales, other
categories), all in one config with ``models:`` and the shipped config's settings otherwise
(calibrated drift thresholds on random reference rows, since the generated data has no time).
Every measured tick lands one 10,000-row quiet batch (labels included) per model:

1. ``first tick``: one parent run over the 20 models, no champion yet: each trains its first;
   the second tick calibrates the thresholds of each champion's new reference (cached after).
2. ``one tick``: one parent run over the 20 models, a child run each, concurrently
   (``orchestration.max_parallel_models``): total wall time, and each model's child run's wall
   time (its steps and Prefect's per-run overhead).
3. ``20 single runs``: the same work as 20 single-model runs one after another in the same
   process (``driftwatch run --model NAME`` each; the Prefect API is already up). 2 and 3 are
   measured in ``--repeats`` pairs, the order alternating, each with the load average at its
   start (the machine is shared): compare within the run, medians over the repeats.
4. ``20 processes``: ``python -m driftwatch run --model NAME`` in a process of its own, for
   ``--processes`` of the models (each pays its imports and a Prefect API start of its own),
   extrapolated to 20 and marked so.
5. ``one corrupt``: one model's batch file is garbage: the other 19 complete (asserted).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/many_models.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/many_models.py --models 6 --processes 2

Writes benchmarks/results/many_models.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

NUMERICAL = [f"x{i}" for i in range(10)]
CATEGORICAL = ["region", "tier", "channel"]


def generate(model: int, rows: int, seed: int) -> pd.DataFrame:
    """Model ``model``'s data: its own feature means, scales and categories, a stable relation."""
    rng = np.random.default_rng(seed)
    own = np.random.default_rng(1000 + model)  # what makes this model's data its own
    means, scales = own.normal(0, 5, 10), own.uniform(0.5, 3, 10)
    weights = own.normal(0, 1, 10)
    x = rng.normal(means, scales, size=(rows, 10))
    frame = pd.DataFrame(x, columns=NUMERICAL)
    for j, col in enumerate(CATEGORICAL):
        levels = [f"m{model}-{col}-{k}" for k in range(3 + j * 2)]
        frame[col] = rng.choice(levels, size=rows, p=own.dirichlet(np.ones(len(levels))))
    effect = frame["region"].map({v: i for i, v in enumerate(sorted(frame["region"].unique()))})
    frame["target"] = (x - means) / scales @ weights + effect + rng.normal(0, 0.5, rows)
    return frame


def write_config(work: Path, n: int, workers: int) -> Path:
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["paths"] = {"reference": "refs/m00.parquet", "state": "state", "landing": "landing"}
    raw["model"] = {
        "task": "regression",
        "target": "target",
        "numerical": NUMERICAL,
        "categorical": CATEGORICAL,
        "estimator": "hist_gradient_boosting",
        "params": {"max_iter": 50},
    }
    raw["drift"]["horizons"] = []  # no time column: each batch judged whole
    raw["quality"]["lookback_hours"] = None
    raw["retrain"].update({"max_age_days": None, "min_age_days": None})
    raw["orchestration"] = {"retries": 0, "retry_delay_seconds": 0, "max_parallel_models": workers}
    raw["report"] = {"html": False}
    # Warm-up cost only (the measured ticks read cached thresholds): 1,000 resampled batches.
    raw["drift"]["calibration"]["batches"] = 1000
    raw["models"] = [
        {"name": f"m{i:02d}", "paths": {"reference": f"refs/m{i:02d}.parquet"}} for i in range(n)
    ]
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def land(work: Path, n: int, tick: int, rows: int, corrupt: int | None = None) -> None:
    for i in range(n):
        target = work / "landing" / f"m{i:02d}" / f"batch-{tick:02d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        if i == corrupt:
            target.write_bytes(b"PAR1 not a parquet file at all PAR1")
        else:
            generate(i, rows, seed=100 * tick + i).to_parquet(target, index=False)


def seconds_of(run: Any) -> float | None:
    """A model's child run, wall time (its steps plus Prefect's per-run overhead)."""
    return run.seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--rows", type=int, default=10_000, help="rows per batch")
    ap.add_argument("--reference-rows", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=4, help="orchestration.max_parallel_models")
    ap.add_argument("--processes", type=int, default=2, help="models run as separate processes")
    ap.add_argument("--repeats", type=int, default=3, help="warm tick / single-runs pairs")
    ap.add_argument("--out", default=str(HERE / "results" / "many_models.json"))
    args = ap.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    n = args.models
    work = Path(tempfile.mkdtemp(prefix="driftwatch-many-"))
    os.environ["PREFECT_HOME"] = str(work / "prefect-home")
    (work / "refs").mkdir()
    for i in range(n):
        generate(i, args.reference_rows, seed=i).to_parquet(
            work / "refs" / f"m{i:02d}.parquet", index=False
        )
    config = write_config(work, n, args.workers)
    from driftwatch.orchestration import prefect_env

    prefect_env.configure()
    from driftwatch.orchestration.runner import run_models, run_once

    out: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "models": n,
        "features": "10 numerical + 3 categorical",
        "batch_rows": args.rows,
        "reference_rows": args.reference_rows,
        "max_parallel_models": args.workers,
        "prefect_api": os.environ.get("PREFECT_API_URL") or "temporary local API (sqlite)",
    }
    rows: list[tuple[str, float, str, str]] = []

    def save() -> None:
        out["table"] = [list(r) for r in rows]
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")

    def tick(label: str, tick_no: int, corrupt: int | None = None) -> list[Any]:
        land(work, n, tick_no, args.rows, corrupt)
        t0 = time.perf_counter()
        state, runs = run_models(str(config))
        wall = time.perf_counter() - t0
        per = [s for s in map(seconds_of, runs) if s is not None]
        outcomes = sorted({r.result["outcome"] if r.result else r.state for r in runs})
        out[label] = {
            "wall_seconds": round(wall, 2),
            "per_model_median_seconds": round(statistics.median(per), 2) if per else None,
            "per_model_max_seconds": round(max(per), 2) if per else None,
            "completed": sum(r.ok for r in runs),
            "failed": [r.model for r in runs if not r.ok],
            "outcomes": outcomes,
            "message": state.message,
            "load_average_1min": round(os.getloadavg()[0], 1),
        }
        rows.append(
            (
                label,
                wall,
                f"{statistics.median(per):.1f} / {max(per):.1f}" if per else "-",
                f"{sum(r.ok for r in runs)}/{n} completed; {', '.join(outcomes)}",
            )
        )
        print(f"{label}: {wall:.1f} s: {state.message}", flush=True)
        save()  # after every stage: a run cut short keeps what it measured
        return runs

    def single_runs(label: str, tick_no: int) -> dict[str, Any]:
        """The same work as one tick, as n single-model runs one after another."""
        land(work, n, tick_no, args.rows)
        t0 = time.perf_counter()
        per, states = [], []
        for i in range(n):
            started = time.perf_counter()
            state, _ = run_once(str(config), model=f"m{i:02d}")
            per.append(time.perf_counter() - started)
            states.append(state.name)
        wall = time.perf_counter() - t0
        out[label] = {
            "wall_seconds": round(wall, 2),
            "per_model_median_seconds": round(statistics.median(per), 2),
            "per_model_max_seconds": round(max(per), 2),
            "completed": states.count("Completed"),
            "load_average_1min": round(os.getloadavg()[0], 1),
        }
        rows.append(
            (
                f"{label}, one after another (one process)",
                wall,
                f"{statistics.median(per):.1f} / {max(per):.1f}",
                f"{states.count('Completed')}/{n} completed",
            )
        )
        print(f"{label}: {wall:.1f} s", flush=True)
        assert states.count("Completed") == n, states
        save()
        return out[label]

    tick(f"first tick (trains {n} champions)", 1)
    tick("second tick (calibrates thresholds for each champion's window)", 2)

    # Warm: one tick over all models against the same work as n single-model runs one after
    # another in this process (`driftwatch run --model NAME` each), measured in pairs, the
    # order alternating, so that both see the same load (the machine is shared).
    ticks, singles, loads = [], [], []
    tick_no = 3
    for rep in range(args.repeats):
        for kind in ("tick", "single") if rep % 2 == 0 else ("single", "tick"):
            loads.append(os.getloadavg()[0])
            if kind == "tick":
                tick(f"one tick, all models concurrently (repeat {rep + 1})", tick_no)
                ticks.append(out[f"one tick, all models concurrently (repeat {rep + 1})"])
            else:
                singles.append(single_runs(f"{n} single runs (repeat {rep + 1})", tick_no))
            tick_no += 1
    summary = {
        "repeats": args.repeats,
        "load_average_1min": [round(x, 1) for x in loads],
        "tick_wall_seconds": [t["wall_seconds"] for t in ticks],
        "single_runs_wall_seconds": [s["wall_seconds"] for s in singles],
        "tick_median_seconds": statistics.median(t["wall_seconds"] for t in ticks),
        "single_runs_median_seconds": statistics.median(s["wall_seconds"] for s in singles),
    }
    summary["tick_over_single_runs"] = round(
        summary["tick_median_seconds"] / summary["single_runs_median_seconds"], 2
    )
    out["warm: tick vs single runs"] = summary
    print(
        f"warm, median of {args.repeats}: tick {summary['tick_median_seconds']:.1f} s,"
        f" {n} single runs {summary['single_runs_median_seconds']:.1f} s"
        f" (x{summary['tick_over_single_runs']}); load average {min(loads):.1f}-{max(loads):.1f}",
        flush=True,
    )
    save()

    # separate processes: each pays its imports and a Prefect API start of its own
    k = min(args.processes, n)
    land(work, n, tick_no, args.rows)
    tick_no += 1
    walls = []
    for i in range(k):
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "driftwatch", "run", "-c", str(config), "--model", f"m{i:02d}"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )
        walls.append(time.perf_counter() - t0)
        assert done.returncode == 0, done.stderr[-2000:]
    if k:
        each = statistics.mean(walls)
        out["single runs in separate processes"] = {
            "measured_processes": k,
            "seconds_each": [round(w, 2) for w in walls],
            "extrapolated_wall_seconds": round(each * n, 1),
        }
        rows.append(
            (
                f"{n} single-model runs as separate processes (measured {k}, x{n / k:g})",
                each * n,
                f"{each:.1f} (process)",
                f"{k}/{k} completed",
            )
        )
        # the models whose file was left by the processes' round are taken at the next tick
        run_models(str(config))

    # one model's file is corrupt: the others complete
    runs = tick("one tick, one model's file corrupt", tick_no, corrupt=n // 2)
    failed = [r.model for r in runs if not r.ok]
    assert failed == [f"m{n // 2:02d}"], failed
    assert sum(r.ok for r in runs) == n - 1, [(r.model, r.state) for r in runs]
    print(f"corrupt file: {n - 1} of {n} models completed; failed alone: {failed[0]}")

    print()
    print(f"| {n} models, 10k-row batches | wall (s) | per model: median / max (s) | outcome |")
    print("|---|---:|---|---|")
    for label, wall, per_model, outcome in rows:
        print(f"| {label} | {wall:.1f} | {per_model} | {outcome} |")
    save()
    print(f"\nwrote {args.out} (work dir {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
