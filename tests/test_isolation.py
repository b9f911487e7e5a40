"""Quarantine by cause, per file (issue 14): a run that fails after its files were read, for no
cause known to be the infrastructure's, isolates its files; each is then run alone, so a file's
fault quarantines that file only and the other files are done.

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
    """One run: the files it finished, or the error it failed with."""
    try:
        return cycle.run(run_id=f"tick-{n}").files
    except ValueError as exc:
        return f"failed: {exc}"


def test_a_file_that_breaks_the_run_is_isolated_and_quarantined_alone_the_others_are_done(
    make_config: Callable[..., Path], january: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    plan = Plan.load(make_config(model=TOUCHY, landing={"max_same_failures": 2}))
    landing, state = plan.settings.paths.landing, plan.settings.paths.state
    landing.mkdir(parents=True)
    a, b, c = (str(landing / f"2013-01-{d}.parquet") for d in (15, 16, 17))
    day(january, 15).to_parquet(a)
    bad = day(january, 16).reset_index(drop=True)
    bad.loc[3, "distance"] = ODD  # one odd row: read and validated fine, breaks the model
    bad.to_parquet(b)
    day(january, 17).to_parquet(c)
    ledger = ledger_for(state)
    cycle = landing_cycle(plan)

    with caplog.at_level(logging.WARNING, logger="driftwatch.landing"):
        assert tick(cycle, 1) == "failed: distance -1 is not a distance"
    # The run of 3 files cannot say which broke it: each is isolated, none charged.
    error = "ValueError: distance -1 is not a distance"
    for path in (a, b, c):
        line = f"isolated: {path}: the run of 3 files failed with {error}; it will be retried alone"
        assert ledger.get(path).status == "failed" and ledger.get(path).error == line
        assert line in caplog.messages
    assert ledger.isolated() == [a, b, c]

    # Each then runs alone, in turn; the good ones are done, the bad one fails alone.
    runs = [tick(cycle, n) for n in range(2, 6)]
    assert runs == [[a], "failed: distance -1 is not a distance", [c], runs[1]]
    assert [ledger.get(p).status for p in (a, b, c)] == ["done", "quarantined", "done"]
    # Its own reason: its error, counted over its own runs, while the others' runs succeeded.
    reason = f"{error} (the same failure in 2 runs of this file alone, while other files' runs"
    assert ledger.get(b).error.startswith(reason)
    assert (state / "quarantine" / "2013-01-16.parquet.reason.txt").read_text().startswith(reason)
    assert ledger.isolated() == []
    # Nothing of the bad file reached history; the good files' rows did, once.
    assert sorted(set(cycle.history.rows()[FROM_FILE])) == [a, c]
    assert tick(cycle, 6) == []  # nothing left: no new data


def test_new_files_are_not_held_back_by_an_isolated_file_runs_take_turns(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = Plan.load(make_config(model=TOUCHY, landing={"max_same_failures": 2}))
    landing = plan.settings.paths.landing
    landing.mkdir(parents=True)
    ledger = ledger_for(plan.settings.paths.state)
    cycle = landing_cycle(plan)
    name = {d: str(landing / f"2013-01-{d}.parquet") for d in range(10, 16)}
    day(january, 10).to_parquet(name[10])
    bad = day(january, 11).reset_index(drop=True)
    bad.loc[0, "distance"] = ODD
    bad.to_parquet(name[11])
    assert tick(cycle, 1).startswith("failed")  # both isolated
    day(january, 12).to_parquet(name[12])  # a new file lands meanwhile
    seen = [tick(cycle, 2)]  # an isolated file alone first (the last run was not an isolated one)
    seen.append(tick(cycle, 3))  # then the new file, without the isolated ones
    day(january, 13).to_parquet(name[13])
    seen += [tick(cycle, n) for n in (4, 5)]
    day(january, 14).to_parquet(name[14])
    seen += [tick(cycle, n) for n in (6, 7)]
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
