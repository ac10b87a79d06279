"""Webhook definitions and their delivery log in the ``webhooks`` table (see ``storage.layout``)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.storage import layout
from shared.webhooks.errors import WebhookUnknown
from shared.webhooks.model import Webhook, validate_name
from shared.webhooks.outbound import Delivery


def _row(webhook: Webhook) -> dict[str, Any]:
    return {
        "PartitionKey": layout.WEBHOOKS_PARTITION, "RowKey": webhook.name,
        "service_uri": webhook.service_uri, "custom_headers": json.dumps(dict(webhook.custom_headers)),
        "status": webhook.status, "scope": webhook.scope, "actions": ",".join(webhook.actions),
        "updated": datetime.now(UTC),
    }


def _webhook(row: dict[str, Any]) -> Webhook:
    return Webhook(
        name=row["RowKey"], service_uri=row["service_uri"], actions=tuple(row["actions"].split(",")),
        custom_headers=json.loads(row.get("custom_headers") or "{}"), status=row["status"], scope=row.get("scope", ""),
    )


class WebhookStore:
    """CRUD of webhooks and the log ``listEvents`` reads."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    async def get(self, name: str) -> Webhook:
        """The webhook ``name``; WEBHOOK_UNKNOWN when there is none."""
        try:
            row = await self.table.get_entity(layout.WEBHOOKS_PARTITION, validate_name(name))
        except ResourceNotFoundError:
            raise WebhookUnknown(detail={"name": name}) from None
        return _webhook(dict(row))

    async def find(self, name: str) -> Webhook | None:
        """The webhook ``name``, or None when there is none."""
        try:
            row = await self.table.get_entity(layout.WEBHOOKS_PARTITION, name)
        except ResourceNotFoundError:
            return None
        return _webhook(dict(row))

    async def all(self) -> list[Webhook]:
        """Every webhook, by name."""
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": layout.WEBHOOKS_PARTITION})
        return [_webhook(dict(row)) async for row in rows]

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
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": layout.delivery_partition(name)},
                                         select=["PartitionKey", "RowKey"])
        async for row in rows:
            await self.table.delete_entity(row["PartitionKey"], row["RowKey"])

    async def log(self, name: str, event_id: str, action: str, delivery: Delivery) -> None:
        """Append one call to the webhook's delivery log."""
        delivery_id = str(uuid.uuid4())
        await self.table.create_entity({
            "PartitionKey": layout.delivery_partition(name),
            "RowKey": layout.delivery_key(int(time.time() * 1000), delivery_id),
            "id": delivery_id, "event_id": event_id, "action": action,
            "request": json.dumps(delivery.request), "response": json.dumps(delivery.response),
            "error": delivery.error, "created": datetime.now(UTC),
        })

    async def deliveries(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest deliveries, newest first, as ``listEvents`` shows them."""
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": layout.delivery_partition(name)},
                                         results_per_page=limit)
        events: list[dict[str, Any]] = []
        async for row in rows:
            response = json.loads(row["response"])
            if response is None:  # no answer: ACR shows the failure in the response message
                response = {"statusCode": None, "reasonPhrase": row.get("error", ""), "headers": {}, "content": ""}
            events.append({"id": row["id"], "eventId": row["event_id"], "action": row["action"],
                           "eventRequestMessage": json.loads(row["request"]), "eventResponseMessage": response})
            if len(events) >= limit:
                break
        return events
