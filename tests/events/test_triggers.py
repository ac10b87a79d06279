"""The production event path, driven in-process through the real indexed trigger functions with
real ``func`` objects and settings from the environment (the test's own Azurite prefix): the Event
Grid-triggered fan-out, the queue-triggered delivery and poison functions, the outbox timer.
Expected payloads are written out by hand (ACR's documented shape) with digests from hashlib."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import httpx
import pytest
from azure.functions.timer import TimerRequest

from scripts.azurite import Azurite
from shared.composition import create_app
from shared.settings import Settings
from shared.storage import layout
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from shared.webhooks.model import Webhook
from shared.webhooks.store import WebhookStore
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, test_settings
from tests.events.push import OCI_CONFIG, OCI_MANIFEST, push_blob
from tests.indexed import indexed_functions
from tests.receiver import Receiver

TOPIC = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry"
EVENT_ID = "7d1a8a5c-3c2e-4f8e-9b9a-0f3c2a1b4c5d"
DIGEST = "sha256:" + hashlib.sha256(b"a manifest").hexdigest()
PUSH_DATA = {  # ACR's Event Grid data for a push (ACR-REFERENCE.md, section 1), written out
    "id": EVENT_ID, "timestamp": "2026-01-02T03:04:05.123456Z", "action": "push", "location": "westus",
    "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1153, "digest": DIGEST,
               "length": 1153, "repository": "samples/nginx", "tag": "latest"},
    "request": {"id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "host": "myregistry.azurecr.io", "method": "PUT",
                "useragent": "docker/24.0"},
}
WEBHOOK_BODY = {k: v for k, v in PUSH_DATA.items() if k != "location"}


@pytest.fixture
def settings(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's settings, also in the environment the trigger functions read."""
    settings = test_settings(azurite, REGISTRY_WEBHOOK_ALLOW_PRIVATE="true", REGISTRY_WEBHOOK_RETRY_MS="0")
    for name, value in {
        "REGISTRY_STORAGE_CONNECTION_STRING": settings.storage.connection_string,
        "REGISTRY_STORAGE_PREFIX": settings.storage.prefix, "REGISTRY_WEBHOOK_ALLOW_PRIVATE": "true",
        "REGISTRY_WEBHOOK_RETRY_MS": "0", "REGISTRY_ADMIN_ENABLED": "true", "REGISTRY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "REGISTRY_TOKEN_SIGNING_KEY": settings.auth.token_signing_key, "REGISTRY_OUTBOX_GRACE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("REGISTRY_EVENTGRID_ENDPOINT", "REGISTRY_EVENTS_FUNCTIONS_URL", "REGISTRY_EVENTS_SUBSCRIBER_URLS"):
        monkeypatch.delenv(name, raising=False)
    return settings


@pytest.fixture
async def storage(settings: Settings) -> AsyncIterator[StorageClients]:
    """The test's storage, created."""
    clients = StorageClients(StorageAccount.from_settings(settings))
    await clients.ensure()
    yield clients
    await clients.close()


async def _call(name: str, argument: Any) -> None:
    await indexed_functions()[name].get_user_function()(argument)


async def _messages(storage: StorageClients) -> list[Any]:
    """Receive every visible delivery message, delete it, and return its body decoded by hand."""
    raw = storage.queue_service.get_queue_client(storage.deliveries.queue_name)
    try:
        messages = [m async for m in raw.receive_messages(max_messages=32)]
        for message in messages:
            await raw.delete_message(message)
    finally:
        await raw.close()
    return [base64.b64decode(str(m.content)) for m in messages]


def _grid_event(data: dict[str, Any]) -> func.EventGridEvent:
    return func.EventGridEvent(id=str(data["id"]), data=data, topic=TOPIC, subject="samples/nginx:latest",
                               event_type="Microsoft.ContainerRegistry.ImagePushed",
                               event_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), data_version="2.0")


async def test_event_grid_trigger_enqueues_and_queue_trigger_posts_the_acr_payload(
    settings: Settings, storage: StorageClients, receiver: Receiver
) -> None:
    await WebhookStore(storage.webhooks).create(Webhook("nginxhook", f"{receiver.url}/hook", ("push",),
                                                        {"X-Key": "k"}, scope="samples/nginx:*"))
    await _call("webhook_fanout", _grid_event(PUSH_DATA))
    assert receiver.received == []
    [body] = await _messages(storage)
    assert json.loads(body) == {"webhook": "nginxhook", "event": EVENT_ID, "seq": 1, "attempt": 1}

    await _call("webhook_fanout", _grid_event(PUSH_DATA))  # Event Grid redelivers the event
    assert await _messages(storage) == []

    await _call("webhook_delivery", func.QueueMessage(id="m1", body=body))
    [call] = receiver.at("/hook")
    assert json.loads(call.body) == WEBHOOK_BODY
    assert (call.headers["Content-Type"], call.headers["X-Key"]) == ("application/json", "k")
    row = await storage.events.get_entity(layout.webhook_delivery_partition("nginxhook"), EVENT_ID)
    assert row["status"] == "delivered"
    await _call("webhook_delivery", func.QueueMessage(id="m1", body=body))  # the queue redelivers
    assert len(receiver.at("/hook")) == 1


async def test_queue_trigger_enqueues_the_next_attempt_and_the_poison_trigger_dead_letters(
    settings: Settings, storage: StorageClients, receiver: Receiver
) -> None:
    receiver.statuses["/hook"] = 500
    await WebhookStore(storage.webhooks).create(Webhook("failing1", f"{receiver.url}/hook", ("push",)))
    await _call("webhook_fanout", _grid_event(PUSH_DATA))
    [first] = await _messages(storage)
    await _call("webhook_delivery", func.QueueMessage(id="m1", body=first))
    [second] = await _messages(storage)
    assert json.loads(second) == {"webhook": "failing1", "event": EVENT_ID, "seq": 2, "attempt": 2}
    # The host gave up on this message (five failed dequeues) and moved it to the poison queue.
    await _call("webhook_delivery_poison", func.QueueMessage(id="m2", body=second))
    row = await storage.events.get_entity(layout.webhook_delivery_partition("failing1"), EVENT_ID)
    assert row["status"] == "dead"
    assert len(receiver.at("/hook")) == 1


async def test_outbox_timer_republishes_to_the_fan_out_and_the_queue(
    settings: Settings, storage: StorageClients, receiver: Receiver
) -> None:
    receiver.statuses["/api/events"] = 400  # the topic refuses: the push's event stays in the outbox
    pushing = settings.with_env(REGISTRY_EVENTGRID_ENDPOINT=f"{receiver.url}/api/events", REGISTRY_EVENTGRID_KEY="k")
    await WebhookStore(storage.webhooks).create(Webhook("outboxhook", f"{receiver.url}/hook", ("push",)))
    app = create_app(pushing)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r.test",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        config = await push_blob(http, "kept/app", b'{"architecture":"amd64","os":"linux"}')
        layer = await push_blob(http, "kept/app", b"layer")
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": OCI_CONFIG, **config},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}]}).encode()
        put = await http.put("/v2/kept/app/manifests/v1", content=manifest,
                             headers={"Content-Type": OCI_MANIFEST, "User-Agent": "trigger-test/1"})
        assert put.status_code == 201
        await app.state.registry.outbox.settle()
    await app.state.registry.close()
    outbox = [r async for r in storage.repos.list_entities() if str(r["RowKey"]).startswith(layout.OUTBOX)]
    assert len(outbox) == 1

    # The timer's settings come from the environment: no topic, so the local Event Grid delivers.
    await _call("republish_outbox", TimerRequest(past_due=False))
    assert [r async for r in storage.repos.list_entities() if str(r["RowKey"]).startswith(layout.OUTBOX)] == []
    [body] = await _messages(storage)
    await _call("webhook_delivery", func.QueueMessage(id="m1", body=body))
    [call] = receiver.at("/hook")
    payload = json.loads(call.body)
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert payload["action"] == "push"
    assert payload["target"] == {"mediaType": OCI_MANIFEST, "size": len(manifest), "digest": digest,
                                 "length": len(manifest), "repository": "kept/app", "tag": "v1"}
    assert (payload["request"]["method"], payload["request"]["host"], payload["request"]["useragent"]) == (
        "PUT", "r.test", "trigger-test/1")
    assert json.loads(body)["event"] == payload["id"]


async def test_purge_timer_runs_with_the_environment_settings(settings: Settings, storage: StorageClients) -> None:
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r.test",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        started = await http.post("/v2/purge/app/blobs/uploads/")
        assert started.status_code == 202
    await app.state.registry.close()
    await _call("purge_stale_uploads", TimerRequest(past_due=True))
    assert len([r async for r in storage.uploads.list_entities()]) == 1  # younger than the TTL: kept
