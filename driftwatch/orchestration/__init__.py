"""Prefect flows, the runner, ``serve`` and the APScheduler daemon: the only layer that talks to
Prefect. Prefect's environment defaults are set before anything here imports it."""

from driftwatch.orchestration import prefect_env

prefect_env.configure()
