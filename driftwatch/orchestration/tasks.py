"""Each step of the monitor use case as a Prefect task, the retrain as a child flow run.

``PrefectSteps`` is the step runner :class:`driftwatch.monitor.pipeline.MonitorCycle` is given by
the flows: the use case stays plain Python, and the Prefect UI still shows one task run per
step, with Prefect's own retries (exponential backoff) on the steps that talk to MLflow or the
disk.

``LoggedSteps`` is the runner of the per-model child runs of a multi-model tick: the same steps
as plain calls inside the child run, each step's time in that run's closing log line, the same
retries (tenacity, the same backoff). Why: every task run is three state events that the
Prefect API writes to its database; on the default temporary API (sqlite) twenty children's
writes collide, each collision is a 503 the client retries 2, 4, 8... s later, and a tick over
20 models spent most of its time in those waits (README, "Several models").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from driftwatch.monitor.plan import Plan
from driftwatch.monitor.result import MonitorResult
from driftwatch.orchestration.run_log import run_logger

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

    def timings(self) -> str:
        """Nothing to add to the run's closing line: each step is a task run with its time."""
        return ""


class LoggedSteps(PrefectSteps):
    """The steps as plain calls in the run's own thread, the retried ones retried as Prefect
    would (``orchestration.retries``, backoff d, 2d, 4d...); each step's time is kept for the
    run's closing log line (:meth:`timings`). The retrain stays a child flow run."""

    def __init__(self, plan: Plan, subflows: dict[str, Callable[..., Any]]) -> None:
        super().__init__(plan, subflows)
        self.times: list[tuple[str, float]] = []

    def __call__(self, name: str, fn: Callable[..., T], *args: Any, retry: bool = False) -> T:
        from tenacity import Retrying, stop_after_attempt, wait_exponential

        o = self.plan.settings.orchestration
        attempts = o.retries + 1 if retry else 1
        started = time.perf_counter()
        for attempt in Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=o.retry_delay_seconds, min=0),  # d, 2d, 4d...
            reraise=True,
            before_sleep=lambda s: run_logger().warning(
                "step %r failed (%s), try %d of %d",
                name,
                s.outcome.exception() if s.outcome else "?",
                s.attempt_number,
                attempts,
            ),
        ):
            with attempt:
                value = fn(*args)
        self.times.append((name, time.perf_counter() - started))
        return value

    def timings(self) -> str:
        return "; steps: " + ", ".join(f"{name} {s:.2f} s" for name, s in self.times)


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
