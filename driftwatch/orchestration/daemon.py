"""``driftwatch daemon``: the embedded scheduler, no Prefect server needed.

An APScheduler 3.11 ``BlockingScheduler`` runs one monitor flow per tick (``max_instances=1``,
``coalesce=True``, a misfire grace time). Every tick re-reads config.yaml; a bad edit is logged
and the last good settings are used, so a typo never stops monitoring. Only one daemon works on a
state dir at a time: a second one waits as a hot standby on a kernel lock (released even on
``kill -9``). After each tick the configured alert targets hear of incidents that opened or
ended (:mod:`driftwatch.alerts.notify`). On SIGTERM/SIGINT the daemon lets the current run
finish within ``orchestration.shutdown_grace_seconds``, else abandons it (its files stay claimed
in the ledger and are taken again at the next start) and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from driftwatch.config import (
    Settings,
    deployment_settings,
    load_models,
    model_names,
    resolve_config_path,
)
from driftwatch.errors import ConfigError
from driftwatch.files import atomic_write_bytes
from driftwatch.store import lock

log = logging.getLogger("driftwatch.orchestration.daemon")


class Daemon:
    def __init__(
        self,
        config_path: str | Path,
        interval_seconds: float | None = None,
        max_ticks: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.verbose = verbose
        self.config_path = Path(config_path).resolve()
        self.interval_seconds = interval_seconds
        self.max_ticks = max_ticks
        # A bad config: refuse to start. With models: every model's settings are checked.
        self.settings: Settings = deployment_settings(self.config_path)
        self.models: dict[str, Settings] = load_models(self.config_path)
        self.many = model_names(self.config_path) is not None
        self.ticks = 0
        self.running = threading.Event()
        self.stopping = threading.Event()
        self.scheduler: Any = None

    # -- configuration ---------------------------------------------------------------------
    def _last_good_path(self) -> Path:
        return self.settings.paths.state / "daemon" / "config.last-good.yaml"

    def reload(self) -> Path:
        """The config to run this tick with: the file if it passes load_settings' full check
        (estimator, params, schedule, YAML limits), else the last good settings."""
        try:
            settings = deployment_settings(self.config_path)
            models = load_models(self.config_path)
            many = model_names(self.config_path) is not None
        except ConfigError as exc:
            log.error("config reload failed, keeping the last good settings: %s", exc)
            return self._last_good_path()
        self.settings, self.models, self.many = settings, models, many
        self._keep(settings)
        if self.scheduler is not None and self.interval_seconds is None:
            self._maybe_reschedule(settings.orchestration.schedule)
        return self.config_path

    def _keep(self, settings: Settings) -> None:
        """Only settings that passed the full check are kept as the last good config."""
        document = settings.model_dump(mode="json")
        if self.many:  # every model in full (its paths made absolute), the schedule on top
            document = {
                "paths": {"state": document["paths"]["state"]},
                "orchestration": document["orchestration"],
                "models": [
                    {
                        "name": name,
                        **{
                            k: v
                            for k, v in s.model_dump(mode="json").items()
                            if k != "orchestration"
                        },
                    }
                    for name, s in self.models.items()
                ],
            }
        # Atomic: a crash mid-write must not leave a torn "last good" config to fall back on.
        atomic_write_bytes(
            self._last_good_path(), yaml.safe_dump(document, sort_keys=False).encode()
        )

    def _trigger(self, cron: str | None = None) -> Any:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.interval_seconds:
            return IntervalTrigger(seconds=self.interval_seconds, timezone=UTC)
        return CronTrigger.from_crontab(cron or self.settings.orchestration.schedule, timezone=UTC)

    def _maybe_reschedule(self, cron: str) -> None:
        job = self.scheduler.get_job("monitor")
        if job is not None and str(job.trigger) != str(self._trigger(cron)):
            log.info("schedule changed to %r", cron)
            job.reschedule(self._trigger(cron))

    # -- one tick --------------------------------------------------------------------------
    def tick(self) -> None:
        if self.stopping.is_set():
            return
        self.running.set()
        started = time.time()
        self.ticks += 1
        try:
            config = self.reload()
            if self.many:
                self._tick_models(config, started)
                return
            from driftwatch.orchestration.runner import run_once

            state, result = run_once(str(config), verbose=self.verbose)
            self._alert(state, result)
            took = time.time() - started
            if result is not None:
                log.info(
                    "tick %d: %s (%d rows, champion v%s) in %.1f s",
                    self.ticks,
                    state.message,
                    result["rows"],
                    result["champion_version"] or "-",
                    took,
                )
            else:
                log.error(
                    "tick %d: run %s: %s (files will be retried)",
                    self.ticks,
                    state.name,
                    state.message,
                )
        except Exception as exc:  # the daemon outlives any one run: log and wait for the next tick
            for settings in self.models.values() if self.many else [self.settings]:
                self._alert(None, None, f"{type(exc).__name__}: {exc}", settings)
            log.error(
                "tick %d failed: %s: %s (files will be retried)",
                self.ticks,
                type(exc).__name__,
                exc,
            )
        finally:
            self.running.clear()
            if self.max_ticks and self.ticks >= self.max_ticks:
                self.stop("max ticks reached")

    def _tick_models(self, config: Path, started: float) -> None:
        """A config with ``models:``: one parent run over all of them; each model is logged
        and alerted on alone (its own incidents, its own failure)."""
        from driftwatch.orchestration.runner import run_models

        state, runs = run_models(str(config), verbose=self.verbose)
        for run in runs:
            settings = self.models.get(run.model, self.settings)
            failure = None if run.ok else (run.state, run.message, run.run_id)
            self._alert(None, run.result, settings=settings, failure=failure)
            if run.ok and run.result is not None:
                log.info(
                    "tick %d: %s: %s (%d rows, champion v%s)",
                    self.ticks,
                    run.model,
                    run.message,
                    run.result["rows"],
                    run.result["champion_version"] or "-",
                )
            else:
                log.error(
                    "tick %d: %s: run %s: %s (its files will be retried)",
                    self.ticks,
                    run.model,
                    run.state,
                    run.message,
                )
        took = time.time() - started
        if runs:
            log.info("tick %d: %s in %.1f s", self.ticks, state.message, took)
        else:  # the parent failed before any model ran
            log.error("tick %d: run %s: %s", self.ticks, state.name, state.message)

    def _alert(
        self,
        state: Any,
        result: dict[str, Any] | None,
        error: str = "",
        settings: Settings | None = None,
        failure: tuple[str, str, str | None] | None = None,
    ) -> None:
        """Server-less notifications of this tick (``alerts.targets``): one message when an
        incident opens, one when it ends. Telling people never fails the tick. ``settings``:
        the model's (a config with ``models:``); ``failure``: its run's (state, message, id)."""
        s = settings or self.settings
        if not s.alerts.targets:
            return
        try:
            from driftwatch.alerts.events import judged_kinds
            from driftwatch.alerts.notify import events_of_run, notify, stored_result
            from driftwatch.monitor.result import MonitorResult

            if result is not None:
                res = MonitorResult.from_dict(result)
                events = events_of_run(s, res)
            elif failure is not None:
                res = stored_result(s, failure[2])
                events = events_of_run(s, res, (failure[0], failure[1] or "no message", failure[2]))
            else:
                run_id = None
                if state is not None and state.state_details.flow_run_id:
                    run_id = str(state.state_details.flow_run_id)
                res = stored_result(s, run_id)
                name = state.name if state is not None else "Crashed"
                why = error or (state.message if state is not None else "") or "no message"
                events = events_of_run(s, res, (name, why, run_id))
            judged = judged_kinds(res, s.quality.trigger) if res is not None else set()
            notify(s, events, judged=judged)
        except Exception as exc:
            log.error("alerts: could not notify: %s: %s", type(exc).__name__, exc)

    # -- life cycle ------------------------------------------------------------------------
    def stop(self, why: str) -> None:
        if not self.stopping.is_set():
            log.info("stopping: %s", why)
        self.stopping.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def run(self) -> int:
        from apscheduler.schedulers.blocking import BlockingScheduler

        def on_signal(signum: int, _frame: Any) -> None:
            self.stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        daemon_lock = self.settings.paths.state / "locks" / "daemon.lock"
        with lock.waiting(daemon_lock, self.stopping, on_wait=self._standby):
            if self.stopping.is_set():
                return 0
            self._keep(self.settings)  # edited into a bad one before the first tick: this runs
            log.info(
                "driftwatch daemon (pid %d) on %s: %s",
                os.getpid(),
                self.settings.paths.landing,
                f"every {self.interval_seconds} s"
                if self.interval_seconds
                else self.settings.orchestration.schedule,
            )
            self.scheduler = BlockingScheduler(timezone=UTC)
            self.scheduler.add_job(
                self.tick,
                self._trigger(),
                id="monitor",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(self.settings.orchestration.misfire_grace_seconds),
                next_run_time=datetime.now(UTC),  # catch up on pending files at start
            )
            self.scheduler.start()  # blocks until stop()
            return self._drain()

    def _standby(self, holder: str) -> None:
        log.info("another daemon holds the state dir (pid %s); waiting as standby", holder or "?")

    def _drain(self) -> int:
        grace = self.settings.orchestration.shutdown_grace_seconds
        deadline = time.time() + grace
        while self.running.is_set() and time.time() < deadline:
            time.sleep(0.1)
        if self.running.is_set():
            log.warning(
                "abandoning the current run after %.0f s; its files stay claimed in the ledger"
                " and are taken again at the next start",
                grace,
            )
            logging.shutdown()
            os._exit(0)  # the run's thread cannot be interrupted; the ledger makes this safe
        log.info("stopped after %d tick(s)", self.ticks)
        return 0


def run_daemon(
    config: str | None, interval: float | None, max_ticks: int | None, verbose: bool = False
) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not verbose:  # APScheduler's "Running job" / "executed successfully" at every tick
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    path = resolve_config_path(config)
    return Daemon(path, interval, max_ticks, verbose).run()
