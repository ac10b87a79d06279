"""Rows of the ``webhooks`` table (definitions and the call log) and of the ``events`` table (the
state of each webhook delivery, what that event consumer has done with each event)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from shared.storage import layout
from shared.storage.rows.base import etag_of, moment, present
from shared.storage.values import int64, read_int


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class WebhookRow:
    """A webhook: where it posts, what it sends there, and which events it takes."""

    name: str
    service_uri: str
    actions: tuple[str, ...]
    custom_headers: Mapping[str, str] = field(default_factory=dict)
    status: str = "enabled"
    scope: str = ""
    updated: datetime | None = None

    def to_entity(self) -> dict[str, Any]:
        """The row as stored (headers as JSON, actions comma-separated)."""
        return {"PartitionKey": layout.WEBHOOKS_PARTITION, "RowKey": self.name, "service_uri": self.service_uri,
                "custom_headers": json.dumps(dict(self.custom_headers)), "status": self.status, "scope": self.scope,
                "actions": ",".join(self.actions), **present(updated=self.updated)}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        return cls(str(entity["RowKey"]), str(entity["service_uri"]), tuple(str(entity["actions"]).split(",")),
                   json.loads(entity.get("custom_headers") or "{}"), str(entity["status"]),
                   str(entity.get("scope", "")), moment(entity, "updated"))


@dataclass(frozen=True)
class WebhookCallRow:
    """One call in a webhook's log (``listEvents``): the request sent and the answer (None when
    there was none, ``error`` then saying why). Keys put the newest call first."""

    webhook: str
    key: str
    id: str
    event_id: str
    action: str
    request: Any
    response: Any
    error: str = ""
    created: datetime | None = None

    def to_entity(self) -> dict[str, Any]:
        """The row as stored (request and response as JSON)."""
        return {"PartitionKey": layout.delivery_partition(self.webhook), "RowKey": self.key, "id": self.id,
                "event_id": self.event_id, "action": self.action, "request": json.dumps(self.request),
                "response": json.dumps(self.response), "error": self.error, **present(created=self.created)}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        return cls(str(entity["PartitionKey"])[len(layout.delivery_partition("")):], str(entity["RowKey"]),
                   str(entity["id"]), str(entity["event_id"]), str(entity["action"]), json.loads(entity["request"]),
                   json.loads(entity["response"]), str(entity.get("error") or ""), moment(entity, "created"))


@dataclass(frozen=True)
class DeliveryStateRow:
    """One webhook's delivery of one event: the payload as sent (JSON text) and where the
    delivery stands (see :mod:`shared.webhooks.deliveries`)."""

    webhook: str
    event_id: str
    payload: str
    status: str
    seq: int = 1
    attempt: int = 1
    queued: bool = False
    action: str | None = None
    claimed_until: datetime | None = None
    last_error: str | None = None
    last_status: int | None = None
    created: datetime | None = None
    updated: datetime | None = None
    etag: str = field(default="", compare=False)

    def to_entity(self) -> dict[str, Any]:
        """The row as stored."""
        return {
            "PartitionKey": layout.webhook_delivery_partition(self.webhook), "RowKey": self.event_id,
            "event": self.payload, "status": self.status, "seq": int64(self.seq), "attempt": int64(self.attempt),
            "queued": self.queued,
            **present(action=self.action, claimed_until=self.claimed_until, last_error=self.last_error,
                      last_status=None if self.last_status is None else int64(self.last_status),
                      created=self.created, updated=self.updated),
        }

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        status = entity.get("last_status")
        return cls(
            webhook=str(entity["PartitionKey"])[len(layout.webhook_delivery_partition("")):],
            event_id=str(entity["RowKey"]), payload=str(entity["event"]), status=str(entity["status"]),
            seq=read_int(entity.get("seq"), 1), attempt=read_int(entity.get("attempt"), 1),
            queued=bool(entity.get("queued")), action=entity.get("action"),
            claimed_until=moment(entity, "claimed_until"), last_error=_text(entity.get("last_error")),
            last_status=None if status is None else read_int(status), created=moment(entity, "created"),
            updated=moment(entity, "updated"), etag=etag_of(entity) or "",
        )
