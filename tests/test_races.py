"""Races and limits around the landing dir (issue 14): a file changed after it was claimed, the
same content under two names, one landing dir with one owner, a rollback during a retrain,
operator commands under the monitor's lock, rows bounded before the read, calibration files read
within limits.

Everything is real: files on disk, the sqlite ledger, flock in another process, MLflow on a
sqlite file. The one stand-in is a registry that performs a rollback at a given step of a retrain
(in memory), since the moment cannot be hit reliably from outside in a fast test; the
fault-injection benchmark does it for real against a paused ``driftwatch run``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from driftwatch.cli import main
from driftwatch.config import load_settings
from driftwatch.errors import ChampionChanged
from driftwatch.monitor.memory import MemoryRegistry
from driftwatch.monitor.plan import Plan
from driftwatch.store import lock
from driftwatch.store.calibrations import read_blocks, read_calibration
from driftwatch.store.landing import (
    OWNER_FILE,
    LandingFiles,
    LandingOwned,
    landing_lock_path,
    ledger_for,
    lock_path,
    owning,
)
from tests.test_lock import hold_lock
from tests.test_pipeline import FAST, WHOLE, batches, memory_cycle
from tests.test_poison import landing_plan, rows

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


# -- 1. a file changed after it was claimed --------------------------------------------------------


def test_a_file_emptied_after_claim_is_left_pending_and_read_whole_at_the_next_run(
    make_config: Callable[..., Path], january: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = landing_plan(make_config)
    landing = plan.settings.paths.landing
    a, b = landing / "a.parquet", landing / "b.parquet"
    rows(january).to_parquet(a)
    rows(january, 40, start=20).to_parquet(b)
    size = b.stat().st_size
    ledger = ledger_for(plan.settings.paths.state)
    # The run stops for a while right after claiming (a real checkpoint); meanwhile the producer
    # empties b (a truncate-and-rewrite that has not written anything yet).
    monkeypatch.setenv("DRIFTWATCH_PAUSE_AT", "after-claim:8")
    emptied = threading.Event()

    def producer() -> None:
        wait_for(lambda: ledger.get(b) is not None and ledger.get(b).status == "processing")
        b.write_bytes(b"")
        emptied.set()

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    batch = LandingFiles(plan).collect("run-1")
    thread.join(timeout=120)
    assert emptied.is_set()
    # b is neither half-processed nor blamed: the run goes on with a alone.
    assert batch.files == [str(a)] and batch.rows == 20 and batch.rejected == {}
    line = (
        f"{b}: changed after it was claimed ({size} bytes when recorded, 0 now); not processed,"
        " left pending: the next run records its new content and reads it"
    )
    assert batch.warnings == [f"changed: {line}"]
    rec = ledger.get(b)
    assert (rec.status, rec.attempts, rec.error) == ("pending", 0, line)  # the attempt given back
    LandingFiles(plan).finish(batch, "no-drift")

    monkeypatch.delenv("DRIFTWATCH_PAUSE_AT")
    rows(january, 30, start=100).to_parquet(b)  # the producer finishes its rewrite
    batch = LandingFiles(plan).collect("run-2")
    assert batch.files == [str(b)] and batch.rows == 30  # all of the new content
    assert batch.warnings == [
        f"{b}: changed before it was read ({size} bytes when first seen,"
        f" {b.stat().st_size} now); its new content is recorded and read"
    ]
    LandingFiles(plan).finish(batch, "no-drift")
    rec = ledger.get(b)
    assert (rec.status, rec.attempts, rec.size) == ("done", 1, b.stat().st_size)


def test_a_file_rewritten_between_the_scan_and_the_read_is_read_as_it_is_now(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = landing_plan(make_config)
    landing = plan.settings.paths.landing
    f = landing / "f.csv"
    rows(january, 10).to_csv(f, index=False)
    ledger = ledger_for(plan.settings.paths.state)
    ledger.scan(landing)  # an earlier tick saw the first 10 rows
    rows(january, 25).to_csv(f, index=False)  # the producer appended 15 more
    batch = LandingFiles(plan).collect("run-1")
    assert batch.rows == 25 and batch.files == [str(f)]
    assert ledger.get(f).size == f.stat().st_size
    assert [e[2] for e in ledger.events(str(f))] == ["changed", "claimed"]


# -- 2. the same content under two names -----------------------------------------------------------


def test_the_same_content_under_two_names_is_processed_once_and_named(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = landing_plan(make_config)
    landing = plan.settings.paths.landing
    first, copy = landing / "a.parquet", landing / "b-copy.parquet"
    rows(january).to_parquet(first)
    copy.write_bytes(first.read_bytes())
    other = landing / "c.parquet"
    rows(january, start=20).to_parquet(other)
    (landing / "e1.csv").write_bytes(b"")  # empty files share a hash but hold no rows
    (landing / "e2.csv").write_bytes(b"")
    ledger = ledger_for(plan.settings.paths.state)

    batch = LandingFiles(plan).collect("run-1")
    assert batch.files == [
        str(first),
        str(other),
        *(str(landing / e) for e in ("e1.csv", "e2.csv")),
    ]
    assert batch.rows == 40
    sha = ledger.get(first).sha256
    note = (
        f"{copy}: the same content as {first} (sha256 {sha[:12]}); marked done as its duplicate,"
        " not processed again (landing.duplicates: skip)"
    )
    assert batch.warnings == [note]
    rec = ledger.get(copy)
    assert (rec.status, rec.outcome, rec.attempts) == ("done", "duplicate", 0)
    assert ledger.events(str(copy))[-1][2:] == ("duplicate", note)
    LandingFiles(plan).finish(batch, "no-drift")
    assert LandingFiles(plan).collect("run-2").warnings == []  # said once

    # A duplicate can still be sent through on purpose.
    assert (
        main(
            [
                "requeue",
                "--config",
                str(plan.settings.paths.state.parent / "config.yaml"),
                str(copy),
            ]
        )
        == 0
    )
    assert LandingFiles(plan).collect("run-3").files == [str(copy)]


def test_duplicates_process_reads_the_copy_again_and_says_so(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = landing_plan(make_config, duplicates="process")
    landing = plan.settings.paths.landing
    first, copy = landing / "a.parquet", landing / "b.parquet"
    rows(january).to_parquet(first)
    copy.write_bytes(first.read_bytes())
    batch = LandingFiles(plan).collect("run-1")
    assert batch.files == [str(first), str(copy)] and batch.rows == 40
    sha = ledger_for(plan.settings.paths.state).get(first).sha256
    assert batch.warnings == [
        f"{copy}: the same content as {first} (sha256 {sha[:12]}); processed again"
        " (landing.duplicates: process)"
    ]


# -- 3. one landing dir, one owner -----------------------------------------------------------------


@pytest.fixture
def hold() -> Iterator[Callable[[Path], subprocess.Popen]]:
    """Hold a lock file from another process (as a running monitor does) until the test ends."""
    procs: list[subprocess.Popen] = []

    def start(path: Path) -> subprocess.Popen:
        proc = hold_lock(path)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def second_config(tmp_path: Path, config: Path) -> Path:
    """The same config with its own state dir, on the same landing dir."""
    raw = yaml.safe_load(config.read_text())
    raw["paths"]["state"] = str(tmp_path / "other-state")
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_second_state_dir_on_the_same_landing_dir_is_refused_in_one_line(
    make_config: Callable[..., Path], tmp_path: Path, hold
) -> None:
    config = make_config()
    first = load_settings(config)
    second = load_settings(second_config(tmp_path, config))
    landing = first.paths.landing
    with owning(first):
        assert lock.holder(landing_lock_path(landing)) == str(os.getpid())
    marker = landing / OWNER_FILE
    assert marker.is_file()
    with owning(first):  # the owner again: fine
        pass
    with pytest.raises(LandingOwned) as refused, owning(second):
        pytest.fail("the second state dir got the landing dir")
    assert str(refused.value) == (
        f"landing dir {landing} belongs to the driftwatch with state dir"
        f" {first.paths.state.resolve()} (see {marker}); not processed by this one (state dir"
        f" {second.paths.state.resolve()}): give each config its own landing dir, or delete the"
        " marker to hand this one over"
    )
    # While a run of either holds the landing dir's lock, the other cannot even start.
    proc = hold(landing_lock_path(landing))
    with pytest.raises(lock.LockBusy) as busy, owning(first):
        pytest.fail("two runs on one landing dir")
    assert str(busy.value) == (
        f"another driftwatch monitor holds {landing / '.driftwatch.lock'} (pid {proc.pid})"
    )
    # The lock and the marker are hidden files: never taken as batches.
    assert LandingFiles(Plan(settings=first)).collect("run-1").files == []


# -- 4. a rollback during a retrain; operator commands under the monitor's lock ----------------


class RollbackDuringRetrain(MemoryRegistry):
    """The in-memory registry, with ``driftwatch rollback`` landing between the retrain's
    recorded decision and its promotion (once armed)."""

    armed = False

    def record_verdict(self, run_id, verdict) -> None:  # type: ignore[no-untyped-def]
        super().record_verdict(run_id, verdict)
        if self.armed:
            self.champion_version = self.champion().previous


def test_a_retrain_does_not_undo_a_rollback_made_while_it_ran(
    make_config: Callable[..., Path], january: pd.DataFrame, july: pd.DataFrame
) -> None:
    plan = Plan.load(make_config(model=FAST, drift=WHOLE))
    jan15, _, jul10, _ = batches(january, july)
    cycle, _ = memory_cycle(plan, [jan15, jul10])
    registry = cycle.registry = RollbackDuringRetrain()
    cycle.run(run_id="tick-1")  # bootstrap: v1
    cycle.retrain([], "set-up", "set-up")  # v2, on the reference alone
    registry.promote("2")  # champion v2, previous v1
    registry.armed = True
    result = cycle.run(run_id="tick-2")  # July: a better challenger, v3
    reason = "champion changed from v2 to v1 during the retrain (a rollback?): not promoted"
    assert result.retrain is not None and not result.retrain.promoted
    assert result.retrain.reason == reason and result.outcome == "retrained-kept"
    assert registry.champion_version == "1"  # the rollback stands
    assert registry.verdicts[registry.versions["3"].run_id].reason == reason


def test_mlflow_promote_refuses_when_the_champion_moved_and_says_so_on_the_run(
    settings, rows: pd.DataFrame, tmp_path: Path
) -> None:
    from driftwatch.store.models import RegistryModels
    from driftwatch.store.registry import Registry
    from tests.test_registry import challenger

    reg = Registry(settings)
    for key in ("k1", "k2", "k3"):
        challenger(reg, settings, rows, tmp_path, key=key)
    reg.promote("1")
    reg.promote("2")
    assert reg.rollback()[:2] == ("2", "1")  # during v3's retrain, scored against v2
    with pytest.raises(ChampionChanged) as refused:
        reg.promote("3", "2")
    reason = "champion changed from v2 to v1 during the retrain (a rollback?): not promoted"
    assert str(refused.value) == reason
    assert reg.champion().version == "1"
    run = reg.client.get_run(reg.client.get_model_version(reg.name, "3").run_id)
    assert run.data.tags["driftwatch.promoted"] == "false"
    assert run.data.tags["driftwatch.decision"] == reason
    # The port returns the reason; a promotion retried after it went through is not a change.
    models = RegistryModels(Plan(settings=settings))
    assert models.promote("3", "2") == reason
    assert models.promote("3", "1") is None and reg.champion().version == "3"
    assert models.promote("3", "1") is None and reg.champion().version == "3"


def test_rollback_and_requeue_wait_for_the_monitor_lock_then_say_who_holds_it(
    make_config: Callable[..., Path], hold, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config()
    state = load_settings(config).paths.state
    path = lock_path(state)
    proc = hold(path)
    for argv, what in (
        (["rollback"], "rollback"),
        (["requeue", "--quarantined"], "requeue"),
    ):
        t0 = time.monotonic()
        assert main([*argv, "--config", str(config), "--wait", "0.5"]) == 3
        assert time.monotonic() - t0 >= 0.5
        assert capsys.readouterr().err == (
            f"waiting up to 0.5 s for the monitor run holding {path}\n"
            f"driftwatch: error: another driftwatch monitor holds {path} (pid {proc.pid}): a"
            f" monitor run is in progress; {what} not done, run it again when the run has ended"
            " (or with a longer --wait)\n"
        )
    proc.kill()
    proc.wait()
    assert main(["requeue", "--quarantined", "--config", str(config), "--wait", "0"]) == 0
    assert capsys.readouterr().out == "no quarantined files\n"


# -- 5. rows bounded before the read ---------------------------------------------------------------


def test_files_with_more_rows_than_max_rows_are_refused_before_the_read_then_quarantined(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = landing_plan(make_config, max_rows=25, max_attempts=1)
    landing = plan.settings.paths.landing
    rows(january, 25).to_parquet(landing / "a-fits.parquet")
    rows(january, 30).to_parquet(landing / "b-long.parquet")
    rows(january, 26).to_csv(landing / "c-long.csv", index=False)
    batch = LandingFiles(plan).collect("run-1")
    assert batch.files == [str(landing / "a-fits.parquet")] and batch.rows == 25
    assert batch.rejected == {
        str(landing / "b-long.parquet"): f"{landing / 'b-long.parquet'}: 30 rows, above"
        " landing.max_rows = 25: refused unread (split the file, or raise the limit if this"
        " size is expected)",
        str(landing / "c-long.csv"): f"{landing / 'c-long.csv'}: more than landing.max_rows ="
        " 25 rows: refused (the read stopped there; split the file, or raise the limit if this"
        " size is expected)",
    }
    ledger = ledger_for(plan.settings.paths.state)
    assert {ledger.get(landing / n).status for n in ("b-long.parquet", "c-long.csv")} == {
        "quarantined"
    }


# -- 6. calibration files read within limits -------------------------------------------------------


def test_calibration_files_with_a_nan_or_text_pin_or_an_alias_bomb_are_named_and_ignored(
    make_config: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    from driftwatch.engine.calibration import CALIBRATION_FORMAT

    path = load_settings(make_config()).drift.calibration.file
    base = {
        "format": CALIBRATION_FORMAT,
        "batch_rows": 1000,
        "false_alarm_rate": 0.01,
        "confidence": 0.95,
        "batches": 100,
        "allowed_alarms": 0,
        "in_sample_alarms": 0,
        "reference_sha256": "x",
        "reference_rows": 10,
        "key": "k",
    }
    good = {**base, "columns": {"temp": {"test": "wasserstein", "threshold": 0.2, "pinned": True}}}
    path.write_text(yaml.safe_dump(good))
    assert read_calibration(path).columns["temp"].threshold == 0.2
    for value, why in ((".nan", "threshold nan"), ("abc", "threshold 'abc'")):
        path.write_text(yaml.safe_dump(good).replace("threshold: 0.2", f"threshold: {value}"))
        caplog.clear()
        assert read_calibration(path) is None
        assert caplog.messages == [
            f"{path}: unreadable calibration file: column 'temp': {why} is not a number;"
            " recalibrating"
        ]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
    )
    for reader in (read_calibration, read_blocks):
        path.write_text(bomb)
        caplog.clear()
        t0 = time.monotonic()
        assert reader(path) in (None, {})
        assert time.monotonic() - t0 < 10
        assert len(caplog.messages) == 1 and "aliases expand to more than" in caplog.messages[0]
