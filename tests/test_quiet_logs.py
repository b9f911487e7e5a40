"""Quiet logs (issue 16): a 4-tick daemon log was 194 lines, 66 of them httpx request lines and
40 "Finished in state Completed()"; only 7 were driftwatch's own."""

from __future__ import annotations

import logging

import pytest

from driftwatch.orchestration import prefect_env


@pytest.fixture
def restored():
    names = ("httpx", "httpcore", "prefect.flow_runs", "prefect.task_runs")
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).filters)) for n in names}
    yield
    for name, (level, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.filters[:] = filters


def kept(logger: str, message: str) -> bool:
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, message, None, None)
    log = logging.getLogger(logger)
    return log.getEffectiveLevel() <= logging.INFO and all(f.filter(record) for f in log.filters)


def test_plumbing_lines_are_dropped_and_driftwatch_lines_kept(restored) -> None:
    import prefect  # noqa: F401  (its logging setup runs first, as in a real run)

    prefect_env.quiet_logs(verbose=False)
    prefect_env.quiet_logs(verbose=False)  # every daemon tick calls it: one filter, not two
    assert logging.getLogger("httpx").level == logging.WARNING  # its request lines are INFO
    for name in ("prefect.flow_runs", "prefect.task_runs"):  # driftwatch's lines go through
        logging.getLogger(name).setLevel(logging.INFO)
    assert not kept("prefect.task_runs", "Finished in state Completed()")
    assert not kept("prefect.flow_runs", "Beginning flow run 'x' for flow 'driftwatch-monitor'")
    assert kept("prefect.task_runs", "DATASET DRIFT: 3/14 columns drifted")
    assert kept("prefect.flow_runs", "outcome: retrained-promoted (24.9 s)")
    filters = logging.getLogger("prefect.task_runs").filters
    assert sum(type(f).__name__ == "_NoChatter" for f in filters) == 1


def test_verbose_keeps_everything(restored) -> None:
    logging.getLogger("httpx").setLevel(logging.NOTSET)
    prefect_env.quiet_logs(verbose=True)
    assert logging.getLogger("httpx").level == logging.NOTSET
