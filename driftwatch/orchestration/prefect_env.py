"""Environment defaults for Prefect, set before ``import prefect`` (FACTS.md: no internet here,
and a first ephemeral start can exceed Prefect's 20 s start-up timeout)."""

from __future__ import annotations

import os

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_CLI_COLORS": "false",
    # Results of cached tasks (the reference profile) must be persisted to be reused.
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}


def configure() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)


def api_url() -> str | None:
    return os.environ.get("PREFECT_API_URL") or None
