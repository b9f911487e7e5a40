"""Incidents across ticks: which lasting conditions are open, and what to tell people now.

One message when an incident opens, none while it lasts, one "resolved" message when a later
run shows it gone; one-off events (a promotion) are always told. Plain data in, plain data out:
the notifier (:mod:`driftwatch.alerts.notify`) keeps the state in a JSON file under the state
dir and does the sending.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from driftwatch.alerts.events import COMPLETED, DriftwatchEvent

# What a later run must have done to call each incident over: judged that kind (a verdict on
# drift, on quality, rows read for data: ``judged``), or merely completed (a failure ends with
# the next good run).
NEEDS_ROWS = ("drift", "quality", "data")


@dataclass(frozen=True)
class Message:
    """One notification: the event it tells of, ``opened``/``resolved``/``event``, the text."""

    event: str
    model: str
    status: str
    incident: str | None
    summary: str
    payload: dict[str, Any]

    def body(self) -> dict[str, Any]:
        """The JSON a webhook receives."""
        return {
            "event": self.event,
            "model": self.model,
            "status": self.status,
            "incident": self.incident,
            "summary": self.summary,
            "payload": self.payload,
        }

    @property
    def title(self) -> str:
        word = {"opened": "", "resolved": "resolved: ", "event": ""}[self.status]
        return f"driftwatch {self.model}: {word}{self.event}"


def step(
    open_incidents: dict[str, dict[str, Any]],
    events: list[DriftwatchEvent],
    judged: Collection[str],
    now: str,
) -> tuple[dict[str, dict[str, Any]], list[Message]]:
    """The incidents open after this run's ``events``, and the messages to send for them.

    ``open_incidents``: kind -> {"event", "since", "summary", "notified"}. An incident whose
    opening message could not be delivered stays ``notified: False`` and is offered again at the
    next run, so a receiver that was down still hears of it once."""
    state = {k: dict(v) for k, v in open_incidents.items()}
    messages: list[Message] = []
    seen: set[str] = set()
    completed = any(e.event == COMPLETED for e in events)
    for e in events:
        if e.event == COMPLETED:
            continue
        kind = e.incident
        if kind is None:
            messages.append(Message(e.event, e.model, "event", None, e.summary, e.payload))
            continue
        seen.add(kind)
        if kind not in state:
            state[kind] = {"event": e.event, "since": now, "summary": e.summary, "notified": False}
        if not state[kind]["notified"]:
            messages.append(Message(e.event, e.model, "opened", kind, e.summary, e.payload))
    model = events[0].model if events else ""
    for kind in sorted(state):
        if kind in seen:
            continue
        over = completed and (kind in judged or kind not in NEEDS_ROWS)
        if over:
            was = state.pop(kind)
            if was.get("notified"):  # nobody heard it open: no need to hear it end
                messages.append(
                    Message(
                        was["event"],
                        model,
                        "resolved",
                        kind,
                        f"resolved: {was['summary']} (open since {was['since']})",
                        {"since": was["since"], "resolved": now},
                    )
                )
    return state, messages
