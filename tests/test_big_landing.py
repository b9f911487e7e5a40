"""Big batches in the hourly monitor (issue 19 part 3): a partitioned parquet directory dropped
in the landing dir of a real monitor run (real Prefect API, MLflow on sqlite, flights data) is
taken once, judged at every horizon on per-hour summaries with the verdicts of the in-memory
check of the same rows, scored and estimated per partition, and marked done; a directory with a corrupt
partition is failed alone, its reason naming the partition's file, while the other files of
the tick are processed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftwatch.store.flights import FLIGHTS_TZ
from tests.test_flows import run, write

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

FAST = {"estimator": "linear", "params": {}, "timezone": FLIGHTS_TZ}


def days(flights: pd.DataFrame, month: int, first: int, last: int) -> pd.DataFrame:
    local = flights["time_hour"].dt.tz_convert(FLIGHTS_TZ)
    keep = (local.dt.month == month) & (local.dt.day >= first) & (local.dt.day <= last)
    return flights[keep.to_numpy()].reset_index(drop=True)


def dataset(frame: pd.DataFrame, root: Path, per_day: int = 2) -> Path:
    """One directory, ``per_day`` parquet files per local day, Spark's ``_SUCCESS`` last."""
    root.mkdir(parents=True)
    local = frame["time_hour"].dt.tz_convert(FLIGHTS_TZ)
    for day, rows in frame.groupby(local.dt.day.to_numpy()):
        cuts = np.linspace(0, len(rows), per_day + 1).round().astype(int)
        for k in range(per_day):
            part = rows.iloc[cuts[k] : cuts[k + 1]]
            part.to_parquet(root / f"part-{day:02d}-{k}.parquet", index=False)
    (root / "_SUCCESS").write_bytes(b"")
    return root


def in_memory_horizons(config: Path, frame: pd.DataFrame) -> list:
    """The exact path on the same rows, same champion reference and thresholds."""
    from driftwatch.monitor.pipeline import BlockJudging, judge_horizon
    from driftwatch.monitor.plan import Plan
    from driftwatch.monitor.ports import Batch
    from driftwatch.store.calibrations import CalibrationStore
    from driftwatch.store.models import RegistryModels
    from driftwatch.store.references import ReferenceFiles

    plan = Plan.load(config)
    references = ReferenceFiles(plan)
    ref = references.locate(RegistryModels(plan).champion())
    thresholds = CalibrationStore(plan, references)
    blocks = BlockJudging(
        references.block_profile(ref),
        tuple(thresholds.block_thresholds(ref, s) for s in plan.spans(frame)),
        ref.sha256[:16],
    )
    batch = Batch(frame.sort_values("time_hour", kind="stable"), ["x"], False)
    return [judge_horizon(plan, batch, blocks, t) for t in blocks.thresholds]


def test_a_parquet_directory_in_the_landing_dir_is_judged_per_hour_once(
    make_config, tmp_path: Path, flights: pd.DataFrame
) -> None:
    from driftwatch.config import load_settings
    from driftwatch.model.quality import score_predictions
    from driftwatch.model.schema import validate_batch
    from driftwatch.monitor.plan import Plan
    from driftwatch.store.landing import ledger_for
    from driftwatch.store.models import RegistryModels

    config = make_config(
        model=FAST,
        drift={"horizons": ["1h", "6h", "1D"]},
        retrain={"triggers": ["age"]},  # no retrain: the comparison keeps its champion
        scale={"runner": "local"},
        landing={"max_attempts": 2},
    )
    landing = tmp_path / "landing"
    spec = load_settings(config).model
    first = days(flights, 1, 31, 31)
    write(first, landing / "2013-01-31.parquet")
    assert run(config).is_completed()  # trains the champion

    week = days(flights, 2, 1, 6)
    small = days(flights, 2, 7, 7)
    small = small[small["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.hour < 12]
    dataset(week, landing / "2013-02-week")
    write(small, landing / "2013-02-07-am.parquet")
    state = run(config)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["rows"] == len(week) + len(small) + len(first)  # the day before is context
    assert sorted(Path(f).name for f in result["files"]) == [
        "2013-02-07-am.parquet",
        "2013-02-week",
    ]
    assert any("2013-02-week: " in w and "summarised per hour" in w for w in result["warnings"])
    # Every horizon judged on the merged hours, with the in-memory verdicts.
    window = pd.concat([first, week, small], ignore_index=True)
    exact = in_memory_horizons(config, validate_batch(window, spec, "window"))
    got = result["horizons"]
    assert [h["span"] for h in got] == ["1h", "6h", "1d"]
    for e, h in zip(exact, got, strict=True):
        assert "summarised per hour from 12 partition(s)" in h["description"], h["description"]
        assert h["rows_current"] == e.rows_current > 0
        assert h["dataset_drift"] == e.dataset_drift, (h["description"], e.description)
        cols = {c["column"]: c for c in h["columns"]}
        for c in e.columns:
            assert cols[c.column]["drifted"] == c.drifted, (h["span"], c.column)
            assert cols[c.column]["score"] == pytest.approx(c.score, rel=1e-6, nan_ok=True)
    # Quality from the partitions' sums: the whole batch's metric.
    plan = Plan.load(config)
    registry = RegistryModels(plan)
    model = registry.load_model(registry.champion().version)
    from driftwatch.model.estimators import predict, target

    rows = validate_batch(window, spec, "window").dropna(subset=[spec.target])
    metrics = score_predictions(
        target(rows, spec).to_numpy(float), predict(model, rows, spec), spec
    )
    quality = result["quality"]
    assert quality["labelled_rows"] == len(rows)
    assert quality["value"] == pytest.approx(metrics[quality["metric"]], rel=1e-9)
    # The estimate from the workers' loss sums: the estimate on the whole batch.
    estimator = registry.load_estimator(registry.champion().version)
    assert estimator is not None
    from driftwatch.model.estimators import features

    whole = validate_batch(window, spec, "window")
    est = estimator.estimate(features(whole, spec), predict(model, whole, spec))
    estimated = result["estimated"]
    assert estimated["rows"] == est.rows == len(whole)
    assert estimated["value"] == pytest.approx(est.value, rel=1e-9)
    assert estimated["low"] == pytest.approx(est.low, rel=1e-9)
    assert estimated["high"] == pytest.approx(est.high, rel=1e-9)
    assert estimated["reliable"] == est.reliable

    ledger = ledger_for(load_settings(config).paths.state)
    status = {Path(r.path).name: (r.status, r.attempts) for r in ledger.records()}
    assert status["2013-02-week"] == ("done", 1)
    assert status["2013-02-07-am.parquet"] == ("done", 1)
    assert run(config).message == "no new data"  # taken once

    # A directory with a corrupt partition, one whose partition lacks a column: each fails
    # alone, naming the partition's file; the small file of the same tick is done.
    broken = dataset(days(flights, 2, 8, 9), landing / "2013-02-broken")
    (broken / "part-09-1.parquet").write_bytes(b"PAR1 this is not parquet")
    dataset(days(flights, 2, 10, 10).drop(columns=["temp"]), landing / "2013-02-nocol")
    write(days(flights, 2, 11, 11), landing / "2013-02-11.parquet")
    state = run(config)
    assert state.is_failed()  # flagged: the good file is done, the bad ones named
    assert "part-09-1.parquet" in state.message and "not a readable parquet file" in state.message
    assert "2013-02-nocol" in state.message and "temp" in state.message
    records = {Path(r.path).name: r for r in ledger.records()}
    assert records["2013-02-11.parquet"].status == "done"
    assert records["2013-02-broken"].status == "failed"
    assert str(broken / "part-09-1.parquet") in records["2013-02-broken"].error
    assert records["2013-02-nocol"].status == "failed"
    assert "part-10-0.parquet" in records["2013-02-nocol"].error
    state = run(config)  # second attempt: quarantined, with the reason beside it
    records = {Path(r.path).name: r for r in ledger.records()}
    assert records["2013-02-broken"].status == "quarantined"
    reason = tmp_path / "state" / "quarantine" / "2013-02-broken.reason.txt"
    assert "part-09-1.parquet" in reason.read_text()
    assert (tmp_path / "state" / "quarantine" / "2013-02-broken" / "_SUCCESS").exists()
