"""History: every processed batch is remembered, the retrain learns from all of it, and history
and the ledger agree (a batch is in history exactly when it is done)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import FROM_FILE, PREDICTED, SERVED_BY
from driftwatch.monitor.window import training_window
from driftwatch.store.flights import FLIGHTS_TZ
from driftwatch.store.history import HistoryFiles, part_key
from driftwatch.store.landing import LandingFiles
from tests.test_pipeline import FAST, WHOLE, memory_cycle


def day(frame: pd.DataFrame, number: int) -> pd.DataFrame:
    return frame[frame["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.day == number]


def landing_with(plan: Plan, frames: dict[str, pd.DataFrame]) -> list[str]:
    landing = plan.settings.paths.landing
    landing.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(landing / name, index=False)
    return sorted(str(landing / n) for n in frames)


def test_a_batch_is_in_history_once_its_files_are_done(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = Plan.load(make_config())
    files = landing_with(plan, {"a.parquet": day(january, 3), "b.parquet": day(january, 4)})
    source = LandingFiles(plan)
    history = HistoryFiles(plan, source.ledger)
    batch = source.collect("run-1")
    preds = pd.Series(1.0, index=batch.frame.index)
    assert history.append(batch, preds, "7").startswith(f"history: {batch.rows} row(s)")
    # Written but not committed: only the run itself (pending) sees the rows.
    assert history.rows().empty
    assert len(history.rows(pending=batch.files)) == batch.rows
    source.finish(batch, "no-drift")
    rows = history.rows()
    assert len(rows) == batch.rows == len(day(january, 3)) + len(day(january, 4))
    assert set(rows[FROM_FILE]) == set(files)
    assert (rows[SERVED_BY] == "7").all() and (rows[PREDICTED] == 1.0).all()
    assert rows["time_hour"].is_monotonic_increasing
    # Partitioned by day, one part per file and day, named by the file's key.
    parts = sorted((plan.settings.paths.state / "history" / "rows").glob("date=*/*.parquet"))
    keys = {part_key(source.ledger.get(f)) for f in files}
    assert {p.stem for p in parts} == keys and len(parts) >= 2


def test_a_crash_between_history_and_finish_leaves_both_or_neither(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    """The run dies after writing history and before marking the files done (the
    ``after-history`` checkpoint; the fault-injection benchmark kills a real run there)."""
    plan = Plan.load(make_config())
    landing_with(plan, {"a.parquet": day(january, 3)})
    source = LandingFiles(plan)
    history = HistoryFiles(plan, source.ledger)
    batch = source.collect("run-1")
    history.append(batch, None, None)
    parts = plan.settings.paths.state / "history" / "rows"
    assert list(parts.glob("date=*/*.parquet"))  # on disk, but its file is not done
    # The next run (a new process): repair first, then the file is taken again.
    source, history = LandingFiles(plan), HistoryFiles(plan, LandingFiles(plan).ledger)
    n = len(list(parts.glob("date=*/*.parquet")))  # a New York day spans two UTC dates
    assert history.repair() == f"history: removed {n} uncommitted part(s)"
    assert not list(parts.glob("date=*/*.parquet"))
    again = source.collect("run-2")
    assert again.files == batch.files
    history.append(again, None, None)
    source.finish(again, "no-drift")
    assert len(history.rows()) == len(day(january, 3))  # exactly once
    assert history.repair() == "history: consistent"


def test_history_is_pruned_by_keep_days(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = Plan.load(make_config(history={"keep_days": 10}, retrain={"window_days": 5}))
    landing_with(plan, {"a.parquet": day(january, 2), "b.parquet": day(january, 25)})
    source = LandingFiles(plan)
    history = HistoryFiles(plan, source.ledger)
    batch = source.collect("run-1")
    history.append(batch, None, None)
    source.finish(batch, "no-drift")
    assert history.prune().startswith("history: ")
    kept = history.rows()
    assert kept["time_hour"].min() >= pd.Timestamp("2013-01-14", tz="UTC")
    assert len(kept) == len(day(january, 25))


def test_a_batch_processed_without_a_retrain_trains_the_next_challenger(
    make_config: Callable[..., Path], january: pd.DataFrame, july: pd.DataFrame
) -> None:
    # A window long enough to reach back from July to January.
    plan = Plan.load(make_config(model=FAST, drift=WHOLE, retrain={"window_days": 200}))
    items = [
        ("2013-01-15.parquet", day(january, 15)),
        ("2013-01-16.parquet", day(january, 16)),  # quiet: judged, not retrained on
        ("2013-07-10.parquet", day(july, 10)),  # drift: the retrain
    ]
    cycle, log = memory_cycle(plan, items)
    results = [cycle.run(run_id=label) for label, _ in items]
    assert results[1].retrain is None and results[2].retrain is not None
    window = log.challenges[-1].window
    quiet = day(january, 16)["time_hour"]
    # Every flight of the quiet day is in the window the July challenger was built from.
    assert quiet.isin(window["time_hour"]).all()
    assert (window["time_hour"].dt.month == 7).any()


def test_the_shipped_reference_fills_the_window_only_while_history_is_short(
    make_config: Callable[..., Path], january: pd.DataFrame, july: pd.DataFrame
) -> None:
    settings = Plan.load(make_config(retrain={"window_days": 20})).settings
    shipped = january
    short = day(january, 30)
    window = training_window(short, shipped, settings)
    # History holds one day: the 19 days before it come from the shipped reference.
    assert window["time_hour"].min() > short["time_hour"].max() - pd.Timedelta(days=20)
    assert len(window) > len(short) and (window["time_hour"].dt.day < 30).any()
    # History as long as the window: no reference row is used.
    long = july
    window = training_window(long, shipped, settings)
    assert (window["time_hour"].dt.month >= 7).all()  # no January (reference) row
    assert len(window) < len(july)  # cut to the last 20 days
