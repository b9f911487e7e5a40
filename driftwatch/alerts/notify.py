"""Server-less notifications: what ``driftwatch daemon`` tells the configured targets after
each tick (``alerts.targets`` in config.yaml), with the incident state kept under the state dir.

Targets are named by environment variable; the URLs they hold are secrets and never reach a log,
the state file or an error message (:func:`redact`). Delivery retries with exponential backoff
(tenacity); a target that stays down is logged and recorded (``driftwatch status``) and never
fails the monitor run. Webhooks are posted with httpx; ``kind: apprise`` targets go through
Apprise (Slack, e-mail, Teams, ... by URL), which Prefect already depends on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftwatch.alerts.events import COMPLETED, DriftwatchEvent, failed_event, run_events
from driftwatch.alerts.incidents import Message, step
from driftwatch.config import AlertTarget, Settings
from driftwatch.files import atomic_write_bytes
from driftwatch.monitor.result import MonitorResult

log = logging.getLogger("driftwatch.alerts")

# httpx logs every request's URL at INFO: a webhook URL is a secret.
for _name in ("httpx", "httpcore"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)


class DeliveryError(Exception):
    """A target refused or could not be reached; the message is already redacted."""


def state_path(settings: Settings) -> Path:
    return settings.paths.state / "alerts" / "incidents.json"


def read_state(settings: Settings) -> dict[str, Any]:
    path = state_path(settings)
    if not path.exists():
        return {"open": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return (
            data if isinstance(data, dict) and isinstance(data.get("open"), dict) else {"open": {}}
        )
    except (OSError, ValueError) as exc:  # a damaged file must not silence the alerts for good
        log.error("%s: unreadable (%s); starting with no open incidents", path, exc)
        return {"open": {}}


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (and the host part of a URL) replaced by ``***``."""
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def target_name(target: AlertTarget) -> str:
    return f"{target.kind} ${target.env}"


def _send_once(target: AlertTarget, url: str, message: Message, timeout: float) -> None:
    if target.kind == "apprise":
        import apprise

        sender = apprise.Apprise()
        for one in url.split():
            if not sender.add(one):
                raise DeliveryError(f"{target_name(target)}: not an Apprise URL Apprise knows")
        if not sender.notify(body=message.summary, title=message.title):
            raise DeliveryError(f"{target_name(target)}: Apprise could not deliver")
        return
    import httpx

    response = httpx.post(url, json=message.body(), timeout=timeout)
    if response.status_code >= 300:
        raise DeliveryError(f"{target_name(target)}: HTTP {response.status_code}")


def deliver(
    target: AlertTarget, url: str, message: Message, retries: int, backoff: float, timeout: float
) -> None:
    """Send with ``retries`` retries, waiting backoff, 2*backoff, 4*backoff... (at most a minute)
    in between. Raises DeliveryError (redacted) when every try failed."""
    from tenacity import Retrying, stop_after_attempt, wait_exponential

    try:
        for attempt in Retrying(
            stop=stop_after_attempt(retries + 1),
            wait=wait_exponential(multiplier=backoff, max=60),
            reraise=True,
        ):
            with attempt:
                _send_once(target, url, message, timeout)
    except DeliveryError:
        raise
    except Exception as exc:
        why = redact(f"{type(exc).__name__}: {exc}", [url, *url.split()])
        raise DeliveryError(f"{target_name(target)}: {why} (after {retries + 1} tries)") from None


def stored_result(settings: Settings, run_id: str | None) -> MonitorResult | None:
    """The result a run recorded before it failed (rejected files), if it got that far."""
    if not run_id:
        return None
    for path in sorted((settings.paths.state / "runs").glob(f"*-{run_id[:8]}.json")):
        try:
            found = MonitorResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("%s: not a readable run result (%s)", path, exc)
            continue
        if found.run_id == run_id:
            return found
    return None


def events_of_run(
    settings: Settings,
    result: MonitorResult | None,
    failed: tuple[str, str, str | None] | None = None,
) -> list[DriftwatchEvent]:
    """The run's events: from its result, or (``failed``: state, message, run id) a failure.

    A run that recorded its result and then failed did so to flag rejected files: its data
    incident says that, so it is not also told as a failed monitor (but it did not complete)."""
    if result is not None:
        events = run_events(result, settings.model.name, settings.quality)
        if failed is not None:
            events = [e for e in events if e.event != COMPLETED]
        return events
    state, message, run_id = failed or ("Failed", "no result", None)
    return [failed_event(settings.model.name, run_id, state, message)]


def notify(
    settings: Settings,
    events: list[DriftwatchEvent],
    judged: Collection[str],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Tell every target what this run changed; returns (and stores) the notifier's state.

    Never raises for a delivery problem: it is logged and kept under ``last_error``."""
    env = os.environ if environ is None else environ
    a = settings.alerts
    state = read_state(settings)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    opened, messages = step(state.get("open", {}), events, judged, now)
    if not a.targets:
        return state
    errors: list[str] = []
    for message in messages:
        delivered = 0
        for target in a.targets:
            url = env.get(target.env, "")
            if not url:
                errors.append(f"{target_name(target)}: the environment variable is not set")
                continue
            try:
                deliver(target, url, message, a.retries, a.backoff_seconds, a.timeout_seconds)
                delivered += 1
            except DeliveryError as exc:
                errors.append(str(exc))
        if delivered:
            state["last_sent"] = {"at": now, "event": message.event, "status": message.status}
            log.info("alert sent (%s %s) to %d target(s)", message.status, message.event, delivered)
            if message.status == "opened" and message.incident in opened:
                opened[message.incident]["notified"] = True
    state["open"] = opened
    if errors:
        state["last_error"] = {"at": now, "errors": sorted(set(errors))}
        state["failures"] = int(state.get("failures", 0)) + 1
        for e in sorted(set(errors)):
            log.error("alert not delivered: %s (the run goes on; see `driftwatch status`)", e)
    try:
        atomic_write_bytes(state_path(settings), json.dumps(state, indent=2).encode())
    except OSError as exc:
        log.error("alert state not saved to %s: %s", state_path(settings), exc)
    return state


def status_lines(settings: Settings) -> list[str]:
    """What ``driftwatch status`` says about alerts: targets, open incidents, the last
    delivery and the last failure to deliver."""
    a = settings.alerts
    state = read_state(settings)
    targets = ", ".join(target_name(t) for t in a.targets) or "none (server-less alerts off)"
    lines = [f"alerts: targets {targets}"]
    missing = [t.env for t in a.targets if not os.environ.get(t.env)]
    if missing:
        lines.append(f"alerts: not set in this environment: {', '.join(missing)}")
    for kind, inc in sorted(state.get("open", {}).items()):
        told = "notified" if inc.get("notified") else "NOT yet notified"
        lines.append(f"alerts: open incident {kind} since {inc.get('since')} ({told})")
    if state.get("last_sent"):
        s = state["last_sent"]
        lines.append(f"alerts: last sent {s['at']}: {s['status']} {s['event']}")
    if state.get("last_error"):
        e = state["last_error"]
        lines.append(f"alerts: last delivery failure {e['at']}: {'; '.join(e['errors'])}")
    return lines
