"""Poison files (issue: one odd value blocks the landing dir forever): each file is judged alone.

Everything is real: files on disk, the sqlite ledger, the production ``LandingFiles`` source.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftwatch.cli import main
from driftwatch.config import load_settings
from driftwatch.monitor.plan import Plan
from driftwatch.store.landing import LandingFiles, ledger_for
from driftwatch.store.ledger import SCHEMA, Ledger


def rows(january: pd.DataFrame, n: int = 20, start: int = 0) -> pd.DataFrame:
    return january.iloc[start : start + n].reset_index(drop=True)


def landing_plan(make_config: Callable[..., Path], **landing: object) -> Plan:
    settings = load_settings(make_config(landing=landing))
    settings.paths.landing.mkdir(parents=True, exist_ok=True)
    return Plan(settings=settings)


def test_each_bad_file_is_charged_alone_with_its_own_reason_and_the_others_go_on(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = landing_plan(make_config, max_attempts=2)
    landing, state = plan.settings.paths.landing, plan.settings.paths.state
    good = landing / "a-good.parquet"
    rows(january).to_parquet(good)
    # A list-valued cell (pyarrow list type): before, a TypeError inside pandas failed the run.
    nested = rows(january, start=20).astype({"origin": object})
    nested["origin"] = [["JFK", "LGA"]] * len(nested)
    nested.to_parquet(landing / "b-nested.parquet")
    # Every row stamped in the year 2200: nothing usable is left.
    future = rows(january, start=40).assign(time_hour=pd.Timestamp("2200-01-01", tz="UTC"))
    future.to_parquet(landing / "c-future.parquet")
    ledger = ledger_for(state)

    batch = LandingFiles(plan).collect("run-1")
    assert batch.files == [str(good)] and batch.rows == 20
    nested_reason = batch.rejected[str(landing / "b-nested.parquet")]
    assert nested_reason == (
        f"column 'origin' in {landing / 'b-nested.parquet'}: 20 non-scalar value(s) (lists or"
        " dicts) such as ['JFK', 'LGA']; a cell must hold one value"
    )
    future_reason = batch.rejected[str(landing / "c-future.parquet")]
    assert future_reason.startswith(f"column 'time_hour' in {landing / 'c-future.parquet'}: all 20")
    # Each file's ledger error is its own reason, not the run's reasons joined.
    assert ledger.get(landing / "b-nested.parquet").error == nested_reason
    assert ledger.get(landing / "c-future.parquet").error == future_reason
    assert sorted(w.split(":")[0] for w in batch.warnings) == ["failed (will retry)"] * 2
    LandingFiles(plan).finish(batch, "no-drift")

    batch = LandingFiles(plan).collect("run-2")  # second attempt: quarantined, alone
    assert batch.files == [] and set(batch.rejected) == {
        str(landing / "b-nested.parquet"),
        str(landing / "c-future.parquet"),
    }
    assert ledger.get(good).status == "done"
    reason_file = state / "quarantine" / "b-nested.parquet.reason.txt"
    assert reason_file.read_text() == nested_reason + "\n"
    assert [ledger.get(landing / n).status for n in ("b-nested.parquet", "c-future.parquet")] == [
        "quarantined",
        "quarantined",
    ]


def test_values_are_checked_inf_bools_future_and_out_of_range_rows_are_counted(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = landing_plan(make_config)
    landing = plan.settings.paths.landing
    f = rows(january, 10).assign(distance=lambda d: d["distance"].astype(float))
    f.loc[0, "distance"] = np.inf
    f.loc[1, "air_time"] = -np.inf
    f.loc[2, "time_hour"] = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=3)
    f = f.astype({"time_hour": object})
    f.loc[3, "time_hour"] = "2400-01-01T00:00:00Z"  # beyond what pandas can hold
    path = landing / "odd.csv"
    f.to_csv(path, index=False)
    bools = rows(january, 4, start=10).assign(
        precip=[True, False, True, False], distance=[9001.0, 9002.0, 9003.0, 9004.0]
    )
    bools.to_parquet(landing / "p-bools.parquet")

    batch = LandingFiles(plan).collect("run-1")
    assert batch.rejected == {}
    assert batch.rows == 8 + 4  # two rows of odd.csv dropped, counted below
    odd = batch.frame[batch.frame["time_hour"] < pd.Timestamp("2013-01-02", tz="UTC")]
    assert odd["distance"].isna().sum() >= 1 and np.isfinite(batch.frame["distance"].dropna()).all()
    assert not np.isinf(batch.frame["air_time"].dropna()).any()
    assert batch.warnings[:4] == [
        f"column 'distance' in {path}: 1 infinite value(s) set to missing",
        f"column 'air_time' in {path}: 1 infinite value(s) set to missing",
        f"column 'time_hour' in {path}: 1 row(s) dropped, timestamp out of the range pandas"
        " can hold",
        batch.warnings[3],
    ]
    assert batch.warnings[3].startswith(
        f"column 'time_hour' in {path}: 1 row(s) dropped, timestamp more than"
        " landing.max_future_days = 2 day(s) in the future"
    )
    # Bools in a numerical feature are taken as 0/1.
    from_bools = batch.frame[batch.frame["distance"] > 9000].sort_values("distance")
    assert from_bools["precip"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert str(batch.frame["time_hour"].dtype) == "datetime64[ns, UTC]"


def test_unused_columns_are_never_loaded_and_too_many_columns_are_refused_unread(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = landing_plan(make_config, max_columns=50, max_attempts=1)
    landing, spec = plan.settings.paths.landing, plan.settings.model
    wide_ok = rows(january).assign(**{f"junk{i}": 1.0 for i in range(30)})
    wide_ok.to_parquet(landing / "a-wide.parquet")
    wide_ok.to_csv(landing / "b-wide.csv", index=False)
    too_wide = pa.table({f"c{i}": pa.array([1.0]) for i in range(60)})
    pq.write_table(too_wide, landing / "c-too-wide.parquet")

    batch = LandingFiles(plan).collect("run-1")
    keep = {*spec.features, spec.target, spec.timestamp, spec.id_column}
    assert set(batch.frame.columns) == keep and batch.rows == 40
    assert batch.rejected == {
        str(landing / "c-too-wide.parquet"): f"{landing / 'c-too-wide.parquet'}: 60 columns,"
        " above landing.max_columns = 50: refused unread (send only the model's columns, or"
        " raise the limit)"
    }
    assert ledger_for(plan.settings.paths.state).get(landing / "c-too-wide.parquet").status == (
        "quarantined"
    )


def test_a_claimed_file_deleted_before_it_is_read_ends_missing_once(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = landing_plan(make_config)
    landing = plan.settings.paths.landing
    gone, kept = landing / "gone.parquet", landing / "kept.parquet"
    rows(january).to_parquet(gone)
    rows(january, start=20).to_parquet(kept)
    ledger = ledger_for(plan.settings.paths.state)
    ledger.scan(landing)
    gone.unlink()  # after the scan, before the read: deleted by hand or by a producer

    batch = LandingFiles(plan).collect("run-1")
    assert batch.files == [str(kept)] and batch.rejected == {} and batch.rows == 20
    assert batch.warnings == [
        f"missing: {gone}: deleted after it was claimed; marked missing (no more attempts)"
    ]
    rec = ledger.get(gone)
    assert rec.status == "missing" and rec.attempts == 1
    assert [e[2] for e in ledger.events(str(gone))] == ["claimed", "missing"]
    LandingFiles(plan).finish(batch, "no-drift")
    again = LandingFiles(plan).collect("run-2")  # reported once: not again, nothing to do
    assert again.warnings == [] and again.files == [] and ledger.get(gone).status == "missing"


def test_symlinks_in_the_landing_dir_are_refused_and_reported_once(
    make_config: Callable[..., Path], january: pd.DataFrame, tmp_path: Path
) -> None:
    plan = landing_plan(make_config)
    landing = plan.settings.paths.landing
    outside = tmp_path / "secret.parquet"
    rows(january).to_parquet(outside)
    link = landing / "link.parquet"
    link.symlink_to(outside)

    batch = LandingFiles(plan).collect("run-1")
    assert batch.rows == 0 and batch.files == []
    assert batch.warnings == [
        f"{link}: a symlink (to {outside}); refused, not read (copy or move the file itself"
        " into the landing dir)"
    ]
    ledger = ledger_for(plan.settings.paths.state)
    assert ledger.get(link).status == "refused"
    assert LandingFiles(plan).collect("run-2").warnings == []  # once


def test_a_prefect_retry_of_collect_is_the_same_attempt(
    make_config: Callable[..., Path], january: pd.DataFrame
) -> None:
    plan = landing_plan(make_config)
    landing = plan.settings.paths.landing
    f = landing / "a.parquet"
    rows(january).to_parquet(f)
    ledger = ledger_for(plan.settings.paths.state)
    # A Prefect retry calls the step again with the same arguments: the same run id.
    LandingFiles(plan).collect("run-1")
    LandingFiles(plan).collect("run-1")
    assert ledger.get(f).attempts == 1
    LandingFiles(plan).collect("run-2")  # a new run is a new attempt
    assert ledger.get(f).attempts == 2


def test_requeue_moves_a_quarantined_file_back_with_fresh_attempts(
    make_config: Callable[..., Path], january: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(landing={"max_attempts": 1})
    plan = Plan(settings=load_settings(config))
    landing, state = plan.settings.paths.landing, plan.settings.paths.state
    landing.mkdir(parents=True)
    bad = landing / "bad.parquet"
    rows(january).drop(columns="distance").to_parquet(bad)
    LandingFiles(plan).collect("run-1")
    ledger = ledger_for(state)
    assert ledger.get(bad).status == "quarantined" and not bad.exists()
    held = state / "quarantine" / "bad.parquet"
    rows(january).to_parquet(held)  # the operator fixed it in place

    assert main(["requeue", "--config", str(config), str(held)]) == 0
    out = capsys.readouterr().out
    assert (
        out == f"requeued {bad} (moved back from {held}): pending, attempts 0 (was quarantined)\n"
    )
    rec = ledger.get(bad)
    assert (rec.status, rec.attempts, rec.error) == ("pending", 0, None)
    assert (
        bad.exists() and not held.exists() and not held.with_name("bad.parquet.reason.txt").exists()
    )
    assert LandingFiles(plan).collect("run-2").files == [str(bad)]

    assert main(["requeue", "--config", str(config), "--quarantined"]) == 0
    assert capsys.readouterr().out == "no quarantined files\n"
    assert main(["requeue", "--config", str(config), "nope.parquet"]) == 2
    assert capsys.readouterr().err == "driftwatch: error: nope.parquet: not in the ledger\n"
    assert main(["requeue", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("driftwatch: error: requeue takes") and err.count("\n") == 1


def test_an_old_ledger_is_migrated_to_the_new_statuses(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "ledger.sqlite"
    conn = sqlite3.connect(db)
    old = SCHEMA.replace(",'missing','refused'", "")
    assert old != SCHEMA
    conn.executescript(old)
    now = datetime.now(UTC).isoformat()
    conn.execute(
        "INSERT INTO files(path,size,sha256,first_seen,status,updated) VALUES (?,?,?,?,?,?)",
        ("x.parquet", 1, "h", now, "pending", now),
    )
    conn.commit()
    conn.close()
    ledger = Ledger(db)
    assert ledger.get("x.parquet").status == "pending"
    ledger.missing("x.parquet", "deleted after it was claimed")
    assert ledger.get("x.parquet").status == "missing"
    assert os.path.exists(db)


def test_calibration_time_is_bounded_by_max_reference_rows(
    make_config: Callable[..., Path], january: pd.DataFrame, caplog
) -> None:
    plan = Plan.load(make_config(drift={"calibration": {"max_reference_rows": 5000}}))
    cut = plan.calibration_reference(january)
    days = plan.local_times(cut).dt.floor("D")
    # Whole local days, the newest ones, no more rows than the cap.
    assert len(cut) <= 5000 and days.nunique() >= 4
    assert days.min() > plan.local_times(january).dt.floor("D").min()
    all_days = plan.local_times(january).dt.floor("D").value_counts()
    assert days.value_counts().to_dict() == {d: all_days[d] for d in days.unique()}
    assert "above drift.calibration.max_reference_rows = 5000" in caplog.text
