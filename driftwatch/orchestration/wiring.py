"""The production ports for a plan: landing dir + ledger, history, reference files, calibration
files, MLflow, Prefect reporting. One place builds them, for the monitor flow and the retrain flow."""

from __future__ import annotations

from driftwatch.monitor.pipeline import MonitorCycle
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Steps
from driftwatch.orchestration.dask_cluster import DaskBigBatches
from driftwatch.orchestration.reporting import PrefectReporter
from driftwatch.store.calibrations import CalibrationStore
from driftwatch.store.history import HistoryFiles
from driftwatch.store.landing import LandingFiles
from driftwatch.store.models import RegistryModels
from driftwatch.store.references import ReferenceFiles


def production_cycle(plan: Plan, steps: Steps, batch_path: str | None = None) -> MonitorCycle:
    references = ReferenceFiles(plan)
    registry = RegistryModels(plan)
    batches = LandingFiles(plan, batch_path)
    return MonitorCycle(
        plan,
        batches=batches,
        references=references,
        thresholds=CalibrationStore(plan, references),
        registry=registry,
        reporter=PrefectReporter(plan, references, registry),
        history=HistoryFiles(plan, batches.ledger),
        steps=steps,
        big=DaskBigBatches(plan),
    )
