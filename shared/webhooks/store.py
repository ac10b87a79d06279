"""Webhook definitions and their delivery log in the ``webhooks`` table (see ``storage.layout``)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError

from shared.storage import layout
from shared.storage.interfaces import Table
from shared.storage.queries import get_or_none, partition_rows, typed
from shared.storage.rows import WebhookCallRow, WebhookRow
from shared.webhooks.errors import WebhookUnknown
from shared.webhooks.model import Webhook, validate_name
from shared.webhooks.outbound import Delivery


def _row(webhook: Webhook) -> dict[str, Any]:
    return WebhookRow(webhook.name, webhook.service_uri, webhook.actions, webhook.custom_headers, webhook.status,
                      webhook.scope, datetime.now(UTC)).to_entity()


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(name=row.name, service_uri=row.service_uri, actions=row.actions,
                   custom_headers=dict(row.custom_headers), status=row.status, scope=row.scope)


class WebhookStore:
    """CRUD of webhooks and the log ``listEvents`` reads."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def get(self, name: str) -> Webhook:
        """The webhook ``name``; WEBHOOK_UNKNOWN when there is none."""
        row = await get_or_none(self.table, layout.WEBHOOKS_PARTITION, validate_name(name), WebhookRow)
        if row is None:
            raise WebhookUnknown(detail={"name": name})
        return _webhook(row)

    async def find(self, name: str) -> Webhook | None:
        """The webhook ``name``, or None when there is none."""
        row = await get_or_none(self.table, layout.WEBHOOKS_PARTITION, name, WebhookRow)
        return None if row is None else _webhook(row)

    async def all(self) -> list[Webhook]:
        """Every webhook, by name."""
        return [_webhook(row) for row in await typed(partition_rows(self.table, layout.WEBHOOKS_PARTITION),
                                                     WebhookRow)]

    async def create(self, webhook: Webhook) -> bool:
        """Store a new webhook, or replace one of that name; True when it is new."""
        try:
            await self.table.create_entity(_row(webhook))
        except ResourceExistsError:
            await self.table.upsert_entity(_row(webhook), mode="replace")
            return False
        return True

    async def update(self, webhook: Webhook) -> None:
        """Replace a stored webhook."""
        await self.table.upsert_entity(_row(webhook), mode="replace")

    async def delete(self, name: str) -> None:
        """Delete a webhook and its delivery log; WEBHOOK_UNKNOWN when there is none."""
        await self.get(name)  # delete_entity ignores a missing row; the API answers 404 for it
        await self.table.delete_entity(layout.WEBHOOKS_PARTITION, name)
        async for row in partition_rows(self.table, layout.delivery_partition(name),
                                        select=["PartitionKey", "RowKey"]):
            await self.table.delete_entity(row["PartitionKey"], row["RowKey"])

    async def log(self, name: str, event_id: str, action: str, delivery: Delivery) -> None:
        """Append one call to the webhook's delivery log."""
        delivery_id = str(uuid.uuid4())
        await self.table.create_entity(WebhookCallRow(
            name, layout.delivery_key(int(time.time() * 1000), delivery_id), delivery_id, event_id, action,
            delivery.request, delivery.response, delivery.error, datetime.now(UTC)).to_entity())

    async def deliveries(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest deliveries, newest first, as ``listEvents`` shows them."""
        rows = partition_rows(self.table, layout.delivery_partition(name), results_per_page=limit)
        events: list[dict[str, Any]] = []
        async for entity in rows:
            row = WebhookCallRow.from_entity(entity)
            response = row.response
            if response is None:  # no answer: ACR shows the failure in the response message
                response = {"statusCode": None, "reasonPhrase": row.error, "headers": {}, "content": ""}
            events.append({"id": row.id, "eventId": row.event_id, "action": row.action,
                           "eventRequestMessage": row.request, "eventResponseMessage": response})
            if len(events) >= limit:
                break
        return events
