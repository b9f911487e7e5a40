"""Tasks shared by the monitor flow and the retrain subflow.

Each task wraps one driftwatch library call. Tasks that read files or talk to MLflow get the
retries from ``orchestration.retries``/``retry_delay_seconds`` via ``with_retries``.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftwatch.config import Settings, load_settings
from driftwatch.registry import ChampionInfo, Registry


def with_retries(t: Any, settings: Settings) -> Any:
    o = settings.orchestration
    return t.with_options(retries=o.retries, retry_delay_seconds=o.retry_delay_seconds)


@task(name="load settings", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def load_settings_task(config_path: str) -> Settings:
    return load_settings(config_path)


@task(name="read champion", cache_policy=NO_CACHE)
def champion_task(settings: Settings) -> ChampionInfo | None:
    return Registry(settings).champion()


@task(name="load champion model", cache_policy=NO_CACHE)
def load_model_task(settings: Settings, version: str) -> Any:
    return Registry(settings).load_model(version)
