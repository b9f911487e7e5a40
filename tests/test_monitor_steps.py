"""Monitor steps without Prefect: which failures count against a file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from driftwatch.config import load_settings
from driftwatch.errors import BatchError, RegistryError
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Batch
from driftwatch.store.landing import LandingFiles, ledger_for


def test_infrastructure_faults_never_quarantine_data_faults_do(make_config, tmp_path: Path) -> None:
    plan = Plan.load(make_config(landing={"max_attempts": 2}))
    settings = plan.settings
    landing = settings.paths.landing
    landing.mkdir(parents=True)
    b = str(landing / "b.parquet")
    pd.DataFrame({"x": [1]}).to_parquet(b)
    ledger = ledger_for(settings.paths.state)
    ledger.scan(landing)
    batch = Batch(pd.DataFrame(), [b], True)
    for _ in range(3):  # MLflow down three ticks in a row: the file is not to blame
        ledger.claim([b], "run")
        LandingFiles(plan).fail(batch, RegistryError("MLflow at http://x is not usable"))
    assert (ledger.get(b).status, ledger.get(b).attempts) == ("failed", 3)
    ledger.claim([b], "run")
    LandingFiles(plan).fail(batch, BatchError(b, "corrupt"))
    assert ledger.get(b).status == "quarantined"
    assert not Path(b).exists()


def test_a_file_missing_model_columns_is_rejected_by_name(make_config) -> None:
    settings = load_settings(make_config(landing={"max_attempts": 2}))
    settings.paths.landing.mkdir(parents=True)
    path = settings.paths.landing / "x.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(path)
    batch = LandingFiles(Plan(settings=settings)).collect("run-1")
    assert batch.files == [] and batch.rows == 0
    assert "missing required column(s)" in batch.rejected[str(path)]
    assert "failed (will retry)" in batch.warnings[0]
    assert ledger_for(settings.paths.state).get(path).status == "failed"


def test_a_file_far_larger_than_usual_is_refused_unread_then_quarantined(make_config) -> None:
    import numpy as np

    settings = load_settings(make_config(landing={"max_attempts": 1, "max_file_mb": 1}))
    settings.paths.landing.mkdir(parents=True)
    big = settings.paths.landing / "huge.csv"
    pd.DataFrame({"x": np.arange(300_000)}).to_csv(big, index=False)  # ~2 MB
    batch = LandingFiles(Plan(settings=settings)).collect("run-1")
    assert batch.rows == 0
    msg = batch.rejected[str(big)]
    assert "above landing.max_file_mb = 1: refused unread" in msg and "huge.csv" in msg
    assert ledger_for(settings.paths.state).get(big).status == "quarantined"
    assert (settings.paths.state / "quarantine" / "huge.csv").exists()
