"""The local Event Grid: subscriptions, handshakes, retries with backoff and dead-lettering."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from shared.composition import SUBSCRIPTIONS
from shared.events.local import LocalEventGrid
from shared.events.model import RequestInfo, delete_event, push_event
from shared.settings import Settings
from shared.storage import layout
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from tests.events.schemas import validate_cloud_event, validate_event_grid
from tests.receiver import Receiver

DIGEST = "sha256:" + "12" * 32
MEDIA = "application/vnd.oci.image.manifest.v1+json"
REQUEST = RequestInfo("3f2a94c6-0d1e-4b1a-9c55-6b0ad0b7f0e1", "r.test", "PUT", "ua")
DELETE_REQUEST = dataclasses.replace(REQUEST, method="DELETE")


@pytest.fixture
async def clients(settings: Settings) -> AsyncIterator[StorageClients]:
    """Storage clients with the container created (dead letters go there)."""
    storage = StorageClients(StorageAccount.from_settings(settings))
    await storage.ensure()
    yield storage
    await storage.close()


def _grid(settings: Settings, storage: StorageClients, handlers: Mapping[str, Any] | None = None,
          **env: str) -> LocalEventGrid:
    return LocalEventGrid(settings.with_env(REGISTRY_EVENTS_RETRY_MS="10", REGISTRY_EVENTS_MAX_ATTEMPTS="3", **env),
                          storage, handlers or {}, SUBSCRIPTIONS)


async def _dead_letter(storage: StorageClients, subscription: str, event_id: str) -> dict[str, Any]:
    blob = storage.container.get_blob_client(layout.dead_letter_blob(subscription, event_id))
    loaded: dict[str, Any] = json.loads(await (await blob.download_blob()).readall())
    return loaded


async def test_in_process_delivery_calls_the_subscribed_function(settings: Settings, clients: StorageClients) -> None:
    delivered: list[Mapping[str, Any]] = []

    async def fan_out(envelope: Mapping[str, Any]) -> None:
        delivered.append(envelope)

    grid = _grid(settings, clients, {"webhook_fanout": fan_out})
    event = push_event("a/b", DIGEST, MEDIA, 10, "v1", REQUEST)
    await grid.publish([event])
    await grid.close()
    [envelope] = delivered
    validate_event_grid(envelope)
    assert envelope["topic"] == settings.registry.resource_id
    assert envelope["data"]["id"] == event.id


async def test_external_subscriber_is_validated_then_sent_events(
    settings: Settings, clients: StorageClients, receiver: Receiver
) -> None:
    grid = _grid(settings, clients, {"webhook_fanout": _ignore}, REGISTRY_EVENTS_SUBSCRIBER_URLS=f"{receiver.url}/sub")
    first = push_event("a/b", DIGEST, MEDIA, 10, "v1", REQUEST)
    second = delete_event("a/b", DIGEST, MEDIA, DELETE_REQUEST)
    await grid.publish([first])
    await grid.publish([second])
    await grid.close()
    calls = receiver.at("/sub")
    assert [c.headers["aeg-event-type"] for c in calls] == ["SubscriptionValidation", "Notification", "Notification"]
    assert calls[0].json()[0]["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent"
    for call, event in zip(calls[1:], (first, second), strict=True):
        [envelope] = call.json()
        validate_event_grid(envelope)
        assert envelope["id"] == event.id


async def test_cloud_event_subscriber_gets_the_options_handshake(
    settings: Settings, clients: StorageClients, receiver: Receiver
) -> None:
    grid = _grid(settings, clients, {"webhook_fanout": _ignore}, REGISTRY_EVENTS_SCHEMA="CloudEventSchemaV1_0",
                 REGISTRY_EVENTS_SUBSCRIBER_URLS=f"{receiver.url}/ce")
    await grid.publish([push_event("a/b", DIGEST, MEDIA, 10, "v1", REQUEST)])
    await grid.close()
    [options] = receiver.at("/ce", "OPTIONS")
    assert options.headers["WebHook-Request-Origin"] == "eventgrid.azure.net"
    [post] = receiver.at("/ce")
    assert post.headers["Content-Type"].startswith("application/cloudevents+json")
    validate_cloud_event(post.json())


async def test_functions_host_endpoint_is_used_under_func_start(
    settings: Settings, clients: StorageClients, receiver: Receiver
) -> None:
    grid = _grid(settings, clients, REGISTRY_EVENTS_FUNCTIONS_URL=receiver.url)
    await grid.publish([push_event("a/b", DIGEST, MEDIA, 10, "v1", REQUEST)])
    await grid.close()
    [call] = receiver.at("/runtime/webhooks/eventgrid")
    assert call.query == {"functionName": "webhook_fanout"}
    assert call.headers["aeg-event-type"] == "Notification"
    validate_event_grid(call.json()[0])


async def test_failing_subscriber_is_retried_then_dead_lettered(
    settings: Settings, clients: StorageClients, receiver: Receiver
) -> None:
    receiver.failures["/sub"] = 10
    grid = _grid(settings, clients, {"webhook_fanout": _ignore}, REGISTRY_EVENTS_SUBSCRIBER_URLS=f"{receiver.url}/sub")
    event = push_event("a/b", DIGEST, MEDIA, 10, "v1", REQUEST)
    await grid.publish([event])
    await grid.close()
    assert len([c for c in receiver.at("/sub") if c.headers["aeg-event-type"] == "Notification"]) == 3
    letter = await _dead_letter(clients, "external-0", event.id)
    assert letter["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert letter["deliveryAttempts"] == 3
    assert letter["lastHttpStatusCode"] == 500
    assert letter["data"]["id"] == event.id


async def test_bad_request_is_dead_lettered_without_retry(
    settings: Settings, clients: StorageClients, receiver: Receiver
) -> None:
    receiver.statuses["/sub"] = 400
    grid = _grid(settings, clients, {"webhook_fanout": _ignore}, REGISTRY_EVENTS_SUBSCRIBER_URLS=f"{receiver.url}/sub")
    event = push_event("a/b", DIGEST, MEDIA, 10, "v1", REQUEST)
    await grid.publish([event])
    await grid.close()
    assert len([c for c in receiver.at("/sub") if c.headers["aeg-event-type"] == "Notification"]) == 1
    assert (await _dead_letter(clients, "external-0", event.id))["deadLetterReason"] == "DeliveryFailed"


async def test_a_failing_function_is_retried_then_dead_lettered(settings: Settings, clients: StorageClients) -> None:
    calls = 0

    async def broken(envelope: Mapping[str, Any]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    grid = _grid(settings, clients, {"webhook_fanout": broken})
    event = delete_event("a/b", DIGEST, MEDIA, DELETE_REQUEST)
    await grid.publish([event])
    await grid.close()
    assert calls == 3
    assert (await _dead_letter(clients, "webhooks", event.id))["deliveryAttempts"] == 3


async def _ignore(envelope: Mapping[str, Any]) -> None:
    return None
