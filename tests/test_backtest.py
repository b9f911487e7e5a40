"""The backtest runs the monitor's own use case on in-memory ports, without any server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from driftwatch.config import load_settings
from driftwatch.monitor.backtest import Backtester, pooled, severity
from driftwatch.store.flights import local_month
from driftwatch.store.replay import history_batches, shipped_reference

# A linear model trains in milliseconds: these tests are about policies, not model quality.
FAST = {"estimator": "linear", "params": {}}


def test_batches_dir_and_policies(
    make_config: Callable[..., Path], flights: pd.DataFrame, tmp_path: Path
) -> None:
    config = make_config(drift={"calibration": {"batches": 200}}, model=FAST)
    settings = load_settings(config)
    batches = tmp_path / "history"
    batches.mkdir()
    july = flights[local_month(flights) == 7]
    for i in range(4):
        july.sample(6000, random_state=i).to_parquet(batches / f"2013-07-{i:02d}.parquet")
    (batches / "README.txt").write_text("not a batch")
    replay = history_batches(settings, batches_dir=batches)
    assert [name for name, _ in replay] == [f"2013-07-{i:02d}.parquet" for i in range(4)]
    reference = shipped_reference(settings)

    never = Backtester(settings, "never", "never").run(replay, reference)
    # A new deployment: the first batch bootstraps a champion, "never" retrains no more.
    assert never.batches[0].action == "bootstrap"
    assert [b.retrained for b in never.batches] == [True, False, False, False]
    assert {b.champion for b in never.batches} == {1}
    assert all(b.action == "no_retrain" or b.action == "no_drift" for b in never.batches[1:])
    always = Backtester(settings, "always", "always").run(replay, reference)
    assert [b.retrained for b in always.batches] == [True] * 4
    assert all("schedule" in b.triggers for b in always.batches[1:])
    summary = always.summary()
    assert summary["retrains"] == 4 and summary["promotions"] >= 1
    assert always.batches[-1].champion >= 1
    frame = always.to_frame()
    assert len(frame) == 4 and "severity.temp" in frame.columns
    # The backtest changed nothing on disk.
    assert not settings.paths.state.exists()


def test_pooled_metric_and_severity_scale() -> None:
    assert pooled("rmse", [(3.0, 1), (4.0, 1)]) == (12.5) ** 0.5
    assert pooled("mae", [(1.0, 3), (2.0, 1)]) == 1.25
    from driftwatch.engine.drift import ColumnDrift

    def col(p: float | None, score: float, threshold: float) -> ColumnDrift:
        return ColumnDrift(
            column="c", kind="numerical", test="t", statistic=score, p_value=p, score=score,
            threshold=threshold, drifted=None, status="ok", rows_reference=1, rows_current=1,
            dropped_current=0,
        )  # fmt: skip

    assert severity(col(None, 0.2, 0.1)) == 2.0  # a distance twice its threshold
    assert abs(severity(col(1e-4, 1e-4, 1e-2)) - 2.0) < 1e-12  # p = threshold squared
