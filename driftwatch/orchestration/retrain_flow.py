"""The retrain flow: challenger vs champion on the same holdout, promoted only if it wins.

Run as the monitor's child flow. The steps are the use case's
(:meth:`driftwatch.monitor.pipeline.MonitorCycle.retrain`): build the training window, train and
score the challenger, store its window, log and register it, record the decision, move the
``champion`` alias (last, and only if it won).
"""

from __future__ import annotations

from prefect import flow

from driftwatch.monitor.plan import Plan
from driftwatch.monitor.result import RetrainOutcome
from driftwatch.orchestration.tasks import PrefectSteps
from driftwatch.orchestration.wiring import production_cycle


@flow(name="driftwatch-retrain", validate_parameters=True)
def retrain_flow(
    plan: Plan, batch_files: list[str], reason: str = "", key: str = "", stale: bool = False
) -> RetrainOutcome:
    """``key`` (the monitor run's id) makes every write of a retried run find the first try's;
    ``stale``: drift, age or support triggered it (a tie at the ceiling may promote, see policy)."""
    steps = PrefectSteps(plan, {})
    return production_cycle(plan, steps).retrain(batch_files, reason, key or "manual", stale)
