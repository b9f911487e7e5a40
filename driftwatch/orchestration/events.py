"""Sending driftwatch's events to Prefect (``emit_event``): the payloads are built in
:mod:`driftwatch.alerts.events`; this module only addresses them (the model as the resource, the
flow run as a related resource) and hands them to Prefect's events worker.

Events go to whatever API the process talks to: a real server (where automations act on them),
or the ephemeral API of a server-less run (kept in its database, nobody acts on them).
"""

from __future__ import annotations

import logging
from typing import Any

from driftwatch.alerts.events import DriftwatchEvent, failed_event, run_events
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.result import MonitorResult

log = logging.getLogger("driftwatch.orchestration.events")


def resource(e: DriftwatchEvent) -> dict[str, str]:
    return {
        "prefect.resource.id": e.resource_id,
        "prefect.resource.name": e.model,
        "prefect.resource.role": "model",
    }


def related(e: DriftwatchEvent) -> list[dict[str, str]]:
    if not e.related_run:
        return []
    return [
        {
            "prefect.resource.id": f"prefect.flow-run.{e.related_run}",
            "prefect.resource.role": "flow-run",
        }
    ]


def emit(events: list[DriftwatchEvent]) -> list[str]:
    """Emit each event; returns the names sent. Telling people must never break a run: a
    failure to emit is logged and the run goes on."""
    from prefect.events import emit_event

    sent = []
    for e in events:
        try:
            emit_event(
                event=e.event,
                resource=resource(e),
                related=related(e),
                payload={**e.payload, "summary": e.summary},
            )
            sent.append(e.event)
        except Exception as exc:  # a notification never fails the run
            log.warning("could not emit %s: %s: %s", e.event, type(exc).__name__, exc)
    return sent


def emit_run_events(plan: Plan, result: MonitorResult) -> list[str]:
    """The events of one completed monitor run (drift, quality, data, retrain, completed)."""
    if not plan.settings.alerts.events:
        return []
    s = plan.settings
    try:
        events = run_events(result, s.model.name, s.quality)
    except Exception as exc:  # telling people never fails a run that has finished
        log.warning("could not build the run's events: %s: %s", type(exc).__name__, exc)
        return []
    return emit(events)


def on_monitor_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_failure`` hook of the monitor flow: ``driftwatch.monitor.failed``."""
    from driftwatch.config import load_settings

    model = "unknown"
    try:
        params = flow_run.parameters
        settings = load_settings(
            params.get("config_path", "config.yaml"), model=params.get("model")
        )
        if not settings.alerts.events:
            return
        model = settings.model.name
    except Exception as exc:  # a bad config is the likely failure itself
        model = flow_run.parameters.get("model") or model
        log.debug("failure hook: config unreadable (%s); model named 'unknown'", exc)
    emit([failed_event(model, str(flow_run.id), state.name, state.message or "")])


def tell_rollback(settings: Any, frm: str, to: str, reference: str | None) -> None:
    """``driftwatch rollback``: ``driftwatch.model.rolled-back`` to the Prefect server (only
    when PREFECT_API_URL names one: no temporary API is started for one event) and to the
    server-less targets. Neither can fail the rollback, which has already happened."""
    from driftwatch.alerts.events import rolled_back_event
    from driftwatch.orchestration import prefect_env

    event = rolled_back_event(settings.model.name, frm, to, reference)
    url = prefect_env.api_url()
    if settings.alerts.events and url:
        from driftwatch.orchestration.runner import prefect_reachable

        why = prefect_reachable(url)
        if why is None:
            prefect_env.configure()
            emit([event])
        else:
            log.warning(
                "%s not sent: the Prefect server at %s is unreachable (%s)", event.event, url, why
            )
    if settings.alerts.targets:
        from driftwatch.alerts.notify import notify

        try:
            notify(settings, [event], judged=())
        except Exception as exc:  # the alias has moved; telling people is best effort
            log.error("alerts: could not notify: %s: %s", type(exc).__name__, exc)
