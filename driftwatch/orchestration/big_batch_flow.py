"""The big-batch check as a Prefect flow on Dask (prefect-dask's ``DaskTaskRunner``).

The flow's task runner comes from config.yaml's ``scale`` section: Prefect's default thread
pool ("local"), a LocalCluster that Prefect starts for the run ("local_cluster"), or an
existing scheduler ("address"). Its one coarse task checks the batch; on a Dask worker it asks
the same cluster to summarise the partitions (``worker_client``), so partitions are Dask tasks,
not Prefect task runs (~0.35 s of Prefect overhead each: FACTS.md), and the flow shows one step.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from driftwatch.orchestration.tasks import load_plan_task


def task_runner_for(scale: Any) -> Any:
    """The flow's task runner for config ``scale``."""
    if scale.runner == "local":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if scale.runner == "address":
        return DaskTaskRunner(address=scale.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": scale.n_workers,
            "threads_per_worker": scale.threads_per_worker,
            "memory_limit": scale.memory_limit,
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",
        },
    )


@task(name="check big batch", cache_policy=NO_CACHE)
def check_big_batch_task(plan: Any, reference: str, batch: str) -> dict[str, Any]:
    from driftwatch.orchestration.dask_cluster import check_with_plan

    scale = plan.settings.scale
    try:
        from distributed import get_worker, worker_client

        get_worker()  # raises ValueError outside a Dask worker
    except (ImportError, ValueError):
        result, notes = check_with_plan(
            plan, reference, batch, scale.model_copy(update={"runner": "local"})
        )
    else:
        with worker_client() as client:
            result, notes = check_with_plan(plan, reference, batch, scale, client=client)
    for note in notes:
        get_run_logger().warning(note)
    return result.to_dict()


@flow(name="driftwatch-big-check", validate_parameters=True)
def big_check_flow(
    config_path: str, batch: str, reference: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """Drift of one big batch (a parquet dataset directory or a big file) against the
    reference (default: config ``paths.reference``), summarised per partition. ``model``:
    which one of a config with ``models:``."""
    plan = load_plan_task(config_path, model)
    ref = reference or str(plan.settings.paths.reference)
    result = check_big_batch_task(plan, ref, batch)
    get_run_logger().info("big batch %s: %s", batch, result["description"])
    return result


def run_big_check(
    config_path: str, batch: str, reference: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """The flow with the task runner of the config's ``scale`` section."""
    from driftwatch.config import load_settings

    scale = load_settings(config_path, model=model).scale
    runner = task_runner_for(scale)
    return big_check_flow.with_options(task_runner=runner)(config_path, batch, reference, model)
