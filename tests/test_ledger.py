"""The batch ledger: claimed, done only after the run, retried, quarantined, changes reported."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from driftwatch.store.ledger import Ledger


def drop(landing: Path, name: str, rows: int = 3) -> Path:
    landing.mkdir(parents=True, exist_ok=True)
    p = landing / name
    pd.DataFrame({"x": range(rows), "name": name}).to_parquet(p)  # one content per name
    return p


def test_lifecycle_pending_processing_done(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    a, b = drop(tmp_path / "in", "a.parquet"), drop(tmp_path / "in", "b.parquet")
    (tmp_path / "in" / ".hidden.parquet").write_bytes(b"x")
    (tmp_path / "in" / "c.parquet.tmp").write_bytes(b"x")
    assert led.scan(tmp_path / "in") == []
    assert [r.path for r in led.pending()] == [str(a), str(b)]
    led.claim([str(a)], "run-1")
    assert led.get(a).status == "processing" and led.get(a).attempts == 1
    led.finish([str(a)], "no-drift")
    rec = led.get(a)
    assert rec.status == "done" and rec.outcome == "no-drift" and rec.flow_run_id == "run-1"
    assert [r.path for r in led.pending()] == [str(b)]
    led.scan(tmp_path / "in")  # scanning again registers nothing twice
    assert len(led.records()) == 2


def test_a_crashed_claim_is_taken_back(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    a = drop(tmp_path / "in", "a.parquet")
    led.scan(tmp_path / "in")
    led.claim([str(a)], "run-that-died")
    # a new run (holding the landing lock) sees the stale claim as pending again
    assert [r.path for r in led.pending()] == [str(a)]


def test_failures_are_retried_then_quarantined_with_reason(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    a = drop(tmp_path / "in", "a.parquet")
    led.scan(tmp_path / "in")
    q = tmp_path / "quarantine"
    for attempt in (1, 2):
        led.claim([str(a)], f"run-{attempt}")
        moved = led.fail([str(a)], "a.parquet: not a readable parquet file", 2, q)
    assert moved == [str(a)]
    rec = led.get(a)
    assert rec.status == "quarantined" and rec.attempts == 2
    assert (q / "a.parquet").exists() and not a.exists()
    assert "not a readable parquet file" in (q / "a.parquet.reason.txt").read_text()
    assert led.pending() == []


def test_a_file_changed_after_processing_is_reported(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    a = drop(tmp_path / "in", "a.parquet")
    led.scan(tmp_path / "in")
    led.claim([str(a)], "r")
    led.finish([str(a)], "no-drift")
    drop(tmp_path / "in", "a.parquet", rows=10)
    warnings = led.scan(tmp_path / "in")
    assert len(warnings) == 1 and "changed after it was processed" in warnings[0]
    assert led.get(a).status == "done"  # not silently re-processed
    assert any(e[2] == "changed" for e in led.events(str(a)))


def test_files_still_being_written_wait_for_the_settle_time(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    a = drop(tmp_path / "in", "a.parquet")
    led.scan(tmp_path / "in", settle_seconds=60)
    assert led.records() == []
    old = a.stat().st_mtime - 120
    os.utime(a, (old, old))
    led.scan(tmp_path / "in", settle_seconds=60)
    assert [r.path for r in led.records()] == [str(a)]
