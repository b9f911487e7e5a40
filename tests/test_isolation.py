"""Quarantine by cause, per file (issue 14): a run that fails after its files were read, for no
cause known to be the infrastructure's, isolates its files; the same tick then runs each alone,
so the other files are done in that tick and a file's fault quarantines that file only.

Everything is real: files on disk, the sqlite ledger, the production ``LandingFiles`` source and
history store, the ``MonitorCycle`` of the daemon (with the in-memory registry, references and
thresholds the backtest uses). The fault is real too: the configured model is an estimator
factory (``model.estimator: package.module:factory``, as a user's own model) that raises on one
odd value, as a retrain or scoring step that breaks on one file's rows would.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from driftwatch.errors import RegistryError
from driftwatch.monitor.memory import MemoryReferences, MemoryRegistry, MemoryThresholds, ResultLog
from driftwatch.monitor.pipeline import MonitorCycle
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import FROM_FILE, Batch
from driftwatch.monitor.result import MonitorResult
from driftwatch.store.flights import FLIGHTS_TZ
from driftwatch.store.history import HistoryFiles
from driftwatch.store.landing import LandingFiles, ledger_for
from driftwatch.store.ledger import SCHEMA, Ledger
from driftwatch.store.replay import shipped_reference

ODD = -1.0  # a distance no flight has: the model below raises on it


class Touchy(RegressorMixin, BaseEstimator):
    """The mean air time; raises on a row with ``distance == -1`` (in fit and in predict)."""

    def fit(self, x: pd.DataFrame, y: pd.Series) -> Touchy:
        self._check(x)
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        self._check(x)
        return np.full(len(x), self.mean_)

    @staticmethod
    def _check(x: pd.DataFrame) -> None:
        if (x["distance"] == ODD).any():
            raise ValueError("distance -1 is not a distance")


def touchy() -> Touchy:
    return Touchy()


TOUCHY = {"estimator": "tests.test_isolation:touchy", "params": {}, "timezone": FLIGHTS_TZ}


def day(january: pd.DataFrame, number: int) -> pd.DataFrame:
    return january[january["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.day == number]


def landing_cycle(plan: Plan) -> MonitorCycle:
    batches = LandingFiles(plan)
    references = MemoryReferences(plan, shipped_reference(plan.settings))
    return MonitorCycle(
        plan,
        batches,
        references,
        MemoryThresholds(plan, references),
        MemoryRegistry(),
        ResultLog(),
        HistoryFiles(plan, batches.ledger),
    )


def tick(cycle: MonitorCycle, n: int) -> list[str] | str:
    """One tick: the files of the run it returns, or the error it failed with."""
    try:
        return cycle.run(run_id=f"tick-{n}").files
    except ValueError as exc:
        return f"failed: {exc}"


class FullDisk(ResultLog):
    """A reporter whose disk is full: recording a result raises ENOSPC (a full disk cannot be
    made for real in a test; the rest of the run is real)."""

    def record(self, result: MonitorResult) -> None:
        raise OSError(28, "No space left on device")


def three_days(plan: Plan, january: pd.DataFrame) -> tuple[str, str, str]:
    """Good, poison (one odd row: read and validated fine, breaks the model), good."""
    landing = plan.settings.paths.landing
    landing.mkdir(parents=True)
    a, b, c = (str(landing / f"2013-01-{d}.parquet") for d in (15, 16, 17))
    day(january, 15).to_parquet(a)
    bad = day(january, 16).reset_index(drop=True)
    bad.loc[3, "distance"] = ODD
    bad.to_parquet(b)
    day(january, 17).to_parquet(c)
    return a, b, c


def test_a_file_that_breaks_the_run_is_isolated_and_quarantined_alone_the_others_are_done(
    make_config: Callable[..., Path], january: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    plan = Plan.load(make_config(model=TOUCHY, landing={"max_same_failures": 2}))
    state = plan.settings.paths.state
    a, b, c = three_days(plan, january)
    ledger = ledger_for(state)
    cycle = landing_cycle(plan)

    # ONE tick: the run of 3 files fails, cannot say which broke it, isolates each (none
    # charged), and goes on to judge each alone, in a run of its own.
    with caplog.at_level(logging.WARNING):
        result = cycle.run(run_id="tick-1")
    error = "ValueError: distance -1 is not a distance"
    for path in (a, b, c):
        line = (
            f"isolated: {path}: the run of 3 files failed with {error};"
            " it is judged alone now, in a run of its own"
        )
        assert line in caplog.messages
    head = (
        f"run tick-1 of 3 files failed with {error}; no file could be blamed for it,"
        f" so each is judged alone in this tick: {a}, {b}, {c}"
    )
    assert head in caplog.messages
    # The good files are done in that same tick; the poison file failed alone, charged alone.
    assert [ledger.get(p).status for p in (a, b, c)] == ["done", "failed", "done"]
    assert ledger.isolated() == [b]
    log = cycle.reporter.results
    assert [r.files for r in log] == [[a], [c]]  # a record of each run alone (b's failed)
    assert len({r.run_id for r in log} | {"tick-1"}) == 3  # each its own run id
    # The tick completes with the last run that succeeded; its warnings tell the rest.
    assert result.files == [c] and result.run_id == log[-1].run_id and result.rejected == {}
    assert head in result.warnings
    said = "\n".join(result.warnings)
    assert f"run {log[0].run_id} ({a}, alone): " in said
    assert f"failed alone: {b} (run " in said and said.count(f"): {error}") == 1
    # Its failure alone counted (a's run succeeded since its isolation): 1 of 2.
    assert f"failed alone: {b}: {error} (1 of landing.max_same_failures = 2 counted)" in (
        caplog.messages
    )

    # The next tick runs it alone again (nothing else waits): the 2nd such failure, with
    # another file's run succeeding in between, quarantines it, with its own reason.
    assert tick(cycle, 2) == "failed: distance -1 is not a distance"
    assert [ledger.get(p).status for p in (a, b, c)] == ["done", "quarantined", "done"]
    reason = f"{error} (the same failure in 2 runs of this file alone, while other files' runs"
    assert ledger.get(b).error.startswith(reason)
    assert (state / "quarantine" / "2013-01-16.parquet.reason.txt").read_text().startswith(reason)
    assert ledger.isolated() == []
    # Nothing of the bad file reached history; the good files' rows did, once.
    assert sorted(set(cycle.history.rows()[FROM_FILE])) == [a, c]
    assert tick(cycle, 3) == []  # nothing left: no new data


def test_a_file_rejected_by_the_failed_run_is_still_reported_by_the_tick(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    """Review of the merge: the run of several files rejected a file at reading (a missing
    column), then failed; the tick went on alone with the others and forgot the rejected one."""
    plan = Plan.load(make_config(model=TOUCHY, landing={"max_same_failures": 2}))
    *_, c = three_days(plan, january)
    broken = str(plan.settings.paths.landing / "2013-01-18.parquet")
    day(january, 18).drop(columns=["distance"]).to_parquet(broken)
    result = landing_cycle(plan).run(run_id="tick-1")
    assert result.files == [c]
    assert list(result.rejected) == [broken] and "distance" in result.rejected[broken]
    assert ledger_for(plan.settings.paths.state).get(broken).status == "failed"


def test_an_infrastructure_fault_stops_the_runs_alone_and_leaves_the_files_waiting(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = Plan.load(make_config(model=TOUCHY, landing={"max_same_failures": 2}))
    a, b, c = three_days(plan, january)
    ledger = ledger_for(plan.settings.paths.state)
    cycle = landing_cycle(plan)
    cycle.reporter = FullDisk()
    # The run of 3 fails in the retrain (isolated); a's run alone reaches the full disk: the
    # tick stops there (b and c would only meet it too) and fails with the disk's error.
    with pytest.raises(OSError, match="No space left on device"):
        cycle.run(run_id="tick-1")
    assert [ledger.get(p).status for p in (a, b, c)] == ["failed"] * 3  # waiting, none charged
    assert ledger.isolated() == [b, c, a]  # b and c not yet run alone: theirs are the next turns

    # The disk freed, the files left over take their turns in later ticks, one per tick.
    cycle.reporter = ResultLog()
    runs = [tick(cycle, n) for n in (2, 3, 4)]
    assert runs == ["failed: distance -1 is not a distance", [c], [a]]
    assert [ledger.get(p).status for p in (a, b, c)] == ["done", "failed", "done"]


def test_new_files_are_not_held_back_by_an_isolated_file_runs_take_turns(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    """Isolated files a tick left over (here one that failed alone) take turns with new ones."""
    plan = Plan.load(make_config(model=TOUCHY, landing={"max_same_failures": 3}))
    landing = plan.settings.paths.landing
    landing.mkdir(parents=True)
    ledger = ledger_for(plan.settings.paths.state)
    cycle = landing_cycle(plan)
    name = {d: str(landing / f"2013-01-{d}.parquet") for d in range(10, 16)}
    day(january, 10).to_parquet(name[10])
    bad = day(january, 11).reset_index(drop=True)
    bad.loc[0, "distance"] = ODD
    bad.to_parquet(name[11])
    seen = [tick(cycle, 1)]  # both isolated, each run alone: 10 done, 11 failed alone
    day(january, 12).to_parquet(name[12])  # a new file lands meanwhile
    seen.append(tick(cycle, 2))  # the new file first (the last run was an isolated one)
    seen.append(tick(cycle, 3))  # then the isolated file alone
    day(january, 13).to_parquet(name[13])
    seen += [tick(cycle, n) for n in (4, 5)]
    day(january, 14).to_parquet(name[14])
    seen.append(tick(cycle, 6))
    failed = "failed: distance -1 is not a distance"
    assert seen == [[name[10]], [name[12]], failed, [name[13]], failed, [name[14]]]
    assert ledger.get(name[11]).status == "quarantined"
    assert all(ledger.get(name[d]).status == "done" for d in (10, 12, 13, 14))


def test_a_file_failing_alone_is_never_quarantined_while_no_other_run_succeeds(
    make_config: Callable[..., Path], tmp_path: Path
) -> None:
    """An infrastructure fault driftwatch cannot name fails every run: nothing corroborates
    the file's failures, so it is retried at every tick and never quarantined."""
    plan = Plan.load(make_config(landing={"max_same_failures": 2}))
    landing = plan.settings.paths.landing
    landing.mkdir(parents=True)
    f, g = str(landing / "a.parquet"), str(landing / "b.parquet")
    pd.DataFrame({"x": [1]}).to_parquet(f)
    pd.DataFrame({"x": [2]}).to_parquet(g)
    ledger = ledger_for(plan.settings.paths.state)
    ledger.scan(landing)
    source = LandingFiles(plan)
    for _ in range(6):
        ledger.claim([f], "run")
        source.fail(Batch(pd.DataFrame(), [f], True), RuntimeError("something unnamed broke"))
        assert ledger.get(f).status == "failed" and f in ledger.isolated()
    # Another file's run succeeding between two of its failures makes them count.
    for _ in range(2):
        ledger.claim([g], "other")
        ledger.finish([g], "no-drift")
        ledger.claim([f], "run")
        source.fail(Batch(pd.DataFrame(), [f], True), RuntimeError("something unnamed broke"))
    rec = ledger.get(f)
    assert (
        rec.status == "quarantined" and "the same failure in 2 runs of this file alone" in rec.error
    )


def test_known_infrastructure_faults_isolate_nothing_and_never_quarantine(
    make_config: Callable[..., Path],
) -> None:
    plan = Plan.load(make_config(landing={"max_same_failures": 2}))
    landing = plan.settings.paths.landing
    landing.mkdir(parents=True)
    files = [str(landing / f"{n}.parquet") for n in "ab"]
    for i, path in enumerate(files):
        pd.DataFrame({"x": [i]}).to_parquet(path)
    ledger = ledger_for(plan.settings.paths.state)
    ledger.scan(landing)
    source = LandingFiles(plan)
    faults = [
        RegistryError("MLflow at http://x is not usable"),
        OSError(28, "No space left on device"),
        sqlite3.OperationalError("disk I/O error"),
        KeyboardInterrupt(),
    ]
    for exc in faults * 3:
        ledger.claim(files, "run")
        source.fail(Batch(pd.DataFrame(), files, True), exc)
    assert [ledger.get(p).status for p in files] == ["failed", "failed"]
    assert ledger.isolated() == []


def test_a_ledger_from_before_isolation_opens_and_isolates(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite"
    before = SCHEMA[: SCHEMA.index("CREATE TABLE IF NOT EXISTS isolated")]
    conn = sqlite3.connect(db)
    conn.executescript(before)
    conn.execute(
        "INSERT INTO files(path,size,sha256,first_seen,status,updated)"
        " VALUES ('x.parquet',1,'h','2024-01-01','pending','2024-01-01')"
    )
    conn.commit()
    conn.close()
    ledger = Ledger(db)
    assert ledger.isolated() == [] and ledger.get("x.parquet").status == "pending"
    ledger.isolate({"x.parquet": "isolated: x.parquet: ..."})
    assert ledger.isolated() == ["x.parquet"]
    ledger.finish(["x.parquet"], "no-drift")
    assert ledger.isolated() == []


def test_when_every_file_fails_alone_the_tick_fails_with_the_first_error(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = Plan.load(make_config(model=TOUCHY, landing={"max_same_failures": 2}))
    landing = plan.settings.paths.landing
    landing.mkdir(parents=True)
    files = [str(landing / f"2013-01-{d}.parquet") for d in (20, 21)]
    for d, path in zip((20, 21), files, strict=True):
        bad = day(january, d).reset_index(drop=True)
        bad.loc[0, "distance"] = ODD
        bad.to_parquet(path)
    ledger = ledger_for(plan.settings.paths.state)
    cycle = landing_cycle(plan)
    assert tick(cycle, 1) == "failed: distance -1 is not a distance"
    # Each was run alone in that tick (one claim alone each), failed, and is retried later;
    # no run succeeded in between, so nothing counts towards quarantine.
    assert [ledger.get(p).status for p in files] == ["failed", "failed"]
    assert [ledger.get(p).attempts for p in files] == [2, 2]  # the run of 2, then alone
    assert cycle.reporter.results == []


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api")
def test_the_monitor_flow_judges_the_isolated_files_alone_in_the_same_flow_run(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    """The same, through the real monitor flow (Prefect tasks, MLflow registry and records)."""
    from driftwatch.orchestration.monitor_flow import monitor_flow

    config = make_config(model=TOUCHY, landing={"max_same_failures": 2})
    plan = Plan.load(config)
    a, b, c = three_days(plan, january)
    ledger = ledger_for(plan.settings.paths.state)

    state = monitor_flow(config_path=str(config), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["files"] == [c]
    assert any(w.startswith(f"failed alone: {b} (run ") for w in result["warnings"])
    assert [ledger.get(p).status for p in (a, b, c)] == ["done", "failed", "done"]
    runs = sorted((plan.settings.paths.state / "runs").glob("*.json"))
    assert len(runs) == 2  # a's run alone and c's, each recorded under its own run id

    state = monitor_flow(config_path=str(config), return_state=True)  # b alone: quarantined
    assert state.is_failed() and "distance -1 is not a distance" in state.message
    assert ledger.get(b).status == "quarantined"
