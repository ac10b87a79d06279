"""The webhook fan-out: what the Event Grid-triggered ``webhook_fanout`` function does.

For each event it POSTs ACR's payload to every enabled webhook whose actions and scope match,
each webhook on its own (concurrently, with its own timeout and retries), so a slow or failing
endpoint delays neither pushes nor other webhooks. Every call is logged for ``listEvents``. Each
webhook is a consumer of its own: a redelivered event is not sent again to a webhook that had it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from shared.events.envelope import event_of
from shared.events.idempotency import ProcessedEvents
from shared.events.model import RegistryEvent, timestamp_now
from shared.settings import Settings
from shared.storage.clients import StorageClients
from shared.webhooks.model import Webhook
from shared.webhooks.outbound import Delivery, WebhookSender
from shared.webhooks.store import WebhookStore

log = logging.getLogger("registry.webhooks")
_MAX_DELAY = 60.0


class WebhookService:
    """Webhook definitions, the fan-out, and ping."""

    def __init__(self, storage: StorageClients, settings: Settings) -> None:
        self.settings = settings
        self.store = WebhookStore(storage.webhooks)
        self.processed = ProcessedEvents(storage.events)
        self.sender = WebhookSender(settings)

    async def handle_event(self, envelope: Mapping[str, Any]) -> None:
        """Fan one delivered Event Grid event (either schema) out to the matching webhooks."""
        event = event_of(envelope)
        webhooks = [w for w in await self.store.all() if w.matches(event)]
        await asyncio.gather(*(self._deliver(w, event) for w in webhooks))

    async def _deliver(self, webhook: Webhook, event: RegistryEvent) -> None:
        consumer = f"webhook.{webhook.name}"
        if await self.processed.seen(consumer, event.id):
            return
        body = json.dumps(event.to_payload()).encode()
        headers = {"Content-Type": "application/json", **webhook.custom_headers}
        attempts = self.settings.webhook_max_attempts
        for attempt in range(1, attempts + 1):
            delivery = await self.sender.post(webhook.service_uri, body, headers)
            await self.store.log(webhook.name, event.id, event.action, delivery)
            if delivery.ok:
                break
            log.info("webhook %s: attempt %d for event %s failed: %s", webhook.name, attempt, event.id,
                     delivery.error or (delivery.response or {}).get("statusCode"))
            if attempt < attempts:
                await asyncio.sleep(min(self.settings.webhook_retry_ms / 1000 * 2 ** (attempt - 1), _MAX_DELAY))
        else:
            log.warning("webhook %s: giving up on event %s after %d attempts", webhook.name, event.id, attempts)
        # Recorded after the last attempt either way: a redelivery must not repeat a finished delivery.
        await self.processed.record(consumer, event.id)

    async def ping(self, name: str) -> tuple[str, Delivery]:
        """POST a ping to the webhook once (whatever its status and scope); logged like any delivery."""
        webhook = await self.store.get(name)
        event_id = str(uuid.uuid4())
        body = json.dumps({"id": event_id, "timestamp": timestamp_now(), "action": "ping"}).encode()
        delivery = await self.sender.post(webhook.service_uri, body,
                                          {"Content-Type": "application/json", **webhook.custom_headers})
        await self.store.log(webhook.name, event_id, "ping", delivery)
        return event_id, delivery

    async def close(self) -> None:
        """Close the outbound HTTP session."""
        await self.sender.close()


async def fan_out_event(settings: Settings, envelope: Mapping[str, Any]) -> None:
    """The plain function behind the ``webhook_fanout`` trigger: one event, own storage clients."""
    storage = StorageClients(settings)
    service = WebhookService(storage, settings)
    try:
        await storage.ensure()
        await service.handle_event(envelope)
    finally:
        await service.close()
        await storage.close()
