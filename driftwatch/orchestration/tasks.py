"""Each step of the monitor use case as a Prefect task, the retrain as a child flow run.

``PrefectSteps`` is the step runner :class:`driftwatch.monitor.pipeline.MonitorCycle` is given by
the flows: the use case stays plain Python, and the Prefect UI still shows one task run per
step, with Prefect's own retries (exponential backoff) on the steps that talk to MLflow or the
disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from driftwatch.monitor.plan import Plan
from driftwatch.monitor.result import MonitorResult

T = TypeVar("T")


class PrefectSteps:
    def __init__(self, plan: Plan, subflows: dict[str, Callable[..., Any]]) -> None:
        o = plan.settings.orchestration
        self.plan = plan
        self.subflows = subflows
        # d, 2d, 4d, ...: a server that is restarting gets time to come back, a blip costs d.
        self.retry_options: dict[str, Any] = {
            "retries": o.retries,
            "retry_delay_seconds": exponential_backoff(backoff_factor=o.retry_delay_seconds)
            if o.retries and o.retry_delay_seconds
            else 0,
        }

    def __call__(self, name: str, fn: Callable[..., T], *args: Any, retry: bool = False) -> T:
        options = self.retry_options if retry else {}
        return task(fn, name=name, cache_policy=NO_CACHE, **options)(*args)

    def subflow(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """The named child flow, given the plan first (it builds its own ports from it)."""
        return self.subflows[name](self.plan, *args)


@task(name="load plan", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def load_plan_task(config_path: str, model: str | None = None) -> Plan:
    """config.yaml read and validated once per run; the plan object travels from here on.
    ``model``: which one of a config with ``models:``."""
    return Plan.load(config_path, model=model)


@task(name="emit events", cache_policy=NO_CACHE)
def emit_events_task(plan: Plan, result: MonitorResult) -> list[str]:
    """The run's findings as Prefect events (drift, quality, data, retrain, completed)."""
    from driftwatch.orchestration.events import emit_run_events

    return emit_run_events(plan, result)
