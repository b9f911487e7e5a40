"""Big landing items without a monitor run: per-hour summaries merge in any order to what the
rows give, keep only the hours a horizon can judge; a parquet directory in the landing dir is
registered once it is complete (``_SUCCESS``, or settled) and its changes are seen."""

from __future__ import annotations

import os
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftwatch.engine.block_summaries import block_lattices
from driftwatch.monitor.big import summarise_rows
from driftwatch.monitor.plan import Plan
from driftwatch.store.flights import FLIGHTS_TZ
from driftwatch.store.ledger import Ledger
from tests.conftest import REFERENCE, ROOT


@pytest.fixture(scope="module")
def plan() -> Plan:
    return Plan.load(ROOT / "config.yaml")


def test_hour_summaries_merge_in_any_order_and_keep_the_newest_day(
    plan: Plan, flights: pd.DataFrame
) -> None:
    spec = plan.settings.model
    profile = plan.block_profile(pd.read_parquet(REFERENCE))
    lattices = block_lattices(profile)
    local = flights["time_hour"].dt.tz_convert(FLIGHTS_TZ)
    rows = flights[((local.dt.month == 3) & (local.dt.day <= 4)).to_numpy()]
    keep = pd.Timedelta("1D")
    whole = summarise_rows(rows, spec, profile, lattices, keep)
    cuts = np.linspace(0, len(rows), 6).round().astype(int)
    parts = [rows.iloc[a:b] for a, b in pairwise(cuts)]
    chunks = [summarise_rows(p, spec, profile, lattices, keep) for p in parts]
    left = chunks[0]
    for c in chunks[1:]:
        left = left.merge(c)
    right = chunks[-1]
    for c in reversed(chunks[:-1]):
        right = right.merge(c)
    for merged in (left, right):
        assert merged.rows == whole.rows == len(rows)
        assert merged.last == whole.last and merged.first == whole.first
        assert sorted(merged.hours) == sorted(whole.hours)
        assert len(merged.hours) <= 24  # only the newest day is kept
        for span in ("1h", "6h", "1D"):
            a, b = merged.window(pd.Timedelta(span)), whole.window(pd.Timedelta(span))
            assert a.rows == b.rows
            for col, s in a.columns.items():
                t = b.columns[col]
                assert (s.rows, s.missing) == (t.rows, t.missing)
                if s.counts is not None:
                    assert np.array_equal(s.counts, t.counts), col
    # The newest hour's window holds the rows of that hour, as the in-memory check takes them.
    newest = local[rows.index].max()
    assert whole.window(pd.Timedelta("1h")).rows == int((local[rows.index] == newest).sum())


def test_a_directory_is_registered_when_complete(tmp_path: Path, january: pd.DataFrame) -> None:
    landing = tmp_path / "landing"
    data = landing / "batch-1"
    data.mkdir(parents=True)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    (landing / "empty-dir").mkdir()  # no parquet file, no marker: not a batch (yet)
    january.head(100).to_parquet(data / "part-0.parquet")
    assert ledger.scan(landing, settle_seconds=3600) == []
    assert ledger.records() == []  # being written: neither _SUCCESS nor settled
    (data / "_SUCCESS").write_bytes(b"")
    ledger.scan(landing, settle_seconds=3600)
    (rec,) = ledger.records()
    assert (Path(rec.path).name, rec.status) == ("batch-1", "pending")
    assert rec.size == (data / "part-0.parquet").stat().st_size
    # A partition added before it was read: its new content is recorded.
    january.iloc[100:200].to_parquet(data / "part-1.parquet")
    warnings = ledger.scan(landing, settle_seconds=3600)
    assert any("batch-1: changed before it was read" in w for w in warnings)
    assert ledger.records()[0].sha256 != rec.sha256
    # Without a marker, a directory nothing changed in for settle_seconds is complete too.
    other = landing / "batch-2"
    other.mkdir()
    january.head(10).to_parquet(other / "part-0.parquet")
    old = time.time() - 120
    for p in (other, other / "part-0.parquet"):
        os.utime(p, (old, old))
    ledger.scan(landing, settle_seconds=60)
    assert sorted(Path(r.path).name for r in ledger.records()) == ["batch-1", "batch-2"]
