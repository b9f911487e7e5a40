"""``driftwatch serve``: the monitor as a Prefect deployment on the configured schedule (a
config with ``models:``: one deployment of the parent flow, which checks every model).

Scheduling needs a real Prefect server (the ephemeral API cannot schedule), so this refuses
without ``PREFECT_API_URL``. ``global_limit=1`` keeps runs of the deployment from overlapping.
"""

from __future__ import annotations

import os
import signal

from driftwatch.config import deployment_settings, model_names, resolve_config_path
from driftwatch.errors import DriftwatchError
from driftwatch.orchestration import prefect_env


def serve(config: str | None, interval: float | None = None) -> int:
    path = resolve_config_path(config).resolve()
    settings = deployment_settings(path)
    names = model_names(path)
    if not prefect_env.api_url():
        raise DriftwatchError(
            "driftwatch serve needs a Prefect server to schedule runs, and PREFECT_API_URL is not"
            " set. Start one (`prefect server start --host 127.0.0.1 --port 4200`) and"
            " `export PREFECT_API_URL=http://127.0.0.1:4200/api`, or use `driftwatch daemon`,"
            " which schedules by itself with no server."
        )
    prefect_env.configure()
    from driftwatch.orchestration.monitor_flow import monitor_flow

    # Prefect's runner stops cleanly on SIGTERM but not on Ctrl-C (measured with 3.8.8: runs
    # go on being submitted); make SIGINT mean the same as SIGTERM.
    signal.signal(signal.SIGINT, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    schedule = {"interval": interval} if interval else {"cron": settings.orchestration.schedule}
    if names is not None:  # models: one deployment whose run checks them all (a child run each)
        from driftwatch.orchestration.models_flow import models_flow_for

        models_flow_for(settings.orchestration.max_parallel_models).serve(
            name="models-monitor",
            parameters={"config_path": str(path)},
            global_limit=1,
            description=f"driftwatch monitor of {len(names)} models: {', '.join(names)}",
            tags=["driftwatch", *names],
            **schedule,
        )
        return 0
    monitor_flow.serve(
        name=f"{settings.model.name}-monitor",
        parameters={"config_path": str(path)},
        global_limit=1,
        description=f"driftwatch monitor of {settings.model.name} on {settings.paths.landing}",
        tags=["driftwatch", settings.model.name],
        **schedule,
    )
    return 0
