"""What a user waits for: whole processes, not in-process calls (issue 20).

1. ``check``: the whole process ``python -m driftwatch check --reference ref.parquet --current
   cur.parquet --json`` (no ``--config``: every column checked with Evidently's tests) against
   Evidently's ``DataDriftPreset`` in its own process on the same two files (import, read,
   report, JSON out), in the same run, alternating, ``--repeat`` times each (median). Peak
   memory is the child's own max RSS (``os.wait4``). The files are drift_speed.py's: 20
   numerical + 2 categorical columns, half the numerical ones shifted a little.
2. ``tick``: the warm hourly tick of ``driftwatch daemon`` with the shipped config.yaml (state
   in a temp dir): the ephemeral Prefect API already up, a champion trained, the time-block
   thresholds already calibrated, then ``--ticks`` hourly batches of ~50 flights (one departure
   hour of February 2013, inside the reference period, landed without their labels) that raise
   no alarm. Each tick is split into: the daemon's config reload, driftwatch's own work (the
   bodies of the flow's steps: reading, judging, reporting, history, MLflow), the flow body's
   glue (locks, ports), Prefect's per-task-run overhead and Prefect's flow-run overhead; and
   the estimated performance's share (issue 18: the champion's estimate on the batch, inside
   the "assess batch" step; target < 10% of the tick).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/process_speed.py            # check + tick
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/process_speed.py --only check --sizes 100000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/process_speed.py --only check --baseline ../main
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/process_speed.py --only estimate

Writes benchmarks/results/process_speed.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import functools
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

# Evidently in its own process: import, read both files, one DataDriftPreset report, JSON out.
EVIDENTLY = """
import sys, warnings
warnings.simplefilter("ignore")
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
num = [c for c in ref.columns if c.startswith("num_")]
cat = [c for c in ref.columns if not c.startswith("num_")]
dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
snap = Report([DataDriftPreset()]).run(
    Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
)
print(snap.json())
"""


# The baseline checkout may have no ``python -m driftwatch``.
BASELINE = "import sys; from driftwatch.cli import main; sys.exit(main())"

# The parts of a warm tick, in the order the table shows them (seconds).
TICK_PARTS = (
    "total_s",
    "cpu_s",
    "config_reload_s",
    "driftwatch_steps_s",
    "flow_glue_s",
    "prefect_task_runs_s",
    "prefect_flow_run_s",
    "estimate_s",
)


def run_child(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT
) -> dict[str, float]:
    """Wall seconds, the child's own CPU seconds (user + system: what the wall time would be on
    an idle core for a one-thread process) and peak RSS (MB); the output is discarded."""
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(cmd, stdout=devnull, stderr=subprocess.PIPE, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[:4]} exited {proc.returncode}: {err[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"seconds": seconds, "cpu_s": cpu, "peak_mb": usage.ru_maxrss / 1024}


def check_rows(
    sizes: list[int], repeat: int, evidently_max: int, work: Path, baseline: Path | None
) -> list[dict]:
    """``baseline``: another checkout of driftwatch run the same way (before/after, same run)."""
    from drift_speed import generate

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows = []
    for n in sizes:
        ref, cur = work / f"ref_{n}.parquet", work / f"cur_{n}.parquet"
        if not ref.exists():
            generate(n, 1, False).to_parquet(ref, index=False)
            generate(n, 2, True).to_parquet(cur, index=False)
        dw_cmd = [sys.executable, "-m", "driftwatch", "check", "--reference", str(ref)]
        dw_cmd += ["--current", str(cur), "--json"]
        ev_cmd = [sys.executable, "-c", EVIDENTLY, str(ref), str(cur)]
        base_cmd = [sys.executable, "-c", BASELINE, *dw_cmd[3:]]
        base_env = {**os.environ, "PYTHONPATH": str(baseline)}
        run_child(dw_cmd, env)  # page cache warm for both tools
        dw, ev, base = [], [], []
        for _ in range(repeat):
            dw.append(run_child(dw_cmd, env))
            if n <= evidently_max:
                ev.append(run_child(ev_cmd, env))
            if baseline:
                # cwd too: `python -c` puts the working directory first on sys.path.
                base.append(run_child(base_cmd, base_env, cwd=baseline))
        row: dict[str, Any] = {
            "rows": n,
            "columns": 22,
            "driftwatch_s": round(statistics.median(r["seconds"] for r in dw), 2),
            "driftwatch_s_all": [round(r["seconds"], 2) for r in dw],
            "driftwatch_cpu_s": round(statistics.median(r["cpu_s"] for r in dw), 2),
            "driftwatch_peak_mb": round(max(r["peak_mb"] for r in dw)),
        }
        if base:
            row["baseline_s"] = round(statistics.median(r["seconds"] for r in base), 2)
            row["baseline_cpu_s"] = round(statistics.median(r["cpu_s"] for r in base), 2)
            row["baseline_peak_mb"] = round(max(r["peak_mb"] for r in base))
        if ev:
            row["evidently_s"] = round(statistics.median(r["seconds"] for r in ev), 2)
            row["evidently_s_all"] = [round(r["seconds"], 2) for r in ev]
            row["evidently_cpu_s"] = round(statistics.median(r["cpu_s"] for r in ev), 2)
            row["evidently_peak_mb"] = round(max(r["peak_mb"] for r in ev))
            row["ratio"] = round(row["evidently_s"] / row["driftwatch_s"], 1)
            row["cpu_ratio"] = round(row["evidently_cpu_s"] / row["driftwatch_cpu_s"], 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


# -- the warm tick ---------------------------------------------------------------------------
class Timers:
    """Seconds per named part of a tick, reset per tick."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}
        self.steps: dict[str, float] = {}

    def add(self, part: str, seconds: float, step: str | None = None) -> None:
        self.parts[part] = self.parts.get(part, 0.0) + seconds
        if step:
            self.steps[step] = self.steps.get(step, 0.0) + seconds


def instrument(timers: Timers) -> None:
    """Time the flow body, each task run and each step's body, without changing what runs:
    PrefectSteps runs each step as a task whose body is the step function, wrapped here in a
    timer (benchmark instrumentation; the flow, tasks and steps are the production ones)."""
    from driftwatch.orchestration import monitor_flow as mf
    from driftwatch.orchestration import tasks

    def timed_body(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def body(*args: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                timers.add("step bodies", time.perf_counter() - t0, name)

        return body

    original_call = tasks.PrefectSteps.__call__

    def call(self: Any, name: str, fn: Any, *args: Any, retry: bool = False) -> Any:
        t0 = time.perf_counter()
        try:
            return original_call(self, name, timed_body(name, fn), *args, retry=retry)
        finally:
            timers.add("task runs", time.perf_counter() - t0)

    tasks.PrefectSteps.__call__ = call  # type: ignore[method-assign]
    plan_task = mf.load_plan_task
    plan_task.fn = timed_body("load plan", plan_task.fn)

    def load_plan(*args: Any, **kwargs: Any) -> Any:  # the flow passes (config_path, model)
        t0 = time.perf_counter()
        try:
            return plan_task(*args, **kwargs)
        finally:
            timers.add("task runs", time.perf_counter() - t0)

    mf.load_plan_task = load_plan  # type: ignore[assignment]
    flow_fn = mf.monitor_flow.fn

    @functools.wraps(flow_fn)
    def flow_body(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return flow_fn(*args, **kwargs)
        finally:
            timers.add("flow body", time.perf_counter() - t0)

    mf.monitor_flow.fn = flow_body

    # The estimated performance (issue 18): inside the "assess batch" step's body.
    from driftwatch.monitor import pipeline

    estimate = pipeline.estimate_quality

    @functools.wraps(estimate)
    def timed_estimate(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return estimate(*args, **kwargs)
        finally:
            timers.add("estimate", time.perf_counter() - t0)

    pipeline.estimate_quality = timed_estimate


def tick_split(ticks: int, html_every_run: bool) -> dict[str, Any]:
    """The daemon's tick, warm; see the module docstring. ``html_every_run``: with Evidently's
    page on every run too (``report.evidently: true``) next to the shipped driftwatch page."""
    import pandas as pd

    from driftwatch.demo.run import quiet_prefect_console, write_demo_config
    from driftwatch.orchestration import prefect_env
    from driftwatch.store.batches import split_batches
    from driftwatch.store.flights import FLIGHTS_TZ

    prefect_env.configure()
    quiet_prefect_console()
    from driftwatch.orchestration.daemon import Daemon
    from driftwatch.orchestration.runner import run_once

    work = Path(tempfile.mkdtemp(prefix="driftwatch-tick-"))
    extra = {"report": {"html": True, "evidently": True}} if html_every_run else {}
    config = write_demo_config(ROOT / "config.yaml", work / "state", **extra)
    daemon = Daemon(config, interval_seconds=3600)
    settings = daemon.settings
    landing = settings.paths.landing
    landing.mkdir(parents=True, exist_ok=True)
    reference = pd.read_parquet(settings.paths.reference)
    target = settings.model.target
    feb = [
        (k, b)
        for k, b in split_batches(reference, "time_hour", "h", FLIGHTS_TZ)
        if k.startswith("2013-02-1") and 40 <= len(b) <= 70
    ]
    timers = Timers()
    instrument(timers)
    rows = []
    for i, (key, batch) in enumerate(feb[: ticks + 2]):
        batch.drop(columns=[target]).to_parquet(landing / f"flights-{key}.parquet", index=False)
        timers.parts.clear()
        timers.steps.clear()
        t0, cpu0 = time.perf_counter(), time.process_time()
        used = daemon.reload()  # what Daemon.tick does: re-read config.yaml, then one flow run
        reload_s = time.perf_counter() - t0
        state, result = run_once(str(used))
        total = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        outcome = (result or {}).get("outcome", state.name)
        phase = ["bootstrap", "first judged tick (calibrates)"][i] if i < 2 else "warm"
        p = timers.parts
        row = {
            "tick": i,
            "batch": key,
            "rows": len(batch),
            "phase": phase,
            "outcome": outcome,
            "total_s": round(total, 3),
            "cpu_s": round(cpu, 3),
            "config_reload_s": round(reload_s, 3),
            "driftwatch_steps_s": round(p.get("step bodies", 0.0), 3),
            "flow_glue_s": round(p.get("flow body", 0.0) - p.get("task runs", 0.0), 3),
            "prefect_task_runs_s": round(p.get("task runs", 0.0) - p.get("step bodies", 0.0), 3),
            "prefect_flow_run_s": round(total - reload_s - p.get("flow body", 0.0), 3),
            "estimate_s": round(p.get("estimate", 0.0), 4),
            "task_runs": len(timers.steps),
            "steps_s": {
                k: round(v, 3) for k, v in sorted(timers.steps.items(), key=lambda x: -x[1])
            },
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    warm = [r for r in rows if r["phase"] == "warm" and r["outcome"] == "no-drift"]
    summary: dict[str, Any] = {"warm_no_drift_ticks": len(warm)}
    for key in TICK_PARTS:
        if warm:
            summary[key] = round(statistics.median(r[key] for r in warm), 3)
    if warm:
        summary["estimate_share"] = round(summary["estimate_s"] / summary["total_s"], 4)
        steps = {k for r in warm for k in r["steps_s"]}
        summary["steps_s"] = {
            k: round(statistics.median(r["steps_s"].get(k, 0.0) for r in warm), 3) for k in steps
        }
    return {"ticks": rows, "summary": summary, "state": str(work)}


def estimate_rows(sizes: list[int], repeat: int) -> dict[str, Any]:
    """The estimate's own cost by batch size, in process: the shipped config's model trained on
    January 2013 less its newest 20%, the loss model fitted on that holdout (timed once), then
    the estimate on contiguous batches of later flights next to the champion's own prediction
    of the same rows (best of ``repeat``)."""
    from driftwatch.config import load_settings
    from driftwatch.model.estimate import LossEstimator
    from driftwatch.model.estimators import features, predict, target, train
    from driftwatch.store.flights import FLIGHTS_TZ, load_flights

    spec = load_settings(ROOT / "config.yaml").model
    flights = load_flights().dropna(subset=[spec.target]).sort_values("time_hour")
    month = flights["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.month
    january, later = flights[month == 1], flights[month > 1]
    n_hold = round(len(january) * 0.2)
    train_rows, holdout = january.iloc[:-n_hold], january.iloc[-n_hold:]
    model = train(train_rows, spec)
    t0 = time.perf_counter()
    est = LossEstimator().fit(
        features(holdout, spec), target(holdout, spec), predict(model, holdout, spec)
    )
    out: dict[str, Any] = {"holdout_rows": n_hold, "fit_s": round(time.perf_counter() - t0, 2)}
    rows = []
    for n in sizes:
        batch = later.iloc[:n]
        x = features(batch, spec)
        p = predict(model, batch, spec)
        est_s, pred_s = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            est.estimate(x, p)
            est_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            predict(model, batch, spec)
            pred_s.append(time.perf_counter() - t0)
        rows.append(
            {"rows": n, "estimate_s": round(min(est_s), 4), "predict_s": round(min(pred_s), 4)}
        )
        print(json.dumps(rows[-1]), flush=True)
    out["sizes"] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["check", "tick", "estimate"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--evidently-max-rows",
        type=int,
        default=100_000,
        help="run Evidently up to this size (1M rows: ~3 min and ~1.8 GB for it)",
    )
    ap.add_argument("--ticks", type=int, default=6, help="warm ticks measured")
    ap.add_argument("--baseline", type=Path, help="another checkout's `check`, e.g. main's")
    ap.add_argument("--tick-child", choices=["shipped", "html"], help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(HERE / "results" / "process_speed.json"))
    args = ap.parse_args()
    if args.tick_child:
        print("RESULT " + json.dumps(tick_split(args.ticks, args.tick_child == "html")))
        return
    out = Path(args.out)
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    # Each part keeps the machine it ran on (a later --only run replaces that part alone).
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_at_start": os.getloadavg()[0],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    results.pop("machine", None)
    if args.only in (None, "check"):
        with tempfile.TemporaryDirectory(prefix="driftwatch-process-") as tmp:
            results["check"] = check_rows(
                args.sizes, args.repeat, args.evidently_max_rows, Path(tmp), args.baseline
            )
        if args.baseline:
            head = subprocess.run(
                ["git", "-C", str(args.baseline), "log", "-1", "--format=%h %s"],
                capture_output=True,
                text=True,
            )
            results["baseline"] = {"path": str(args.baseline), "commit": head.stdout.strip()}
        results["check_machine"] = {**machine, "load_at_end": os.getloadavg()[0]}
    if args.only in (None, "estimate"):
        results["estimate"] = estimate_rows([50, 900, 10_000, 100_000], args.repeat)
        results["estimate_machine"] = {**machine, "load_at_end": os.getloadavg()[0]}
    if args.only in (None, "tick"):
        results["tick"] = {}
        for variant in ("shipped", "html"):
            # Its own process: Prefect's ephemeral API and the imports belong to the "daemon".
            cmd = [sys.executable, __file__, "--tick-child", variant, "--ticks", str(args.ticks)]
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                cwd=ROOT,
            )
            lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not lines:
                raise SystemExit(
                    f"tick benchmark failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                )
            results["tick"][variant] = json.loads(lines[-1][len("RESULT ") :])
        results["tick_machine"] = {**machine, "load_at_end": os.getloadavg()[0]}
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print_tables(results)


def print_tables(results: dict[str, Any]) -> None:
    if "estimate" in results:
        e = results["estimate"]
        print(
            f"\nestimated performance: loss model fitted on {e['holdout_rows']:,} holdout rows"
            f" in {e['fit_s']} s (once per champion)"
        )
        print("| batch rows | estimate (s) | champion's predict (s) |\n|---:|---:|---:|")
        for r in e["sizes"]:
            print(f"| {r['rows']:,} | {r['estimate_s']} | {r['predict_s']} |")
    if "check" in results:
        print(
            "\n| rows | driftwatch check (s) | CPU (s) | peak RSS (MB)"
            " | Evidently process (s) | CPU (s) | peak RSS (MB) | ratio |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in results["check"]:
            ev = (
                f"{r['evidently_s']} | {r['evidently_cpu_s']} | {r['evidently_peak_mb']}"
                f" | {r['ratio']}x (CPU {r['cpu_ratio']}x)"
                if "ratio" in r
                else "- | - | - | -"
            )
            dw = f"{r['driftwatch_s']} | {r['driftwatch_cpu_s']} | {r['driftwatch_peak_mb']}"
            print(f"| {r['rows']:,} | {dw} | {ev} |")
        if any("baseline_s" in r for r in results["check"]):
            print(
                "\n| rows | baseline check (s) | CPU (s) | peak RSS (MB) |\n|---:|---:|---:|---:|"
            )
            for r in results["check"]:
                print(
                    f"| {r['rows']:,} | {r['baseline_s']} | {r['baseline_cpu_s']}"
                    f" | {r['baseline_peak_mb']} |"
                )
    names = {"shipped": "shipped (driftwatch's page)", "html": "report.evidently: true"}
    ticks = {k: v["summary"] for k, v in results.get("tick", {}).items()}
    if ticks:
        n = ", ".join(f"{names[k]}: {s['warm_no_drift_ticks']}" for k, s in ticks.items())
        print(f"\nwarm no-drift ticks, medians in s ({n} ticks)")
        print("| part | " + " | ".join(names[k] for k in ticks) + " |")
        print("|---|" + "---:|" * len(ticks))
        for key in TICK_PARTS:
            cells = " | ".join(str(s.get(key, "-")) for s in ticks.values())
            print(f"| {key[:-2].replace('_', ' ')} | {cells} |")
        cells = " | ".join(f"{s.get('estimate_share', 0):.1%}" for s in ticks.values())
        print(f"| estimate / total | {cells} |")
        steps = {k for s in ticks.values() for k in s.get("steps_s", {})}
        first = next(iter(ticks.values())).get("steps_s", {})
        for name in sorted(steps, key=lambda k: -first.get(k, 0.0)):
            cells = " | ".join(str(s.get("steps_s", {}).get(name, "-")) for s in ticks.values())
            print(f"| step: {name} | {cells} |")


if __name__ == "__main__":
    main()
