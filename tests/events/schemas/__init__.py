"""JSON schemas of ACR's event payloads and envelopes, and validators for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

_HERE = Path(__file__).parent
_SCHEMAS = {p.name: json.loads(p.read_text()) for p in _HERE.glob("*.json")}
_REGISTRY: Registry = Registry().with_resources(  # type: ignore[call-arg]
    (name, Resource.from_contents(doc)) for name, doc in _SCHEMAS.items()
)


def _validate(name: str, instance: Any) -> None:
    Draft202012Validator(_SCHEMAS[name], registry=_REGISTRY).validate(instance)


def validate_payload(doc: Any) -> None:
    """Raise ``ValidationError`` unless ``doc`` is a webhook payload as ACR documents it."""
    _validate("acr-webhook-payloads.json", doc)


def validate_event_grid(doc: Any) -> None:
    """Raise unless ``doc`` is an ACR event in the Event Grid schema."""
    _validate("eventgrid-event.json", doc)


def validate_cloud_event(doc: Any) -> None:
    """Raise unless ``doc`` is an ACR event as a CloudEvent."""
    _validate("cloudevent.json", doc)
