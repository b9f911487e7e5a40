"""Big batches on a real Dask LocalCluster (127.0.0.1, 2 workers, started and stopped here):
a partitioned flights dataset gets the verdicts of the in-memory check, and the model's quality
scored per partition equals the whole batch's. Slow: a cluster and its worker processes take
~5-15 s to start on a busy 2-core machine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from driftwatch.config import ScaleSettings
from driftwatch.engine.drift import DriftDetector

pytestmark = pytest.mark.slow

CAT = ["origin", "dest", "carrier", "weekday"]
NUM = ["distance", "hour", "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip"]
NUM += ["pressure", "visib"]


@pytest.fixture(scope="module")
def dataset(flights: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory):
    """January as the reference file; February as one parquet file per day (a directory)."""
    from driftwatch.store.flights import local_month

    root = tmp_path_factory.mktemp("big")
    month = local_month(flights)
    ref = flights[month == 1].reset_index(drop=True)
    feb = flights[month == 2].reset_index(drop=True)
    ref.to_parquet(root / "ref.parquet")
    (root / "feb").mkdir()
    days = feb["time_hour"].dt.tz_convert("America/New_York").dt.day
    for day, part in feb.groupby(days):
        part.to_parquet(root / "feb" / f"day-{day:02d}.parquet")
    return ref, feb, root


@pytest.fixture(scope="module")
def client():
    from driftwatch.orchestration.dask_cluster import dask_client

    scale = ScaleSettings(runner="local_cluster", n_workers=2, memory_limit="1GB")
    with dask_client(scale) as c:
        c.wait_for_workers(2, timeout=120)
        yield c


@pytest.mark.parametrize("method", ["evidently", "bonferroni"])
def test_partitioned_dataset_on_a_local_cluster_gets_the_in_memory_verdicts(
    dataset, client, method
) -> None:
    from driftwatch.orchestration.dask_cluster import check_big

    ref, feb, root = dataset
    det = DriftDetector(numerical=NUM, categorical=CAT, method=method).fit(ref)
    exact = det.check(feb)
    big = check_big(det, str(root / "feb"), ScaleSettings(), client=client)
    assert (
        f"summarised from {feb['time_hour'].dt.tz_convert('America/New_York').dt.day.nunique()}"
        in big.description
    )
    assert big.rows_current == len(feb)
    assert big.dataset_drift == exact.dataset_drift
    assert big.drifted_columns == exact.drifted_columns
    for e in exact.columns:
        s = big.column(e.column)
        assert s.test == e.test, e.column
        assert s.statistic == pytest.approx(e.statistic, rel=0.01, abs=1e-12), e.column


def test_quality_scored_per_partition_equals_the_whole_batch(dataset, client) -> None:
    from driftwatch.config import ModelSettings
    from driftwatch.model.estimators import train
    from driftwatch.model.quality import score
    from driftwatch.model.schema import validate_batch
    from driftwatch.orchestration.dask_cluster import score as score_parts
    from driftwatch.store.partitions import partitions

    ref, feb, root = dataset
    spec = ModelSettings(
        name="m", target="air_time", numerical=NUM, categorical=CAT, params={"max_iter": 20}
    )
    model = train(validate_batch(ref, spec, "ref"), spec)
    whole = score(model, validate_batch(feb, spec, "feb"), spec)
    sums = score_parts(client, partitions(root / "feb"), model, spec)
    assert sums.n == feb["air_time"].notna().sum()
    assert sums.metrics() == pytest.approx(whole, rel=1e-9)


def test_a_corrupt_partition_is_named_in_one_line(dataset, client, tmp_path: Path) -> None:
    from driftwatch.errors import BatchError
    from driftwatch.orchestration.dask_cluster import check_big

    ref, feb, _root = dataset
    bad = tmp_path / "feb"
    bad.mkdir()
    feb.iloc[:5000].to_parquet(bad / "a.parquet")
    (bad / "b.parquet").write_bytes(b"PAR1 not really")
    det = DriftDetector(numerical=NUM, categorical=CAT).fit(ref)
    with pytest.raises(BatchError, match=r"b\.parquet.*not a readable parquet file"):
        check_big(det, str(bad), ScaleSettings(), client=client)


def test_the_flow_on_prefects_dask_task_runner_gets_the_same_verdict(
    dataset, make_config, prefect_api
) -> None:
    """prefect-dask's DaskTaskRunner starts its own LocalCluster from config ``scale``."""
    from driftwatch.orchestration.big_batch_flow import run_big_check

    ref, feb, root = dataset
    cfg = make_config(
        drift={"method": "evidently"},
        scale={"runner": "local_cluster", "n_workers": 2, "memory_limit": "1GB"},
    )
    got = run_big_check(str(cfg), str(root / "feb"), str(root / "ref.parquet"))
    det = DriftDetector(numerical=[*NUM], categorical=CAT, method="evidently").fit(ref)
    exact = det.check(feb)
    assert got["drifted_columns"] == exact.drifted_columns
    assert got["dataset_drift"] == exact.dataset_drift


def test_the_monitors_hour_summaries_on_the_cluster_equal_this_process(dataset, client) -> None:
    """The monitor's big-batch port on an existing scheduler (``scale.runner: address``, the
    cluster above) gives the hour summaries and quality sums of ``runner: local``."""
    import numpy as np

    from driftwatch.engine.blocks import BlockDetector
    from driftwatch.model.estimators import train
    from driftwatch.monitor.plan import Plan
    from driftwatch.orchestration.dask_cluster import DaskBigBatches
    from tests.conftest import ROOT

    ref, _feb, root = dataset
    local = Plan.load(ROOT / "config.yaml")
    spec = local.settings.model.model_copy(update={"estimator": "linear", "params": {}})
    local = Plan(settings=local.settings.model_copy(update={"model": spec}))
    address = ScaleSettings(runner="address", address=client.scheduler.address)
    remote = Plan(settings=local.settings.model_copy(update={"scale": address}))
    model = train(ref.dropna(subset=[spec.target]), spec)
    profile = local.block_profile(ref)
    keep = pd.Timedelta("1D")
    here = DaskBigBatches(local).summarise(str(root / "feb"), profile, keep, model)
    there = DaskBigBatches(remote).summarise(str(root / "feb"), profile, keep, model)
    assert there.partitions == here.partitions == 28
    assert there.rows == here.rows and there.last == here.last
    assert sorted(there.hours) == sorted(here.hours) and len(here.hours) <= 24
    assert there.quality.n == here.quality.n > 0
    assert there.quality.metrics() == pytest.approx(here.quality.metrics(), rel=1e-9)
    thresholds = local.calibrate_blocks(ref, pd.Timedelta("6h")).thresholds_
    detector = BlockDetector(profile, thresholds, local.counting)
    a = detector.check_summary(here.window(pd.Timedelta("6h")))
    b = detector.check_summary(there.window(pd.Timedelta("6h")))
    assert a.rows_current == b.rows_current > 0
    assert [c.score for c in a.columns] == pytest.approx([c.score for c in b.columns], nan_ok=True)
    assert np.isfinite([c.score for c in a.columns if c.score is not None]).all()
