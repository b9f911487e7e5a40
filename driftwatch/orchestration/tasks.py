"""Tasks shared by the monitor flow and the retrain subflow.

Each task wraps one driftwatch library call. Tasks that read files or talk to MLflow get the
retries from ``orchestration.retries``/``retry_delay_seconds`` (doubling) via ``with_retries``.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftwatch.config import Settings, load_settings
from driftwatch.store.registry import ChampionInfo, Registry


def with_retries(t: Any, settings: Settings) -> Any:
    """Retries with exponential backoff (d, 2d, 4d, ...): a server that is restarting gets
    time to come back, a blip costs only the first delay."""
    o = settings.orchestration
    delays = [o.retry_delay_seconds * 2**i for i in range(o.retries)]
    return t.with_options(retries=o.retries, retry_delay_seconds=delays or 0)


@task(name="load settings", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def load_settings_task(config_path: str) -> Settings:
    return load_settings(config_path)


@task(name="read champion", cache_policy=NO_CACHE)
def champion_task(settings: Settings) -> ChampionInfo | None:
    return Registry(settings).champion()


@task(name="load champion model", cache_policy=NO_CACHE)
def load_model_task(settings: Settings, version: str) -> Any:
    return Registry(settings).load_model(version)
