"""``driftwatch alerts install``: the automations that turn driftwatch's events into
notifications on a Prefect server, sent through a Prefect notification block.

What is created (README, "Alerts"): one reactive automation per event people act on (drift,
quality, data incident, promotion, rollback, failed run) and one proactive automation that fires
when no monitor run completed for ``alerts.silent_hours``. Each is matched to this config's
model (resource ``driftwatch.model.<name>``) and named after it, so installing twice updates
the same automations instead of adding copies.

The block: with ``$<alerts.webhook_env>`` set, a Custom Webhook block named ``alerts.block``
is written with that URL kept in the block's secret fields (never in config.yaml, never
printed); without it, ``alerts.block`` must name an existing notification block
(``<type-slug>/<name>``, e.g. ``slack-webhook/ops``), made in the UI or with Prefect's CLI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from driftwatch.alerts import events as ev
from driftwatch.config import Settings
from driftwatch.errors import DriftwatchError
from driftwatch.orchestration import prefect_env

# What each reactive automation is about: (event, short title).
REACTIVE = (
    (ev.DRIFT, "drift detected"),
    (ev.QUALITY, "quality degraded"),
    (ev.DATA, "data incident"),
    (ev.PROMOTED, "model promoted"),
    (ev.ROLLED_BACK, "model rolled back"),
    (ev.FAILED, "monitor failed"),
)
BODY = (
    "{{ event.payload.summary }}\n"
    "event: {{ event.event }} on {{ event.resource.id }} at {{ event.occurred }}\n"
    "payload: {{ event.payload | tojson }}"
)
WEBHOOK_JSON = {"subject": "{{subject}}", "body": "{{body}}", "source": "driftwatch via Prefect"}


@dataclass(frozen=True)
class Planned:
    """One automation to install: its name, a line for --dry-run, and the Prefect spec."""

    name: str
    describe: str
    trigger: Any
    subject: str
    body: str


def planned(settings: Settings) -> list[Planned]:
    """The automations for this config's model (built from Prefect's own trigger models)."""
    from prefect.events.schemas.automations import EventTrigger, Posture

    model = settings.model.name
    match = {"prefect.resource.id": f"{ev.PREFIX}.model.{model}"}
    out = [
        Planned(
            f"driftwatch {model}: {title}",
            f"on {event}",
            EventTrigger(expect={event}, match=match, posture=Posture.Reactive, threshold=1),
            f"driftwatch {model}: {title}",
            BODY,
        )
        for event, title in REACTIVE
    ]
    hours = settings.alerts.silent_hours
    out.append(
        Planned(
            f"driftwatch {model}: monitor silent",
            f"no {ev.COMPLETED} within {hours:g} h",
            EventTrigger(
                expect={ev.COMPLETED},
                match=match,
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(hours=hours),
            ),
            f"driftwatch {model}: monitor silent",
            f"No driftwatch monitor run of {model} completed in the last {hours:g} hours:"
            " check the daemon or the deployment.",
        )
    )
    return out


def _block_slug(settings: Settings) -> tuple[str, str]:
    slug, _, name = settings.alerts.block.rpartition("/")
    return slug or "custom-webhook", name


def _block_id(settings: Settings, dry_run: bool) -> tuple[UUID | None, str]:
    """The notification block's id (None on a dry run that would create it), and what was done."""
    from prefect.blocks.core import Block
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    slug, name = _block_slug(settings)
    env = settings.alerts.webhook_env
    url = os.environ.get(env, "")
    if url and slug == "custom-webhook":
        if dry_run:
            return None, f"would write block custom-webhook/{name} (URL from ${env})"
        block = CustomWebhookNotificationBlock(
            name=f"driftwatch {settings.model.name}",
            url="{{webhook_url}}",
            json_data=WEBHOOK_JSON,
            secrets={"webhook_url": url},
        )
        return block.save(
            name, overwrite=True
        ), f"block custom-webhook/{name} written (URL from ${env})"
    try:
        block = Block.load(f"{slug}/{name}")
    except ValueError as exc:
        raise DriftwatchError(
            f"alerts.block: no notification block {slug}/{name} on the server, and ${env} is"
            f" not set to make one ({exc}); set ${env} to a webhook URL, or create the block"
            " (Slack, e-mail...) in the Prefect UI and name it in alerts.block as <type>/<name>"
        ) from None
    return block._block_document_id, f"using existing block {slug}/{name}"


def install(settings: Settings, dry_run: bool = False) -> list[str]:
    """Create or update the automations; returns one line per thing done (or to be done)."""
    url = prefect_env.api_url()
    if not url:
        if dry_run:
            lines = ["(no PREFECT_API_URL: showing what would be installed)"]
            lines += [
                f"would create automation {p.name!r}: {p.describe}" for p in planned(settings)
            ]
            return lines
        raise DriftwatchError(
            "driftwatch alerts install needs the Prefect server to install automations on, and"
            " PREFECT_API_URL is not set (e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api)"
        )
    from driftwatch.orchestration.runner import prefect_reachable

    why = prefect_reachable(url)
    if why is not None:
        raise DriftwatchError(f"Prefect server at {url} is unreachable ({why}): nothing installed")
    prefect_env.configure()
    from prefect.client.orchestration import get_client
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore

    block_id, block_line = _block_id(settings, dry_run)
    lines = [block_line]
    with get_client(sync_client=True) as client:
        for p in planned(settings):
            existing = client.read_automations_by_name(p.name)
            verb = "update" if existing else "create"
            if dry_run:
                lines.append(f"would {verb} automation {p.name!r}: {p.describe}")
                continue
            assert block_id is not None
            spec = AutomationCore(
                name=p.name,
                description=f"installed by driftwatch alerts install: {p.describe}",
                enabled=True,
                trigger=p.trigger,
                actions=[
                    SendNotification(block_document_id=block_id, subject=p.subject, body=p.body)
                ],
            )
            if existing:
                client.update_automation(existing[0].id, spec)
                for extra in existing[1:]:  # copies made by hand or by an older version
                    client.delete_automation(extra.id)
            else:
                client.create_automation(spec)
            lines.append(f"{verb}d automation {p.name!r}: {p.describe}")
    return lines
