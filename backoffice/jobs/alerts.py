"""Failure alerts: a Prefect automation that posts to BACKOFFICE_ALERT_WEBHOOK_URL when a run of one
of our deployments fails, crashes or times out.

`ensure_alert_automation` is idempotent (one automation and one Webhook block, found by name and
updated in place); `backoffice deploy` calls it after every deploy, because a fresh Prefect
database gives the deployments new ids. With the URL unset it logs that and removes an earlier
automation, so unsetting the variable turns the alerts off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from uuid import UUID

from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import PrefectClient
from prefect.events.actions import CallWebhook
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.types import SecretDict
from pydantic import SecretStr

from backoffice.settings import Settings

log = logging.getLogger(__name__)

AUTOMATION_NAME = "backoffice: job run failed"
WEBHOOK_BLOCK_NAME = "backoffice-alert-webhook"
# Prefect names state-change events after the state's name: the engine's flow timeout (each job's
# `timeout_seconds`, see backoffice.jobs.timeouts) ends a run in Failed named TimedOut.
ALERT_EVENTS = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
# Rendered by Prefect (Jinja) when the automation fires; `tojson` keeps the message valid JSON.
PAYLOAD_TEMPLATE = """{
  "source": "backoffice-tasks",
  "job": {{ deployment.name | tojson }},
  "flow": {{ flow.name | tojson }},
  "flow_run": {{ flow_run.name | tojson }},
  "flow_run_id": "{{ flow_run.id }}",
  "state": {{ flow_run.state.name | tojson }},
  "message": {{ flow_run.state.message | tojson }},
  "url": {{ flow_run | ui_url | tojson }}
}"""


def alert_automation(deployment_ids: Iterable[UUID], block_document_id: UUID) -> AutomationCore:
    """The automation: any failed, crashed or timed-out run of these deployments → the webhook."""
    trigger = EventTrigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={
            "prefect.resource.role": "deployment",
            "prefect.resource.id": [f"prefect.deployment.{d}" for d in deployment_ids],
        },
        expect=ALERT_EVENTS,
        posture=Posture.Reactive,
        threshold=1,
        within=0,
    )
    return AutomationCore(
        name=AUTOMATION_NAME,
        description="Posts failed, crashed and timed-out runs of the back-office jobs to the alert webhook.",
        enabled=True,
        trigger=trigger,
        actions=[CallWebhook(block_document_id=block_document_id, payload=PAYLOAD_TEMPLATE)],
    )


async def ensure_alert_automation(
    client: PrefectClient, settings: Settings, deployment_ids: Iterable[UUID]
) -> UUID | None:
    """Create or update the alert automation; None (and any old one removed) when no URL is set."""
    existing = await client.read_automations_by_name(AUTOMATION_NAME)
    if not settings.alert_webhook_url:
        log.info("BACKOFFICE_ALERT_WEBHOOK_URL is not set: failed job runs alert nobody")
        for old in existing:
            await client.delete_automation(old.id)
        return None
    webhook = Webhook(
        method="POST",
        url=SecretStr(settings.alert_webhook_url),
        headers=SecretDict({"Content-Type": "application/json"}),
    )
    block_id = await webhook.asave(WEBHOOK_BLOCK_NAME, overwrite=True, client=client)
    wanted = alert_automation(sorted(deployment_ids), block_id)
    if not existing:
        return await client.create_automation(wanted)
    first, *duplicates = existing
    await client.update_automation(first.id, wanted)
    for extra in duplicates:  # two deploys raced; keep one
        await client.delete_automation(extra.id)
    return first.id
