"""The monitor flow: one check of the newest data against the champion's reference.

The steps are the use case's (:meth:`driftwatch.monitor.pipeline.MonitorCycle.run`), each a
Prefect task: read champion, locate reference, load batch, load champion model, load reference
profile, calibrate thresholds, assess batch, report; then either stop (Completed "no new data" /
"no drift: ...") or run the retrain flow as a child run; record result, finish batch.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Completed

from driftwatch.errors import BatchError
from driftwatch.monitor.pipeline import completion_message
from driftwatch.orchestration.events import on_monitor_failure
from driftwatch.orchestration.retrain_flow import retrain_flow
from driftwatch.orchestration.run_log import run_logger
from driftwatch.orchestration.tasks import (
    LoggedSteps,
    PrefectSteps,
    emit_events_task,
    load_plan_task,
)
from driftwatch.orchestration.wiring import production_cycle
from driftwatch.store import lock
from driftwatch.store.landing import lock_path, owning


@flow(name="driftwatch-monitor", validate_parameters=True, on_failure=[on_monitor_failure])
def monitor_flow(
    config_path: str = "config.yaml",
    batch: str | None = None,
    model: str | None = None,
    step_tasks: bool = True,
) -> Any:
    """Check the newest data; retrain when features drift or the champion's quality degrades.

    ``batch``: one file to check. Without it, every pending file in the landing dir is taken
    (oldest first), under the landing dir's lock and only by the state dir that owns it, so two
    monitors (even with different state dirs) never work on the same landing dir. Either way the
    state dir's lock is held, which ``rollback`` and ``requeue`` take too.

    ``model``: which model of a config with ``models:`` (each is checked in a run of its own,
    as a child run of :func:`driftwatch.orchestration.models_flow.monitor_models_flow`).

    ``step_tasks``: each step a Prefect task run of its own (the default), or, as the parent
    of a multi-model tick runs its children, the steps inline with each step's time in the closing log line
    (:class:`~driftwatch.orchestration.tasks.LoggedSteps`: far fewer writes to the API).

    Its findings are sent as Prefect events (README, "Events"); a failed run sends
    ``driftwatch.monitor.failed`` from its failure hook.
    """
    plan = load_plan_task(config_path, model)
    steps = (PrefectSteps if step_tasks else LoggedSteps)(plan, {"retrain": retrain_flow})
    settings = plan.settings
    held = lock.exclusive(lock_path(settings.paths.state)) if batch else owning(settings)
    with held:
        result = production_cycle(plan, steps, batch).run(str(flow_run.id) if flow_run.id else None)
    emit_events_task(plan, result)
    if result.rejected:  # the good files are done; the run is marked failed to flag the bad ones
        raise BatchError(", ".join(result.rejected), "; ".join(result.rejected.values()))
    run_logger().info("outcome: %s (%.1f s)%s", result.outcome, result.seconds, steps.timings())
    return Completed(message=completion_message(result), data=result.to_dict())
