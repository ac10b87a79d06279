"""Event Grid envelopes of ACR events, in the Event Grid schema and in CloudEvents 1.0.

``subject`` is what ACR sets: ``repo:tag`` for a push, ``repo`` for a delete. For a push by
digest (no tag) ACR documents nothing; this registry uses ``repo@digest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.events.model import ATTRIBUTES, CHART_DELETE, CHART_PUSH, DELETE, PUSH, QUARANTINE, UNTAG, RegistryEvent

EVENT_GRID_SCHEMA = "EventGridSchema"
CLOUD_EVENT_SCHEMA = "CloudEventSchemaV1_0"

IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
IMAGE_DELETED = "Microsoft.ContainerRegistry.ImageDeleted"
CHART_PUSHED = "Microsoft.ContainerRegistry.ChartPushed"
CHART_DELETED = "Microsoft.ContainerRegistry.ChartDeleted"
#: ACR sends quarantine only to webhooks and has no Event Grid type for it; the webhook fan-out
#: needs it on the spine, so it travels under this project's own type (not a Microsoft one).
IMAGE_QUARANTINED = "ContainerRegistry.ImageQuarantined"
#: This project's own types for what ACR sends no event about (geo-replication consumes them).
TAG_DELETED = "ContainerRegistry.TagDeleted"
ATTRIBUTES_CHANGED = "ContainerRegistry.AttributesChanged"

EVENT_TYPES: dict[str, str] = {
    PUSH: IMAGE_PUSHED,
    DELETE: IMAGE_DELETED,
    CHART_PUSH: CHART_PUSHED,
    CHART_DELETE: CHART_DELETED,
    QUARANTINE: IMAGE_QUARANTINED,
    UNTAG: TAG_DELETED,
    ATTRIBUTES: ATTRIBUTES_CHANGED,
}
DATA_VERSION = "2.0"
METADATA_VERSION = "1"


def subject(event: RegistryEvent) -> str:
    """The Event Grid subject ACR gives the event (``repo:tag`` or ``repo`` for this project's own types)."""
    t = event.target
    if event.action in (DELETE, CHART_DELETE):
        return t.repository
    if event.action in (UNTAG, ATTRIBUTES):
        return f"{t.repository}:{t.tag}" if t.tag else (f"{t.repository}@{t.digest}" if t.digest else t.repository)
    return f"{t.repository}:{t.tag}" if t.tag else f"{t.repository}@{t.digest}"


def event_data(event: RegistryEvent, location: str) -> dict[str, Any]:
    """The ``data`` of the Event Grid event: the webhook payload plus the registry's location."""
    payload = event.to_stored()
    data = {k: v for k, v in payload.items() if k in ("id", "timestamp", "action")}
    data["location"] = location
    data.update({k: v for k, v in payload.items() if k not in data})
    return data


def to_event_grid(event: RegistryEvent, location: str, topic: str | None) -> dict[str, Any]:
    """The event in the Event Grid schema. ``topic`` is None when publishing to a topic, which sets it."""
    doc: dict[str, Any] = {"id": event.id}
    if topic is not None:
        doc["topic"] = topic
    doc.update({
        "subject": subject(event),
        "eventType": EVENT_TYPES[event.action],
        "eventTime": event.timestamp,
        "dataVersion": DATA_VERSION,
        "metadataVersion": METADATA_VERSION,
        "data": event_data(event, location),
    })
    return doc


def to_cloud_event(event: RegistryEvent, location: str, source: str) -> dict[str, Any]:
    """The event in CloudEvents 1.0 (structured JSON), carrying the same ``data``."""
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": source,
        "type": EVENT_TYPES[event.action],
        "subject": subject(event),
        "time": event.timestamp,
        "datacontenttype": "application/json",
        "data": event_data(event, location),
    }


def to_envelope(event: RegistryEvent, schema: str, location: str, resource_id: str) -> dict[str, Any]:
    """The event in ``schema`` as a delivered event (with ``topic``/``source`` set)."""
    if schema == CLOUD_EVENT_SCHEMA:
        return to_cloud_event(event, location, resource_id)
    return to_event_grid(event, location, resource_id)


def event_type(envelope: Mapping[str, Any]) -> str:
    """The type of a delivered event in either schema."""
    return str(envelope.get("eventType") or envelope.get("type") or "")


def event_of(envelope: Mapping[str, Any]) -> RegistryEvent:
    """The ACR event a delivered Event Grid event or CloudEvent carries."""
    data = envelope.get("data")
    if not isinstance(data, Mapping):
        raise ValueError("the event has no data object")
    return RegistryEvent.from_payload(data)
