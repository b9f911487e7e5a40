"""History: every processed batch is remembered, the retrain learns from all of it, and history
and the ledger agree (a batch is in history exactly when it is done)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import FROM_FILE, PREDICTED, SERVED_BY
from driftwatch.monitor.window import training_window
from driftwatch.store.flights import FLIGHTS_TZ
from driftwatch.store.history import HistoryFiles
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
    keys = {source.ledger.get(f).key for f in files}
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


# -- late labels ---------------------------------------------------------------------------------

LATE = {"id_column": "flight_id"}


def late_label_setup(make_config: Callable[..., Path], tmp_path: Path) -> Plan:
    labels = tmp_path / "labels"
    labels.mkdir()
    return Plan.load(make_config(model=LATE, paths={"labels": str(labels)}))


def features_only(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(air_time=float("nan"))


def labels_of(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["flight_id", "air_time"]].dropna().reset_index(drop=True)


def process(plan: Plan, run_id: str) -> tuple[HistoryFiles, list[str]]:
    """One tick's history part: take labels, take the landing files, add them to history."""
    source = LandingFiles(plan)
    history = HistoryFiles(plan, source.ledger)
    history.repair()
    batch = source.collect(run_id)
    notes, warned = history.ingest_labels(batch)
    history.append(batch, pd.Series(150.0, index=batch.frame.index), "1")
    source.finish(batch, "no-drift")
    return history, [*warned, *notes]


def test_labels_arriving_after_their_features_fill_the_rows_they_belong_to(
    make_config: Callable[..., Path], tmp_path: Path, january: pd.DataFrame
) -> None:
    plan = late_label_setup(make_config, tmp_path)
    monday = day(january, 7)
    landing_with(plan, {"features.parquet": features_only(monday)})
    history, _ = process(plan, "run-1")
    assert history.rows()["air_time"].isna().all()
    lab = labels_of(monday)
    lab.to_csv(plan.settings.paths.labels / "labels-1.csv", index=False)
    history, notes = process(plan, "run-2")
    assert notes == [
        f"labels from labels-1.csv: {len(lab)} applied, 0 waiting for their rows (ids not in"
        " history yet), 0 duplicate(s) ignored, 0 changed"
    ]
    rows = history.rows()
    assert rows["air_time"].notna().sum() == len(lab)
    # Each label sits on its own flight, counted at the time it was predicted.
    joined = rows.set_index("flight_id")["air_time"].dropna()
    assert joined.to_dict() == lab.set_index("flight_id")["air_time"].to_dict()


def test_labels_before_features_wait_and_duplicates_and_changes_are_reported(
    make_config: Callable[..., Path], tmp_path: Path, january: pd.DataFrame
) -> None:
    plan = late_label_setup(make_config, tmp_path)
    labels_dir = plan.settings.paths.labels
    tuesday = day(january, 8)
    lab = labels_of(tuesday)
    lab.to_parquet(labels_dir / "early.parquet", index=False)
    history, notes = process(plan, "run-1")  # no features yet: unknown ids wait
    assert f"0 applied, {len(lab)} waiting for their rows" in notes[0]
    landing_with(plan, {"features.parquet": features_only(tuesday)})
    history, _ = process(plan, "run-2")
    assert history.rows()["air_time"].notna().sum() == len(lab)  # applied on arrival
    # The same labels again under another name, and one changed value.
    lab.to_csv(labels_dir / "again.csv", index=False)
    shutil.copy(labels_dir / "early.parquet", labels_dir / "copy.parquet")  # the same bytes
    changed = lab.head(1).assign(air_time=lab["air_time"].iloc[0] + 60)
    changed.to_csv(labels_dir / "zz-changed.csv", index=False)
    history, notes = process(plan, "run-3")
    (dup,) = [n for n in notes if "again.csv" in n]
    (copy,) = [n for n in notes if "copy.parquet" in n]
    assert "the same content as" in copy and "not processed again" in copy
    (changes,) = [n for n in notes if "zz-changed.csv" in n]
    assert f"0 applied, 0 waiting for their rows (ids not in history yet), {len(lab)} dup" in dup
    assert "1 changed (not applied: the first label stands; e.g. id " in changes
    rows = history.rows().set_index("flight_id")
    first = lab["flight_id"].iloc[0]
    assert rows.loc[first, "air_time"] == lab["air_time"].iloc[0]  # never applied twice
    assert rows["air_time"].notna().sum() == len(lab)


def test_a_bad_label_file_is_charged_alone(
    make_config: Callable[..., Path], tmp_path: Path, january: pd.DataFrame
) -> None:
    plan = late_label_setup(make_config, tmp_path)
    labels_dir = plan.settings.paths.labels
    pd.DataFrame({"flight": [1], "air_time": [100.0]}).to_csv(labels_dir / "a-bad.csv", index=False)
    labels_of(day(january, 9)).to_csv(labels_dir / "b-good.csv", index=False)
    _, notes = process(plan, "run-1")
    assert notes[0] == (
        "labels failed: column 'flight_id' in " + str(labels_dir / "a-bad.csv")
        + ": missing column 'flight_id' (a label file holds id + label)"
    )  # fmt: skip
    assert notes[1].startswith("labels from b-good.csv: 0 applied, ")


def test_the_realised_metric_of_a_day_changes_when_its_late_labels_arrive(
    make_config: Callable[..., Path], tmp_path: Path, january: pd.DataFrame
) -> None:
    from driftwatch.monitor.realised import realised

    plan = late_label_setup(make_config, tmp_path)
    wednesday = day(january, 9)
    landing_with(plan, {"features.parquet": features_only(wednesday)})
    history, _ = process(plan, "run-1")
    before = realised(history.rows(), plan)
    assert before["labelled"].sum() == 0 and before["rmse"].isna().all()
    lab = labels_of(wednesday)
    half = lab.iloc[: len(lab) // 2]
    half.to_parquet(plan.settings.paths.labels / "first-half.parquet", index=False)
    history, _ = process(plan, "run-2")
    partly = realised(history.rows(), plan).set_index("period")
    lab.iloc[len(lab) // 2 :].to_parquet(plan.settings.paths.labels / "rest.parquet", index=False)
    history, _ = process(plan, "run-3")
    full = realised(history.rows(), plan).set_index("period")
    assert partly.loc["2013-01-09", "labelled"] == len(half)
    assert full.loc["2013-01-09", "labelled"] == len(lab)
    assert full.loc["2013-01-09", "rmse"] != partly.loc["2013-01-09", "rmse"]
    expected = ((lab["air_time"] - 150.0) ** 2).mean() ** 0.5  # every prediction was 150
    assert full.loc["2013-01-09", "rmse"] == pytest.approx(expected)


def test_realised_command_and_report_plot_show_the_periods(
    make_config: Callable[..., Path], tmp_path: Path, january: pd.DataFrame, capsys
) -> None:
    from driftwatch.cli import main
    from driftwatch.report.plot import plot_history
    from driftwatch.store.history import read_realised

    plan = late_label_setup(make_config, tmp_path)
    config = tmp_path / "config.yaml"
    assert main(["realised", "--config", str(config)]) == 0
    assert "no predictions in history yet" in capsys.readouterr().out
    thursday = day(january, 10)
    landing_with(plan, {"features.parquet": features_only(thursday)})
    process(plan, "run-1")
    labels_of(thursday).to_csv(plan.settings.paths.labels / "l.csv", index=False)
    process(plan, "run-2")
    assert main(["realised", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "period" in out and "labelled" in out and "2013-01-10" in out
    table = read_realised(plan)
    cycle, _ = memory_cycle(Plan.load(make_config(model=FAST)), [("d", thursday)])
    png = plot_history([cycle.run()], tmp_path / "h.png", realised=table)
    assert png.stat().st_size > 10_000


def test_parts_with_and_without_a_champion_or_a_category_read_together(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    """The bootstrap batch has no champion (no predictions); a later one has, and may have a
    categorical column all missing: every part has one schema, so history reads as one."""
    plan = Plan.load(make_config())
    landing_with(plan, {"a.parquet": day(january, 3)})
    source = LandingFiles(plan)
    history = HistoryFiles(plan, source.ledger)
    first = source.collect("run-1")
    history.append(first, None, None)
    source.finish(first, "retrained-promoted")
    landing_with(plan, {"b.parquet": day(january, 4).assign(carrier=None)})
    second = source.collect("run-2")
    history.append(second, pd.Series(1.0, index=second.frame.index), "1")
    source.finish(second, "no-drift")
    rows = history.rows()
    assert len(rows) == first.rows + second.rows
    assert (
        rows[SERVED_BY].isna().sum() == first.rows and (rows[SERVED_BY] == "1").sum() == second.rows
    )
    assert rows["carrier"].isna().sum() == second.rows
