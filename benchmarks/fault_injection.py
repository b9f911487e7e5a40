"""Kill a monitor + retrain run at each of its steps, then check nothing is half-done.

For every checkpoint of ``driftwatch.faults`` (claimed, written to history, trained, logged,
decided, promoted, before the result is stored, before the files are marked done), in a fresh
state dir:

1. ``driftwatch run`` on a January batch: the first champion (v1);
2. a July batch (drifted, and the January model is worse on it, so a challenger is trained and
   promoted) with ``DRIFTWATCH_KILL_AT=<checkpoint>``: the process SIGKILLs itself there;
3. checks: the ledger passes sqlite's integrity check and holds only known states; the
   ``champion`` alias points at a version whose run has its holdout metrics and a promotion
   decision, and whose reference file is a readable parquet; every stored reference, result and
   calibration file parses; no file is marked done without its stored result; history (as
   readers see it) holds the rows of every done file once and none of a file not done;
4. ``driftwatch run`` again without the fault: it must complete, and the July file must end
   ``done`` exactly once, with the champion either the old one or the new one.

Real processes, a real SIGKILL (no clean-up runs), real MLflow (sqlite) and Prefect (ephemeral).

    .venv/bin/python benchmarks/fault_injection.py          # ~5 min on 2 cores

Writes benchmarks/results/fault_injection.json and prints a table.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from driftwatch.config import Settings, load_settings
from driftwatch.demo.run import write_demo_config
from driftwatch.engine.calibration import Calibration
from driftwatch.faults import CHECKPOINTS
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import FROM_FILE
from driftwatch.store.flights import load_flights, local_month
from driftwatch.store.history import HistoryFiles
from driftwatch.store.landing import ledger_for

ROOT = Path(__file__).resolve().parents[1]
DRIFTWATCH = Path(sys.executable).parent / "driftwatch"


def run(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``driftwatch run`` in its own process group; output to a file, not a pipe.

    A SIGKILLed run cannot stop Prefect's temporary API subprocess (uvicorn), which then keeps
    the run's stdout open; the group is killed after the run ends so no orphan outlives it.
    """
    log = config.parent / f"run-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(DRIFTWATCH), "run", "--config", str(config)],
            env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        code = proc.wait(timeout=600)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    return subprocess.CompletedProcess(proc.args, code, text, "")


def inconsistencies(config: Path, batch_name: str) -> list[str]:
    """Everything a later run or a user could trip over; empty when the state is consistent."""
    from mlflow.tracking import MlflowClient

    settings = load_settings(config)
    state = settings.paths.state
    problems: list[str] = []
    ledger = state / "ledger.sqlite"
    with sqlite3.connect(ledger) as db:
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("ledger fails sqlite's integrity check")
        rows = db.execute("SELECT path, status FROM files").fetchall()
    known = {"pending", "processing", "done", "failed", "quarantined"}
    problems += [f"ledger: {p} in unknown state {s}" for p, s in rows if s not in known]
    results = []
    for path in sorted((state / "runs").glob("*.json")):
        try:
            results.append(json.loads(path.read_text()))
        except ValueError as exc:
            problems.append(f"result {path.name} does not parse: {exc}")
    recorded = {f for r in results for f in r["files"]}
    for path, status in rows:
        if status == "done" and path not in recorded:
            problems.append(f"ledger: {Path(path).name} done without a stored result")
    for path in sorted((state / "reference").glob("*.parquet")):
        try:
            pd.read_parquet(path)
        except Exception as exc:  # any failure to read is the finding
            problems.append(f"reference {path.name} unreadable: {exc}")
    for path in sorted((state / "calibration").glob("*.yaml")):
        try:
            Calibration.load(path)
        except ValueError as exc:
            problems.append(str(exc))
    problems += history_problems(settings, rows)
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    name = settings.model.name
    mv = client.get_model_version_by_alias(name, "champion")
    run_ = client.get_run(mv.run_id)
    metric = f"holdout_challenger_{settings.quality_metric}"
    if metric not in run_.data.metrics:
        problems.append(f"champion v{mv.version} has no {metric}")
    if run_.data.tags.get("driftwatch.promoted") != "true":
        problems.append(f"champion v{mv.version} has no recorded promotion decision")
    ref = mv.tags.get("driftwatch.reference")
    try:
        if not ref or pd.read_parquet(ref).empty:
            problems.append(f"champion v{mv.version}: reference {ref} missing or empty")
    except Exception as exc:  # any failure to read is the finding
        problems.append(f"champion v{mv.version}: reference {ref} unreadable: {exc}")
    return problems


def history_problems(settings: Settings, rows: list[tuple[str, str]]) -> list[str]:
    """History as readers see it (committed parts only) holds the rows of every done file,
    once, and none of a file that is not done."""
    history = HistoryFiles(Plan(settings=settings), ledger_for(settings.paths.state))
    committed = history.rows()
    counts = committed[FROM_FILE].value_counts().to_dict() if len(committed) else {}
    problems = []
    for path, status in rows:
        n = counts.get(path, 0)
        if status == "done" and not n:
            problems.append(f"history: {Path(path).name} done without its rows")
        if status != "done" and n:
            problems.append(f"history: {Path(path).name} is {status} but its rows count")
    if len(committed) and committed.duplicated([FROM_FILE, "flight_id"]).any():
        problems.append("history: rows stored twice")
    return problems


def champion(config: Path) -> str:
    from mlflow.tracking import MlflowClient

    settings = load_settings(config)
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    return str(client.get_model_version_by_alias(settings.model.name, "champion").version)


def ledger_status(config: Path, name: str) -> list[tuple[str, int]]:
    state = load_settings(config).paths.state
    with sqlite3.connect(state / "ledger.sqlite") as db:
        rows = db.execute("SELECT path, status, attempts FROM files").fetchall()
    return [(s, a) for p, s, a in rows if Path(p).name == name]


def main() -> None:
    flights = load_flights()
    month = local_month(flights)
    january = flights[month == 1].sample(3000, random_state=1)
    july = flights[month == 7].sample(10_000, random_state=2)
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for point in CHECKPOINTS:
            state = Path(tmp) / point
            config = write_demo_config(
                ROOT / "config.yaml",
                state,
                report={"html": False},
                orchestration={"retries": 0, "retry_delay_seconds": 0},
            )
            landing = state / "landing"
            landing.mkdir(parents=True, exist_ok=True)
            january.to_parquet(landing / "a-january.parquet")
            first = run(config)
            assert first.returncode == 0, first.stdout + first.stderr
            july.to_parquet(landing / "b-july.parquet")
            killed = run(config, DRIFTWATCH_KILL_AT=point)
            reached = killed.returncode == -signal.SIGKILL
            after_kill = inconsistencies(config, "b-july.parquet")
            champion_after_kill = champion(config)
            again = run(config)
            after_recovery = inconsistencies(config, "b-july.parquet")
            status = ledger_status(config, "b-july.parquet")
            if again.returncode != 0:
                after_recovery.append(f"recovery run failed: {again.stdout[-300:]}")
            if [s for s, _ in status] != ["done"]:
                after_recovery.append(f"b-july.parquet ends {status}, not done once")
            rows.append(
                {
                    "checkpoint": point,
                    "killed": reached,
                    "champion_after_kill": champion_after_kill,
                    "champion_after_recovery": champion(config),
                    "july_file_after_recovery": status,
                    "inconsistencies_after_kill": after_kill,
                    "inconsistencies_after_recovery": after_recovery,
                }
            )
            print(
                f"{point:<15} killed={reached!s:<5} champion v{champion_after_kill} -> "
                f"v{rows[-1]['champion_after_recovery']}  problems: "
                f"{len(after_kill)} after kill, {len(after_recovery)} after recovery",
                flush=True,
            )
            for p in after_kill + after_recovery:
                print(f"    {p}")
    injected = sum(r["killed"] for r in rows)
    found = sum(
        len(r["inconsistencies_after_kill"]) + len(r["inconsistencies_after_recovery"])
        for r in rows
    )
    print(
        f"\n{injected} faults injected (SIGKILL) out of {len(rows)} checkpoints;"
        f" {found} inconsistencies; {time.perf_counter() - started:.0f} s"
    )
    out = ROOT / "benchmarks" / "results" / "fault_injection.json"
    out.write_text(
        json.dumps({"injected": injected, "inconsistencies": found, "runs": rows}, indent=2)
    )
    print(f"wrote {out}")
    if found or injected != len(rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
