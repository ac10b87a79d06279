"""The webhook fan-out and delivery: scope and action matching, one queued delivery per webhook,
retries as delayed messages, dead letters, isolation, idempotency."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scripts.azurite import Azurite
from shared.composition import load_settings
from shared.events.envelope import to_event_grid
from shared.events.model import RegistryEvent, RequestInfo, delete_event, push_event
from shared.settings import Settings
from shared.storage import layout
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from shared.webhooks.fanout import WebhookService
from shared.webhooks.model import DISABLED, Webhook, scope_matches
from tests.conftest import unique_prefix
from tests.events.schemas import validate_payload
from tests.receiver import Receiver
from tests.webhooks.queue import drain, peek, queued, take

DIGEST = "sha256:" + "34" * 32
MEDIA = "application/vnd.docker.distribution.manifest.v2+json"
REQUEST_ID = "3f2a94c6-0d1e-4b1a-9c55-6b0ad0b7f0e1"
PUT = RequestInfo(REQUEST_ID, "r.test", "PUT", "ua")
DELETE = dataclasses.replace(PUT, method="DELETE")


@pytest.fixture
def settings(azurite: Azurite) -> Settings:
    """Loopback allowed, immediate retries, a short timeout."""
    return load_settings({
        "REGISTRY_STORAGE_CONNECTION_STRING": azurite.connection_string, "REGISTRY_STORAGE_PREFIX": unique_prefix(),
        "REGISTRY_WEBHOOK_ALLOW_PRIVATE": "true", "REGISTRY_WEBHOOK_RETRY_MS": "0",
        "REGISTRY_WEBHOOK_MAX_ATTEMPTS": "4", "REGISTRY_WEBHOOK_TIMEOUT_SECONDS": "1",
    })


@pytest.fixture
async def storage(settings: Settings) -> AsyncIterator[StorageClients]:
    """The test's storage, created."""
    clients = StorageClients(StorageAccount.from_settings(settings))
    await clients.ensure()
    yield clients
    await clients.close()


@pytest.fixture
async def service(settings: Settings, storage: StorageClients) -> AsyncIterator[WebhookService]:
    """A webhook service over the test's storage."""
    webhooks = WebhookService(storage, settings)
    yield webhooks
    await webhooks.close()


def _envelope(event: RegistryEvent) -> dict[str, Any]:
    return to_event_grid(event, "westus", "/subscriptions/s/resourceGroups/g/providers/x/registries/r")


def _push_payload(event_id: str, timestamp: str) -> dict[str, Any]:
    """ACR's push payload for the event of :data:`PUT` (written out, not produced by the code)."""
    return {"id": event_id, "timestamp": timestamp, "action": "push",
            "target": {"mediaType": MEDIA, "size": 524, "digest": DIGEST, "length": 524,
                       "repository": "apps/web", "tag": "v1"},
            "request": {"id": REQUEST_ID, "host": "r.test", "method": "PUT", "useragent": "ua"}}


@pytest.mark.parametrize(("scope", "repository", "tag", "expected"), [
    ("", "any/repo", "v1", True),
    ("", "any/repo", None, True),
    ("foo:bar", "foo", "bar", True),
    ("foo:bar", "foo", "baz", False),
    ("foo:*", "foo", "anything", True),
    ("foo:*", "foo", None, True),
    ("foo:*", "foobar", "x", False),
    ("foo", "foo", "latest", True),
    ("foo", "foo", "v1", False),
    ("foo:bar", "foo", None, False),
])
def test_scope_semantics_follow_acr(scope: str, repository: str, tag: str | None, expected: bool) -> None:
    assert scope_matches(scope, repository, tag) is expected


async def test_fan_out_only_enqueues_one_delivery_per_matching_webhook(
    settings: Settings, storage: StorageClients, service: WebhookService, receiver: Receiver
) -> None:
    hooks = [
        Webhook("allhooks", f"{receiver.url}/all", ("push", "delete")),
        Webhook("scoped1", f"{receiver.url}/scoped", ("push",), {"X-Key": "k"}, scope="apps/web:*"),
        Webhook("other1", f"{receiver.url}/other", ("push", "delete"), scope="other:*"),
        Webhook("disabled1", f"{receiver.url}/disabled", ("push",), status=DISABLED),
        Webhook("deletes1", f"{receiver.url}/deletes", ("delete",)),
    ]
    for hook in hooks:
        await service.store.create(hook)
    push = push_event("apps/web", DIGEST, MEDIA, 524, "v1", PUT)
    deleted = delete_event("apps/web", DIGEST, MEDIA, DELETE)
    assert await service.handle_event(_envelope(push)) == 2
    assert await service.handle_event(_envelope(deleted)) == 2
    assert receiver.received == []  # the fan-out calls nobody itself
    assert sorted((m["webhook"], m["event"], m["seq"], m["attempt"]) for m in await peek(storage)) == sorted([
        ("allhooks", push.id, 1, 1), ("scoped1", push.id, 1, 1), ("allhooks", deleted.id, 1, 1),
        ("deletes1", deleted.id, 1, 1)])
    rows = {(r["PartitionKey"], r["RowKey"]): r async for r in storage.events.list_entities()}
    assert set(rows) == {("w|allhooks", push.id), ("w|scoped1", push.id), ("w|allhooks", deleted.id),
                         ("w|deletes1", deleted.id)}
    assert json.loads(rows[("w|scoped1", push.id)]["event"]) == _push_payload(push.id, push.timestamp)

    assert await drain(settings, storage) == 4
    assert [c.json()["action"] for c in receiver.at("/all")] == ["push", "delete"]
    [scoped] = receiver.at("/scoped")
    assert scoped.json() == _push_payload(push.id, push.timestamp)
    assert scoped.headers["X-Key"] == "k"
    assert scoped.headers["Content-Type"] == "application/json"
    validate_payload(scoped.json())
    assert receiver.at("/other") == [] and receiver.at("/disabled") == []
    assert [c.json() for c in receiver.at("/deletes")] == [{
        "id": deleted.id, "timestamp": deleted.timestamp, "action": "delete",
        "target": {"mediaType": MEDIA, "digest": DIGEST, "repository": "apps/web"},
        "request": {"id": REQUEST_ID, "host": "r.test", "method": "DELETE", "useragent": "ua"}}]
    statuses = {(r["PartitionKey"], r["RowKey"]): r["status"] async for r in storage.events.list_entities()}
    assert set(statuses.values()) == {"delivered"}


async def test_a_failed_attempt_is_retried_as_a_new_delayed_message(
    settings: Settings, storage: StorageClients, receiver: Receiver
) -> None:
    service = WebhookService(storage, settings.with_env(REGISTRY_WEBHOOK_RETRY_MS="2000"))
    receiver.failures["/flaky"] = 1
    try:
        await service.store.create(Webhook("flaky1", f"{receiver.url}/flaky", ("push",)))
        event = push_event("apps/web", DIGEST, MEDIA, 524, "v1", PUT)
        await service.handle_event(_envelope(event))
        first = await take(storage)
        assert first == {"webhook": "flaky1", "event": event.id, "seq": 1, "attempt": 1}
        assert await service.deliver(json.dumps(first)) == "retrying"
        row = await storage.events.get_entity(layout.webhook_delivery_partition("flaky1"), event.id)
        assert (row["status"], row["seq"].value, row["attempt"].value) == ("queued", 2, 2)
        assert row["last_error"] == "HTTP 500 Internal Server Error"
        assert await queued(storage) == 1 and await peek(storage) == []  # the retry waits out its delay
        await asyncio.sleep(2.2)
        retry = await take(storage)
        assert retry == {"webhook": "flaky1", "event": event.id, "seq": 2, "attempt": 2}
        assert await service.deliver(json.dumps(retry)) == "delivered"
        log = await service.store.deliveries("flaky1")
    finally:
        await service.close()
    assert [e["eventResponseMessage"]["statusCode"] for e in log] == [200, 500]  # newest first
    assert [c.json() for c in receiver.at("/flaky")] == [_push_payload(event.id, event.timestamp)] * 2
