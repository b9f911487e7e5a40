"""Soak run of `driftwatch daemon`: many ticks at a short interval with files arriving.

Starts the real daemon (a subprocess, Prefect ephemeral API, MLflow sqlite) on a temporary
state dir, drops a small batch of real flights rows into the landing dir every few ticks (written
to a temp name and renamed into place, as the producer contract says), and at the end checks
the ledger: every dropped file done exactly once (lost = 0, duplicated = 0). Reports the
daemon's RSS after its first tick and at the end.

    .venv/bin/python benchmarks/soak.py --ticks 500 --interval 1

Writes benchmarks/results/soak.json. Not run in CI (about 15 minutes for 500 ticks).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_rss_mb(pid: int) -> float:
    """The daemon and its children (Prefect's ephemeral API server runs in a subprocess)."""
    total = rss_mb(pid)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += tree_rss_mb(int(child))
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=500)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--every", type=int, default=5, help="drop a file every N ticks")
    ap.add_argument("--rows", type=int, default=200)
    args = ap.parse_args()

    import pandas as pd

    from driftwatch.config import load_settings
    from driftwatch.demo.run import write_demo_config
    from driftwatch.store.ledger import Ledger

    work = Path(tempfile.mkdtemp(prefix="driftwatch-soak-"))
    # The soak is about the scheduler, the ledger and memory; Evidently's HTML (~1.5 s a tick,
    # measured separately) would only stretch it.
    config = write_demo_config(
        ROOT / "config.yaml",
        work / "state",
        model={"params": {"max_iter": 50}},
        report={"html": False},
    )
    settings = load_settings(config)
    landing = settings.paths.landing
    landing.mkdir(parents=True)
    pool = pd.read_parquet(settings.paths.reference)

    log = (work / "daemon.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL"] = "WARNING"
    env["PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL"] = "WARNING"
    daemon = str(Path(sys.executable).parent / "driftwatch")
    proc = subprocess.Popen(
        [
            daemon,
            "daemon",
            "--config",
            str(config),
            "--interval",
            str(args.interval),
            "--max-ticks",
            str(args.ticks),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def ticks() -> int:
        return (work / "daemon.log").read_text().count("driftwatch.orchestration.daemon: tick")

    dropped: list[str] = []
    start_rss = None
    t0 = time.time()
    last_drop = -args.every
    while proc.poll() is None:
        n = ticks()
        if start_rss is None and n >= 1:
            start_rss = tree_rss_mb(proc.pid)
        if n - last_drop >= args.every and n < args.ticks - 3:
            name = f"batch-{len(dropped):04d}.parquet"
            pool.sample(args.rows, random_state=len(dropped)).to_parquet(landing / f".{name}.tmp")
            os.replace(landing / f".{name}.tmp", landing / name)
            dropped.append(name)
            last_drop = n
        end_rss = tree_rss_mb(proc.pid)
        if n and n % 50 == 0:
            print(f"tick {n}: {len(dropped)} files dropped, rss {end_rss:.0f} MB", flush=True)
        time.sleep(min(1.0, args.interval))
        if time.time() - t0 > 3 * 3600:
            proc.send_signal(signal.SIGTERM)
    code = proc.wait()
    seconds = time.time() - t0

    ledger = Ledger(settings.paths.state / "ledger.sqlite")
    records = {Path(r.path).name: r for r in ledger.records()}
    lost = [f for f in dropped if f not in records or records[f].status != "done"]
    duplicated = [
        f for f in dropped if sum(1 for e in ledger.events(str(landing / f)) if e[2] == "done") > 1
    ]
    result = {
        "ticks": ticks(),
        "interval_s": args.interval,
        "files_dropped": len(dropped),
        "files_done": sum(1 for r in records.values() if r.status == "done"),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "rss_after_first_tick_mb": round(start_rss or 0, 1),
        "rss_at_end_mb": round(end_rss, 1),
        "rss_growth_pct": round(100 * (end_rss / start_rss - 1), 1) if start_rss else None,
        "exit_code": code,
        "wall_s": round(seconds),
        "errors_in_log": (work / "daemon.log").read_text().count(" ERROR "),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "soak.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print("| ticks | files | lost | duplicated | RSS after tick 1 | RSS at end | growth |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {result['ticks']} | {result['files_dropped']} | {result['lost']} | {result['duplicated']} "
        f"| {result['rss_after_first_tick_mb']} MB | {result['rss_at_end_mb']} MB | {result['rss_growth_pct']}% |"
    )


if __name__ == "__main__":
    main()
