"""Time-block statistics from per-hour summaries merged (engine/block_summaries.py): the same
numbers and verdicts as from the rows, on flights days the reference (January) never saw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftwatch.engine.block_summaries import (
    block_lattices,
    block_statistics_summary,
    reference_summaries,
    summarise_block,
)
from driftwatch.engine.blocks import BlockDetector, block_statistics
from driftwatch.monitor.plan import Plan
from driftwatch.store.flights import local_month
from tests.conftest import REFERENCE, ROOT


@pytest.fixture(scope="module")
def plan() -> Plan:
    return Plan.load(ROOT / "config.yaml")


@pytest.mark.parametrize(("month", "day"), [(2, 10), (7, 4), (12, 24)])
def test_merged_hours_give_the_statistics_of_the_rows(
    plan: Plan, flights: pd.DataFrame, month: int, day: int
) -> None:
    reference = pd.read_parquet(REFERENCE)
    profile = plan.block_profile(reference)
    lattices = block_lattices(profile)
    rows = flights[local_month(flights) == month]
    rows = rows[plan.local_times(rows).dt.day == day]
    hours = plan.local_times(rows).dt.floor("h")
    parts = [summarise_block(profile, g, lattices) for _, g in rows.groupby(hours)]
    merged = parts[0]
    for p in parts[1:]:  # hour by hour, as the monitor merges a horizon's hours
        merged = merged.merge(p)
    exact = block_statistics(profile, rows)
    summed = block_statistics_summary(profile, merged, reference_summaries(profile, lattices))
    assert np.allclose(exact, summed, rtol=1e-9, atol=1e-12, equal_nan=True), [
        (c, e, s)
        for c, e, s in zip(profile.components, exact, summed, strict=True)
        if not np.isclose(e, s, rtol=1e-9, atol=1e-12, equal_nan=True)
    ]
    # ... and the detector's verdict, column by column, on thresholds of the day span.
    thresholds = plan.calibrate_blocks(reference, pd.Timedelta("1D")).thresholds_
    detector = BlockDetector(profile, thresholds, plan.counting)
    a, b = detector.check(rows), detector.check_summary(merged)
    assert a.dataset_drift == b.dataset_drift
    assert a.drifted_columns == b.drifted_columns
    assert [c.rows_current for c in a.columns] == [c.rows_current for c in b.columns]
