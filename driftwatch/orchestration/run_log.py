"""The logger of the run the code is in, so that its lines reach that run's page in the UI.

Prefect's ``get_run_logger()`` prefers the task run's context to the flow run's. A child flow
run called inside a task (each model's run in a multi-model tick is called from its task of
the parent run) therefore logged its flow-level lines, and every line of its inline steps, to
the parent's task run, not to its own page. Here the innermost run wins: a task run of the
current flow run, else the flow run itself.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("driftwatch.orchestration")


def run_logger() -> Any:
    """The current run's logger; this package's plain logger outside any run."""
    from prefect import get_run_logger
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.logging.loggers import flow_run_logger

    task_run, flow_run = TaskRunContext.get(), FlowRunContext.get()
    in_flow = flow_run is not None and flow_run.flow_run is not None
    if in_flow and (task_run is None or task_run.task_run.flow_run_id != flow_run.flow_run.id):
        return flow_run_logger(flow_run.flow_run, flow_run.flow)
    if task_run is not None:
        return get_run_logger()
    return log
