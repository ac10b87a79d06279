"""The webhook service: fan-out, delivery attempts, ping, dead letters and re-delivery.

The Event Grid-triggered ``webhook_fanout`` function only enqueues: for each enabled webhook whose
actions and scope match the event it stores a delivery row and sends one queue message, and
raises if it cannot, so Event Grid retries the event. The queue-triggered ``webhook_delivery``
function makes one attempt per message (:mod:`shared.webhooks.delivery`), so each (event,
webhook) pair has its own durable schedule: one slow or dead endpoint delays nobody else and
nothing waits in memory. A redelivered event finds its rows and enqueues nothing new.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from shared.events.envelope import event_of
from shared.events.model import timestamp_now
from shared.kernel.container import Container
from shared.settings import Settings
from shared.storage.interfaces import Storage
from shared.webhooks.deliveries import DEAD, QUEUED, DeliveryQueue, DeliveryStore, Message
from shared.webhooks.delivery import DeliveryWorker
from shared.webhooks.errors import WebhookUnknown
from shared.webhooks.outbound import Delivery, WebhookSender
from shared.webhooks.store import WebhookStore

log = logging.getLogger("registry.webhooks")


class WebhookService:
    """Webhook definitions, the fan-out, delivery attempts, ping and dead letters."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.settings = settings
        self.store = WebhookStore(storage.webhooks)
        self.deliveries = DeliveryStore(storage.events)
        self.queue = DeliveryQueue(storage.deliveries)
        self.sender = WebhookSender(settings)
        self.worker = DeliveryWorker(settings, self.store, self.deliveries, self.queue, self.sender)

    async def handle_event(self, envelope: Mapping[str, Any]) -> int:
        """Enqueue the first attempt of each matching webhook's delivery of one Event Grid event
        (either schema); returns how many were enqueued. Raises when storage fails."""
        event = event_of(envelope)
        enqueued = 0
        for webhook in await self.store.all():
            if not webhook.matches(event):
                continue
            row = await self.deliveries.create(webhook.name, event)
            if row is None:  # fanned out before: enqueue again only if that was cut short
                row = await self.deliveries.get(webhook.name, event.id)
                if row is None or row.queued or row.status != QUEUED:
                    continue
            await self.queue.send(Message(webhook.name, event.id, row.seq, row.attempt))
            await self.deliveries.update(row, force=True, queued=True)
            enqueued += 1
        return enqueued

    async def deliver(self, message: str) -> str:
        """Make the attempt one queue message asks for (see :meth:`DeliveryWorker.handle`)."""
        return await self.worker.handle(message)

    async def poisoned(self, message: str) -> None:
        """A message the delivery function failed on repeatedly: dead-letter its delivery, visibly."""
        try:
            parsed = Message.parse(message)
        except (ValueError, KeyError, TypeError):
            log.error("dropping a malformed poison message: %r", message[:200])
            return
        row = await self.deliveries.get(parsed.webhook, parsed.event)
        if row is None or row.status in (DEAD, "delivered") or parsed.seq < row.seq:
            return
        await self.deliveries.update(row, force=True, status=DEAD,
                                     last_error="the delivery function failed on this message repeatedly; see the logs")

    async def dead_letters(self, name: str) -> list[dict[str, Any]]:
        """The dead-lettered deliveries of webhook ``name``."""
        await self.store.get(name)
        return [row.dead_letter() for row in await self.deliveries.dead(name)]

    async def redeliver(self, name: str, event_id: str | None = None) -> list[str]:
        """Re-deliver one dead letter of webhook ``name`` (or all of them) from attempt 1; the event ids."""
        await self.store.get(name)
        if event_id is None:
            rows = await self.deliveries.dead(name)
        else:
            row = await self.deliveries.get(name, event_id)
            if row is None or row.status != DEAD:
                raise WebhookUnknown("no dead letter of this event",
                                    detail={"webhook": name, "eventId": event_id})
            rows = [row]
        for row in rows:
            # A message numbered past the row's is accepted even before the row says so.
            await self.queue.send(Message(name, row.event_id, row.seq + 1, 1))
            await self.deliveries.update(row, status=QUEUED, seq=row.seq + 1, attempt=1, queued=True)
        return [row.event_id for row in rows]

    async def delete(self, name: str) -> None:
        """Delete a webhook, its delivery log and its deliveries (queued messages are then dropped)."""
        await self.store.delete(name)
        await self.deliveries.delete_all(name)

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


async def fan_out_event(container: Container, envelope: Mapping[str, Any]) -> int:
    """The plain function behind the ``webhook_fanout`` Event Grid trigger: one event."""
    return await (await container.get(WebhookService)).handle_event(envelope)


async def deliver_webhook(container: Container, message: str) -> str:
    """The plain function behind the ``webhook_delivery`` queue trigger: one attempt."""
    return await (await container.get(WebhookService)).deliver(message)


async def dead_letter_poisoned(container: Container, message: str) -> None:
    """The plain function behind the ``webhook_delivery_poison`` queue trigger."""
    await (await container.get(WebhookService)).poisoned(message)
