"""The backtest engine without any server: batches from a directory, and the retrain policies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from driftwatch.config import load_settings
from driftwatch.monitor.backtest import Backtester, history_batches, pooled, severity
from driftwatch.store.batches import local_month


def test_batches_dir_and_policies(
    make_config: Callable[..., Path], flights: pd.DataFrame, tmp_path: Path
) -> None:
    config = make_config(drift={"calibration": {"batches": 200}})
    settings = load_settings(config)
    batches = tmp_path / "history"
    batches.mkdir()
    july = flights[local_month(flights) == 7]
    for i in range(3):
        july.sample(6000, random_state=i).to_parquet(batches / f"2013-07-{i:02d}.parquet")
    (batches / "README.txt").write_text("not a batch")
    replay = history_batches(settings, batches_dir=batches)
    assert [name for name, _ in replay] == [f"2013-07-{i:02d}.parquet" for i in range(3)]

    never = Backtester(settings, "never", "never").run(replay)
    assert [b.retrained for b in never.batches] == [False] * 3
    assert {b.champion for b in never.batches} == {0}
    # The January model on July: degraded every time, so the monitor would have retrained.
    assert all(b.degraded and b.action == "retrain" for b in never.batches)
    always = Backtester(settings, "always", "always").run(replay)
    assert [b.retrained for b in always.batches] == [True] * 3
    assert always.batches[0].promoted  # a July challenger beats the January champion
    summary = always.summary()
    assert summary["retrains"] == 3 and summary["promotions"] == always.batches[-1].champion
    frame = always.to_frame()
    assert len(frame) == 3 and "severity.temp" in frame.columns


def test_pooled_metric_and_severity_scale() -> None:
    assert pooled("rmse", [(3.0, 1), (4.0, 1)]) == (12.5) ** 0.5
    assert pooled("mae", [(1.0, 3), (2.0, 1)]) == 1.25
    from driftwatch.engine.drift import ColumnDrift

    def col(p: float | None, score: float, threshold: float) -> ColumnDrift:
        return ColumnDrift("c", "numerical", "t", score, p, score, threshold, None, "ok", 1, 1, 0)

    assert severity(col(None, 0.2, 0.1)) == 2.0  # a distance twice its threshold
    assert abs(severity(col(1e-4, 1e-4, 1e-2)) - 2.0) < 1e-12  # p = threshold squared
