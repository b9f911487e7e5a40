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

Three races, each against a real ``driftwatch run`` paused at a checkpoint
(``DRIFTWATCH_PAUSE_AT``), with the same checks:

- ``file changed after claim``: paused after the claim, the July file is truncated to half its
  bytes; the run must not use it (left pending, attempt given back); the producer then writes it
  whole and the next run reads all of it, done once;
- ``rollback during retrain``: champion v2 (previous v1), paused after the retrain's decision,
  ``driftwatch rollback`` is started: it waits for the monitor's lock, the run promotes its
  challenger, then the rollback moves the alias back; nothing is undone silently;
- ``alias moved during retrain``: the same, but the alias is moved back to v1 from outside
  driftwatch (the MLflow UI or client, no lock): the retrain must not promote over it, and must
  say so ("champion changed from v2 to v1 during the retrain ...").

Real processes, a real SIGKILL (no clean-up runs), real MLflow (sqlite) and Prefect (ephemeral).

    .venv/bin/python benchmarks/fault_injection.py          # ~10 min on 2 cores
    .venv/bin/python benchmarks/fault_injection.py --only "file changed after claim"  # one case

Writes benchmarks/results/fault_injection.json and prints a table.
"""

from __future__ import annotations

import argparse
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
from driftwatch.engine.blocks import thresholds_from_dict
from driftwatch.faults import CHECKPOINTS
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import FROM_FILE
from driftwatch.store.calibrations import BLOCKS_FILE_KIND, load_calibration
from driftwatch.store.flights import load_flights, local_month
from driftwatch.store.history import HistoryFiles
from driftwatch.store.landing import ledger_for
from driftwatch.yamlio import read_yaml_file

ROOT = Path(__file__).resolve().parents[1]
DRIFTWATCH = Path(sys.executable).parent / "driftwatch"


def start(config: Path, command: str = "run", **env: str) -> tuple[subprocess.Popen, Path]:
    """``driftwatch <command>`` in its own process group; output to a file, not a pipe."""
    log = config.parent / f"{command}-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(DRIFTWATCH), command, "--config", str(config)],
            env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, log


def finish(proc: subprocess.Popen, log: Path) -> subprocess.CompletedProcess[str]:
    """Wait for it; a SIGKILLed run cannot stop Prefect's temporary API subprocess (uvicorn),
    which then keeps the run's output open: the group is killed so no orphan outlives it."""
    code = proc.wait(timeout=900)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, code, log.read_text(), "")


def run(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return finish(*start(config, **env))


def wait_until(what: str, condition, seconds: float = 600) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` (a generous deadline: the machine may be loaded)."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(Exception):  # a database being created, a run not there yet
            if condition():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached in {seconds:.0f} s: {what}")
        time.sleep(0.2)


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
        duplicates = {p for (p,) in db.execute("SELECT path FROM files WHERE outcome='duplicate'")}
    known = {"pending", "processing", "done", "failed", "quarantined", "missing", "refused"}
    problems += [f"ledger: {p} in unknown state {s}" for p, s in rows if s not in known]
    results = []
    for path in sorted((state / "runs").glob("*.json")):
        try:
            results.append(json.loads(path.read_text()))
        except ValueError as exc:
            problems.append(f"result {path.name} does not parse: {exc}")
    recorded = {f for r in results for f in r["files"]}
    for path, status in rows:
        if status == "done" and path not in recorded and path not in duplicates:
            problems.append(f"ledger: {Path(path).name} done without a stored result")
    for path in sorted((state / "reference").glob("*.parquet")):
        try:
            pd.read_parquet(path)
        except Exception as exc:  # any failure to read is the finding
            problems.append(f"reference {path.name} unreadable: {exc}")
    for path in sorted((state / "calibration").glob("calibration-*.yaml")):
        try:
            load_calibration(path)
        except ValueError as exc:
            problems.append(str(exc))
    for path in sorted((state / "calibration").glob("blocks-*.yaml")):
        try:  # a time-block cache: every horizon in it builds its thresholds
            raw = read_yaml_file(path, ValueError)
            if raw.get("kind") != BLOCKS_FILE_KIND or not raw.get("horizons"):
                raise ValueError("not a time-block calibration")
            for horizon in raw["horizons"]:
                thresholds_from_dict(horizon)
        except Exception as exc:  # any failure to read is the finding
            problems.append(f"{path.name}: unreadable time-block calibration: {exc}")
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


def fresh_state(tmp: str, name: str, january: pd.DataFrame) -> Path:
    """A state dir with champion v1, trained on January by a first ``driftwatch run``."""
    state = Path(tmp) / name.replace(" ", "-")
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
    return config


def champion_with_previous(config: Path) -> None:
    """v2 (a re-registration of v1's model, as a user may make) promoted: champion v2, previous
    v1, so there is something to roll back to."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from driftwatch.store.registry import Registry

    settings = load_settings(config)
    mlflow.set_tracking_uri(settings.tracking_uri)  # MLflow resolves the source through it
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    v1 = client.get_model_version(settings.model.name, "1")
    client.create_model_version(settings.model.name, v1.source, v1.run_id, tags=v1.tags)
    Registry(settings).promote("2")


def decided(config: Path, version: str) -> bool:
    """The retrain that registered ``version`` has recorded its decision (paused after it)."""
    from mlflow.tracking import MlflowClient

    settings = load_settings(config)
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    mv = client.get_model_version(settings.model.name, version)
    return "driftwatch.decision" in client.get_run(mv.run_id).data.tags


def last_retrain(config: Path) -> dict | None:
    runs = sorted((load_settings(config).paths.state / "runs").glob("*.json"))
    results = [json.loads(p.read_text()) for p in runs]
    return next((r["retrain"] for r in reversed(results) if r.get("retrain")), None)


def kill_case(tmp: str, point: str, january: pd.DataFrame, july: pd.DataFrame) -> dict:
    config = fresh_state(tmp, point, january)
    july.to_parquet(config.parent / "landing" / "b-july.parquet")
    killed = run(config, DRIFTWATCH_KILL_AT=point)
    return {
        "case": f"killed at {point}",
        "checkpoint": point,
        "killed": killed.returncode == -signal.SIGKILL,
        "champion_after_kill": champion(config),
        "inconsistencies_after_kill": inconsistencies(config, "b-july.parquet"),
    }


def changed_after_claim(tmp: str, january: pd.DataFrame, july: pd.DataFrame) -> dict:
    config = fresh_state(tmp, "changed", january)
    path = config.parent / "landing" / "b-july.parquet"
    july.to_parquet(path)
    whole = path.read_bytes()
    proc, log = start(config, DRIFTWATCH_PAUSE_AT="after-claim:20")
    wait_until("July file claimed", lambda: ledger_status(config, path.name)[0][0] == "processing")
    path.write_bytes(whole[: len(whole) // 2])  # the producer truncates it, mid-rewrite
    paused = finish(proc, log)
    status = ledger_status(config, path.name)
    problems = inconsistencies(config, path.name)
    if paused.returncode != 0:
        problems.append(f"the paused run failed: {paused.stdout[-300:]}")
    if status != [("pending", 0)]:
        problems.append(f"truncated July file left {status}, not pending with 0 attempts")
    with sqlite3.connect(load_settings(config).paths.state / "ledger.sqlite") as db:
        (error,) = db.execute("SELECT error FROM files WHERE path=?", (str(path),)).fetchone()
    if not (error or "").startswith(f"{path}: changed after it was claimed"):
        problems.append(f"the ledger does not say the file changed: {error}")
    path.write_bytes(whole)  # the producer finishes
    return {
        "case": "file changed after claim",
        "checkpoint": "after-claim (paused)",
        "killed": True,
        "champion_after_kill": champion(config),
        "inconsistencies_after_kill": problems,
    }


def during_retrain(
    tmp: str, january: pd.DataFrame, july: pd.DataFrame, outside: bool
) -> tuple[dict, Path]:
    name = "alias moved during retrain" if outside else "rollback during retrain"
    config = fresh_state(tmp, name, january)
    champion_with_previous(config)
    july.to_parquet(config.parent / "landing" / "b-july.parquet")
    proc, log = start(config, DRIFTWATCH_PAUSE_AT="after-decision:25")
    wait_until("the retrain's decision recorded", lambda: decided(config, "3"))
    problems = []
    if outside:  # a rollback by hand in the MLflow UI or client: no lock taken
        from mlflow.tracking import MlflowClient

        settings = load_settings(config)
        client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
        client.set_registered_model_alias(settings.model.name, "champion", "1")
        paused = finish(proc, log)
        retrain = last_retrain(config) or {}
        want = "champion changed from v2 to v1 during the retrain (a rollback?): not promoted"
        if retrain.get("promoted") is not False or retrain.get("reason") != want:
            problems.append(f"retrain not refused as it should be: {retrain}")
        expected = "1"
    else:
        rb_proc, rb_log = start(config, "rollback")
        paused = finish(proc, log)
        rolled = finish(rb_proc, rb_log)
        if rolled.returncode != 0 or "waiting up to" not in rolled.stdout:
            problems.append(f"rollback did not wait for the run and succeed: {rolled.stdout}")
        # The run promoted its challenger (v3) under the lock; the rollback came after it.
        expected = "2"
        if "champion moved back from v3 to v2" not in rolled.stdout:
            problems.append(f"rollback did not move v3 back to v2: {rolled.stdout}")
    if paused.returncode != 0:
        problems.append(f"the paused run failed: {paused.stdout[-300:]}")
    if champion(config) != expected:
        problems.append(f"champion v{champion(config)}, expected v{expected}")
    problems += inconsistencies(config, "b-july.parquet")
    row = {
        "case": name,
        "checkpoint": "after-decision (paused)",
        "killed": True,
        "champion_after_kill": champion(config),
        "inconsistencies_after_kill": problems,
    }
    return row, config


def recover(row: dict, config: Path) -> dict:
    """Run again without the fault: it completes, the July file ends done exactly once."""
    again = run(config)
    after = inconsistencies(config, "b-july.parquet")
    status = ledger_status(config, "b-july.parquet")
    if again.returncode != 0:
        after.append(f"recovery run failed: {again.stdout[-300:]}")
    if [s for s, _ in status] != ["done"]:
        after.append(f"b-july.parquet ends {status}, not done once")
    row |= {
        "champion_after_recovery": champion(config),
        "july_file_after_recovery": status,
        "inconsistencies_after_recovery": after,
    }
    print(
        f"{row['case']:<30} champion v{row['champion_after_kill']} ->"
        f" v{row['champion_after_recovery']}  problems:"
        f" {len(row['inconsistencies_after_kill'])} after the fault, {len(after)} after"
        " recovery",
        flush=True,
    )
    for p in row["inconsistencies_after_kill"] + after:
        print(f"    {p}")
    return row


def case_of(row: dict) -> str:
    return row.get("case") or f"killed at {row['checkpoint']}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--only",
        help="run only these cases, comma-separated (e.g. 'after-log,rollback during retrain');"
        " their rows replace those in the results file, the others are kept",
    )
    args = parser.parse_args()
    flights = load_flights()
    month = local_month(flights)
    january = flights[month == 1].sample(3000, random_state=1)
    july = flights[month == 7].sample(10_000, random_state=2)
    cases = [*CHECKPOINTS, "file changed after claim", "rollback during retrain"]
    cases += ["alias moved during retrain"]
    if args.only:
        cases = [c for c in cases if any(want.strip() == c for want in args.only.split(","))]
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            if case in CHECKPOINTS:
                row = kill_case(tmp, case, january, july)
                config = Path(tmp) / case / "config.yaml"
            elif case == "file changed after claim":
                row = changed_after_claim(tmp, january, july)
                config = Path(tmp) / "changed" / "config.yaml"
            else:
                row, config = during_retrain(tmp, january, july, outside=case.startswith("alias"))
            rows.append(recover(row, config))
    injected = sum(r["killed"] for r in rows)
    found = sum(
        len(r["inconsistencies_after_kill"]) + len(r["inconsistencies_after_recovery"])
        for r in rows
    )
    print(
        f"\n{injected} faults injected out of {len(rows)} cases;"
        f" {found} inconsistencies; {time.perf_counter() - started:.0f} s"
    )
    out = ROOT / "benchmarks" / "results" / "fault_injection.json"
    if args.only and out.is_file():  # the other cases' rows are kept as they were measured
        kept = json.loads(out.read_text())["runs"]
        ran = {case_of(r) for r in rows}
        rows = [r for r in kept if case_of(r) not in ran] + rows
        injected = sum(r["killed"] for r in rows)
        found = sum(
            len(r["inconsistencies_after_kill"]) + len(r["inconsistencies_after_recovery"])
            for r in rows
        )
    out.write_text(
        json.dumps({"injected": injected, "inconsistencies": found, "runs": rows}, indent=2)
    )
    print(f"wrote {out}")
    if found or injected != len(rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
