"""One attempt of one webhook delivery: what the queue-triggered ``webhook_delivery`` function does.

A message names a delivery (webhook, event) and its attempt. The consumer claims the delivery's
row (a conditional update), POSTs, logs the call for ``listEvents``, and then, through the
:class:`~shared.events.retry.RetryPolicy`, marks it delivered, enqueues the next attempt as a new
message whose visibility timeout is the backoff delay, or dead-letters it. Duplicates (a message
delivered twice by the queue, an event fanned out twice, a stale retry) are dropped by their
``seq`` and status. A copy that finds the delivery claimed by another consumer re-enqueues itself
for when that claim expires, so a consumer that dies mid-attempt delays its delivery but never
loses it. See ``docs/webhooks.md`` for the duplicate sources that remain.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.events.retry import Outcome, RetryPolicy
from shared.settings import Settings
from shared.webhooks.deliveries import DEAD, DELIVERED, QUEUED, DeliveryQueue, DeliveryRow, DeliveryStore, Message
from shared.webhooks.model import ENABLED
from shared.webhooks.outbound import Delivery, WebhookSender
from shared.webhooks.settings import WebhookSettings
from shared.webhooks.store import WebhookStore

log = logging.getLogger("registry.webhooks")
_CLAIM_MARGIN = 30.0  # seconds a claim outlives the call's timeout (logging, scheduling)
_RACES = 3


@dataclass
class _Queued:
    """Scheduler and dead-letter sink of the :class:`RetryPolicy`, writing ``fields`` (the outcome) too."""

    deliveries: DeliveryStore
    queue: DeliveryQueue
    row: DeliveryRow
    fields: dict[str, Any]

    async def schedule(self, job: Message, attempt: int, delay: float) -> None:
        """Enqueue attempt ``attempt`` (the message first: a row never points at a message not sent)."""
        following = Message(job.webhook, job.event, job.seq + 1, attempt)
        await self.queue.send(following, delay)
        await self.deliveries.update(self.row, status=QUEUED, seq=following.seq, attempt=attempt,
                                     queued=True, **self.fields)

    async def dead_letter(self, job: Message, attempt: int, outcome: Outcome) -> None:
        """Keep the delivery as a dead letter (listed and re-deliverable)."""
        log.warning("webhook %s: dead-lettering event %s after %d attempt(s): %s", job.webhook, job.event,
                    attempt, outcome.reason)
        await self.deliveries.update(self.row, status=DEAD, **self.fields)


class DeliveryWorker:
    """Makes delivery attempts from queue messages."""

    def __init__(self, settings: Settings, store: WebhookStore, deliveries: DeliveryStore, queue: DeliveryQueue,
                 sender: WebhookSender) -> None:
        self.settings = settings
        self.store = store
        self.deliveries = deliveries
        self.queue = queue
        self.sender = sender
        config = settings.group(WebhookSettings)
        self.backoff = config.backoff
        self.lease = config.timeout_seconds + _CLAIM_MARGIN

    async def handle(self, text: str) -> str:
        """Process one message; returns what happened (for logs and tests).

        ``delivered``, ``retrying``, ``dead``: an attempt was made. ``duplicate``, ``stale``,
        ``unknown``, ``invalid``: the message was dropped without a call. ``busy``: another
        consumer holds the delivery; the message was re-enqueued for when its claim expires.
        Raises only when storage fails (the trigger then retries the message).
        """
        try:
            message = Message.parse(text)
        except (ValueError, KeyError, TypeError):
            log.error("dropping a malformed delivery message: %r", text[:200])
            return "invalid"
        for _ in range(_RACES):
            row = await self.deliveries.get(message.webhook, message.event)
            verdict = self._verdict(row, message)
            if verdict:
                return await self._drop(message, verdict, row)
            assert row is not None
            claimed = await self.deliveries.claim(row, message, self.lease)
            if claimed is not None:
                return await self._attempt(message, claimed)
        return "busy"  # lost every race: the winners own the delivery

    def _verdict(self, row: DeliveryRow | None, message: Message) -> str:
        if row is None:
            return "unknown"  # the webhook (and its deliveries) were deleted
        if message.seq < row.seq:
            return "stale"
        if row.status == DELIVERED or (row.status == DEAD and message.seq == row.seq):
            return "duplicate"
        if row.claimed(datetime.now(UTC)):
            return "busy"
        return ""

    async def _drop(self, message: Message, verdict: str, row: DeliveryRow | None) -> str:
        if verdict == "busy" and row is not None and row.claimed_until is not None:
            # Someone is attempting it, or died doing so: look again once the claim has expired.
            wait = (row.claimed_until - datetime.now(UTC)).total_seconds() + 1
            await self.queue.send(message, max(wait, 1))
        log.info("webhook %s: %s message %d for event %s dropped", message.webhook, verdict, message.seq,
                 message.event)
        return verdict

    async def _attempt(self, message: Message, row: DeliveryRow) -> str:
        try:
            webhook = await self.store.find(message.webhook)
            if webhook is None:
                await self.deliveries.delete_all(message.webhook)
                return "unknown"
            status: int | None = None
            if webhook.status != ENABLED:
                outcome = Outcome(False, "the webhook is disabled", retry=False)
            else:
                call = await self.sender.post(webhook.service_uri, row.payload.encode(),
                                              {"Content-Type": "application/json", **webhook.custom_headers})
                await self.store.log(webhook.name, message.event, json.loads(row.payload).get("action", ""), call)
                status = _status(call)
                if call.ok:
                    # Unconditionally: delivered is final, even if a claim expired meanwhile.
                    await self.deliveries.update(row, force=True, status=DELIVERED, last_error="",
                                                 last_status=status)
                    return "delivered"
                outcome = Outcome(False, _reason(call), retry=not call.permanent)
            log.info("webhook %s: attempt %d for event %s failed: %s", message.webhook, message.attempt,
                     message.event, outcome.reason)
            sink = _Queued(self.deliveries, self.queue, row, {"last_error": outcome.reason, "last_status": status})
            return await RetryPolicy(self.backoff, sink, sink).after(message, message.attempt, outcome)
        except BaseException:
            # Let the message's redelivery (or a copy) take over at once rather than after the claim.
            try:
                await self.deliveries.update(row, claimed_until=datetime.now(UTC))
            except Exception:
                log.warning("could not release the claim on %s/%s", message.webhook, message.event, exc_info=True)
            raise


def _status(call: Delivery) -> int | None:
    return None if call.response is None else int(call.response["statusCode"])


def _reason(call: Delivery) -> str:
    if call.response is not None:
        return f"HTTP {call.response['statusCode']} {call.response.get('reasonPhrase', '')}".strip()
    return call.error
