"""Running the monitor flow from a plain process (CLI, demo, daemon): the one place that
imports the flows, so the library stays importable without Prefect."""

from __future__ import annotations

from typing import Any

from driftwatch import prefect_env


def run_once(config: str | None, batch: str | None = None) -> tuple[Any, dict[str, Any] | None]:
    """One monitor flow run; returns its final Prefect state and the result (None if it failed)."""
    import os

    prefect_env.configure()
    from flows.monitor import monitor_flow

    config_path = config or os.environ.get("DRIFTWATCH_CONFIG", "config.yaml")
    state = monitor_flow(config_path=str(config_path), batch=batch, return_state=True)
    result = None
    if state.is_completed():
        result = state.result(raise_on_failure=False)
    return state, result
