"""The state of each webhook delivery (one row per webhook and event) and its queue of attempts.

A row (``events`` table, partition ``w|<webhook>``, see ``storage.layout``) holds the event's
payload and where its delivery stands: ``queued`` (a message for attempt ``attempt`` is on the
queue), ``sending`` (a consumer claimed it until ``claimed_until``), ``delivered``, or ``dead``
(dead-lettered: listed by the admin API and the CLI, re-deliverable). ``seq`` numbers the messages
of the delivery: each new message (a retry, a re-delivery) carries the next number, so a stale
duplicate of an older message is recognised and dropped. Claims are conditional updates (ETag),
so two copies of one message never both POST.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.events.model import RegistryEvent
from shared.storage import layout
from shared.storage.interfaces import Queue, Table
from shared.storage.queries import get_or_none, partition_rows, typed
from shared.storage.rows import DeliveryStateRow, patch

log = logging.getLogger("registry.webhooks")

QUEUED = "queued"
SENDING = "sending"
DELIVERED = "delivered"
DEAD = "dead"
_MAX_VISIBILITY = 7 * 24 * 3600 - 1  # a queue message becomes visible within 7 days at most
_LOGGED = 2000  # characters of an error kept in a row


@dataclass(frozen=True)
class Message:
    """One queue message: attempt ``attempt`` of ``webhook``'s delivery of event ``event``."""

    webhook: str
    event: str
    seq: int
    attempt: int

    def text(self) -> str:
        """The message body."""
        return json.dumps({"webhook": self.webhook, "event": self.event, "seq": self.seq, "attempt": self.attempt})

    @classmethod
    def parse(cls, text: str) -> Message:
        """The message ``text`` holds; ValueError when it is not one."""
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("a delivery message is a JSON object")
        message = cls(str(doc["webhook"]), str(doc["event"]), int(doc["seq"]), int(doc["attempt"]))
        if message.seq < 1 or message.attempt < 1:
            raise ValueError("seq and attempt start at 1")
        return message


@dataclass(frozen=True)
class DeliveryRow(DeliveryStateRow):
    """A stored delivery, with what the worker and the admin API make of it."""

    @property
    def event(self) -> RegistryEvent:
        """The event being delivered."""
        return RegistryEvent.from_payload(json.loads(self.payload))

    def claimed(self, now: datetime) -> bool:
        """Whether a consumer holds an unexpired claim."""
        return self.status == SENDING and self.claimed_until is not None and self.claimed_until > now

    def dead_letter(self) -> dict[str, Any]:
        """The row as the admin API lists a dead letter."""
        payload = json.loads(self.payload)
        return {"eventId": self.event_id, "action": payload.get("action"), "attempts": self.attempt,
                "lastError": self.last_error or "", "lastStatusCode": self.last_status,
                "deadLetteredAt": self.updated.isoformat() if self.updated else None, "event": payload}


class DeliveryStore:
    """Delivery rows in the ``events`` table."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def create(self, webhook: str, event: RegistryEvent) -> DeliveryRow | None:
        """Store a new delivery of ``event`` (attempt 1, queued); None when one exists already."""
        now = datetime.now(UTC)
        row = DeliveryRow(webhook, event.id, json.dumps(event.to_payload(), separators=(",", ":")), QUEUED,
                          action=event.action, created=now, updated=now)
        try:
            await self.table.create_entity(row.to_entity())
        except ResourceExistsError:
            return None
        return await self.get(webhook, event.id)

    async def get(self, webhook: str, event_id: str) -> DeliveryRow | None:
        """The delivery of ``event_id`` to ``webhook``, if any."""
        return await get_or_none(self.table, layout.webhook_delivery_partition(webhook), event_id, DeliveryRow)

    async def update(self, row: DeliveryRow, force: bool = False, **fields: Any) -> DeliveryRow | None:
        """Change ``fields`` of ``row`` (and nothing else) if nobody changed it since it was read (or,
        ``force``, anyway); the new row, or None if someone had changed it or it is gone."""
        if isinstance(fields.get("last_error"), str):
            fields["last_error"] = fields["last_error"][:_LOGGED]
        entity = patch(row, updated=datetime.now(UTC), **fields)
        condition: dict[str, Any] = {} if force else {"etag": row.etag,
                                                       "match_condition": MatchConditions.IfNotModified}
        try:
            await self.table.update_entity(entity, mode="merge", **condition)
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return await self.get(row.webhook, row.event_id)

    async def claim(self, row: DeliveryRow, message: Message, lease: float) -> DeliveryRow | None:
        """Claim the delivery for ``message``'s attempt until ``lease`` seconds from now (None: lost the race)."""
        return await self.update(row, status=SENDING, seq=message.seq, attempt=message.attempt,
                                 claimed_until=datetime.now(UTC) + timedelta(seconds=lease))

    async def dead(self, webhook: str) -> list[DeliveryRow]:
        """The dead letters of ``webhook``, oldest event first."""
        rows = partition_rows(self.table, layout.webhook_delivery_partition(webhook), where="status eq @dead",
                              parameters={"dead": DEAD})
        return await typed(rows, DeliveryRow)

    async def delete_all(self, webhook: str) -> None:
        """Forget every delivery of ``webhook`` (it was deleted)."""
        rows = partition_rows(self.table, layout.webhook_delivery_partition(webhook), select=["PartitionKey", "RowKey"])
        async for entity in rows:
            await self.table.delete_entity(entity["PartitionKey"], entity["RowKey"])


class DeliveryQueue:
    """The queue of delivery attempts: each message is one attempt, made visible when it is due."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    async def send(self, message: Message, delay: float = 0) -> None:
        """Enqueue ``message``, invisible for ``delay`` seconds (rounded up); it never expires."""
        visibility = min(max(0, int(-(-delay // 1))), _MAX_VISIBILITY)
        await self.queue.send_message(message.text(), visibility_timeout=visibility, time_to_live=-1)
