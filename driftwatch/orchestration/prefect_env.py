"""Environment defaults for Prefect, set before ``import prefect`` (FACTS.md: no internet here,
and a first ephemeral start can exceed Prefect's 20 s start-up timeout)."""

from __future__ import annotations

import logging
import os
import re

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


# Prefect's own lines about each task and flow run: 40 of 194 lines of a 4-tick daemon log.
CHATTER = re.compile(
    r"^(Finished in state |Beginning (subflow |flow )?run|Created (task|subflow|flow) run|Executing "
    r"|Submitted task run|View at )"
)


class _NoChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not CHATTER.match(record.getMessage())


def quiet_logs(verbose: bool = False) -> None:
    """driftwatch's own lines, not the plumbing's: HTTP client request lines (httpx, 66 of those
    194 lines, csrf-token 422s among them) at WARNING, and Prefect's run-state lines dropped,
    unless ``verbose``. driftwatch's lines go through Prefect's run loggers, which therefore keep
    their level. Call after ``import prefect`` (its logging setup replaces loggers' filters)."""
    if verbose:
        return
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoChatter) for f in logger.filters):
            logger.addFilter(_NoChatter())
