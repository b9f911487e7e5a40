"""The parent flow of a config with ``models:``: one monitor run per model, concurrently.

Each model's check is the ordinary monitor flow (:func:`monitor_flow`, with ``model=``), run as
a child flow run from a task that Prefect's thread-pool task runner executes (at most
``orchestration.max_parallel_models`` at once). The child runs its steps inline, each step's
time in its log (``step_tasks=False``): a task run per step is three state writes to the
Prefect API, and on its default sqlite store twenty children's writes collide (README,
"Several models"). A model whose run fails or is slow holds its own
thread only: the others run and finish, its failure is its own Failed run (whose failure hook
sends ``driftwatch.monitor.failed`` naming that model), and the parent run ends Failed with a
message naming the models that failed, having waited for all of them.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingResult
from prefect.states import Completed, Failed

from driftwatch.config import model_names
from driftwatch.monitor.fleet import ModelRun, tick_message
from driftwatch.orchestration.monitor_flow import monitor_flow


@task(name="list models", cache_policy=NO_CACHE)
def list_models_task(config_path: str) -> list[str]:
    """The models config.yaml declares (each run validates its own settings in full)."""
    return model_names(config_path) or []


@task(name="monitor model", cache_policy=NO_CACHE, task_run_name="monitor {model}")
def monitor_model_task(config_path: str, model: str) -> ModelRun:
    """One model's monitor flow as a child run named after it; its end, never its exception."""
    started = time.perf_counter()
    state = monitor_flow.with_options(flow_run_name=f"monitor {model}")(
        config_path=config_path, model=model, step_tasks=False, return_state=True
    )
    seconds = round(time.perf_counter() - started, 3)
    run_id = state.state_details.flow_run_id
    result = None
    if state.is_completed():
        try:
            result = state.result(raise_on_failure=False)
        except MissingResult:  # the state came back from the API, without its data
            result = recorded_result(config_path, model, str(run_id) if run_id else None)
    return ModelRun(
        model,
        state.name,
        state.message or "",
        str(run_id) if run_id else None,
        result if isinstance(result, dict) else None,
        seconds,
    )


def recorded_result(config_path: str, model: str, run_id: str | None) -> dict[str, Any] | None:
    """The result a completed child run recorded in its state dir. Needed because Prefect can
    hand back a Completed state without its data: when its answer to the run's final state
    change is lost and the client's retry is refused as a duplicate, the state is the API's
    copy (seen under load on the temporary local API), and the model would count as failed."""
    from driftwatch.alerts.notify import stored_result
    from driftwatch.config import load_settings

    found = stored_result(load_settings(config_path, model=model), run_id)
    return found.to_dict() if found is not None else None


def ended(models: list[str], futures: Any) -> list[ModelRun]:
    """Every model's end, waiting for all: a model's task that itself failed (Prefect's API
    refusing its child run under load, say) is that model's failure, never the tick's."""
    runs = []
    for model, future in zip(models, futures, strict=True):
        future.wait()
        state = future.state
        if state.is_completed():
            runs.append(future.result())
        else:
            runs.append(ModelRun(model, state.name, state.message or "its task ended unfinished"))
    return runs


def tick_state(runs: list[ModelRun]) -> Any:
    """Completed when every model's run completed, else Failed naming the models that did not
    (as a batch with a bad file is: the good models are done, the run flags the bad one)."""
    data = [r.to_dict() for r in runs]
    if all(r.ok for r in runs):
        return Completed(message=tick_message(runs), data=data)
    return Failed(message=tick_message(runs), data=data)


@flow(name="driftwatch-monitor-models", validate_parameters=True)
def monitor_models_flow(config_path: str = "config.yaml") -> Any:
    """Check every model of the config, each in its own child run, concurrently (the task
    runner is set from ``orchestration.max_parallel_models`` by :func:`models_flow_for`)."""
    models = list_models_task(config_path)
    started = monitor_model_task.map(unmapped(config_path), models)
    return tick_state(ended(models, started))


def models_flow_for(max_parallel: int) -> Any:
    """The parent flow with a thread pool of ``max_parallel`` workers."""
    from prefect.task_runners import ThreadPoolTaskRunner

    return monitor_models_flow.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=max_parallel)
    )
