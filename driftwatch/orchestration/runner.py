"""Running the monitor flow from a plain process (CLI, demo, daemon): the one place that
imports the flows, so the library stays importable without Prefect."""

from __future__ import annotations

import logging
import urllib.request
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from driftwatch.errors import DriftwatchError
from driftwatch.orchestration import prefect_env

log = logging.getLogger("driftwatch.orchestration.runner")


class PrefectUnreachable(DriftwatchError):
    """PREFECT_API_URL names a server that does not answer, and the config says to fail."""


def prefect_reachable(url: str, timeout: float = 3.0) -> str | None:
    """None when the API answers its health check, else why not."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as r:
            return None if r.status == 200 else f"HTTP {r.status}"
    except OSError as exc:
        return str(getattr(exc, "reason", exc))


def _prefect_context(config_path: str) -> AbstractContextManager[Any]:
    url = prefect_env.api_url()
    if not url:
        return nullcontext()
    why = prefect_reachable(url)
    if why is None:
        return nullcontext()
    from driftwatch.config import deployment_settings

    mode = deployment_settings(config_path).orchestration.prefect_unreachable
    message = f"Prefect server at {url} is unreachable ({why})"
    if mode == "fail":
        raise PrefectUnreachable(
            f"{message}; orchestration.prefect_unreachable is 'fail': no file was taken,"
            " the next run retries"
        )
    log.warning(
        "%s; running on a temporary local Prefect API instead"
        " (orchestration.prefect_unreachable: ephemeral): this run will not show in its UI",
        message,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(restore_defaults={PREFECT_API_URL})


def run_once(
    config: str | None, batch: str | None = None, verbose: bool = False, model: str | None = None
) -> tuple[Any, dict[str, Any] | None]:
    """One monitor flow run; returns its final Prefect state and the result (None if it failed).
    ``verbose``: Prefect's run-state lines and the HTTP client's request lines too. ``model``:
    which one of a config with ``models:`` (:func:`run_models` checks them all)."""
    prefect_env.configure()
    from driftwatch.config import resolve_config_path

    config_path = str(resolve_config_path(config))
    with _prefect_context(config_path):
        from driftwatch.orchestration.monitor_flow import monitor_flow

        prefect_env.quiet_logs(verbose)

        state = monitor_flow(config_path=config_path, batch=batch, model=model, return_state=True)
        result = None
        if state.is_completed():
            result = state.result(raise_on_failure=False)
    return state, result


def run_models(config: str | None, verbose: bool = False) -> tuple[Any, list[Any]]:
    """One tick over every model of a config with ``models:``: the parent flow run's final
    state and each model's :class:`~driftwatch.monitor.fleet.ModelRun` (empty when the parent
    failed before any model ran: a config error, say)."""
    prefect_env.configure()
    from driftwatch.config import deployment_settings, resolve_config_path
    from driftwatch.monitor.fleet import ModelRun

    config_path = str(resolve_config_path(config))
    workers = deployment_settings(config_path).orchestration.max_parallel_models
    with _prefect_context(config_path):
        from driftwatch.orchestration.models_flow import models_flow_for

        prefect_env.quiet_logs(verbose)
        state = models_flow_for(workers)(config_path=config_path, return_state=True)
        data = state.result(raise_on_failure=False)
    runs = [ModelRun.from_dict(d) for d in data] if isinstance(data, list) else []
    return state, runs
