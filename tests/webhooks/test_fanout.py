"""The webhook fan-out: scope and action matching, retries, isolation, idempotency, outbound guards."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scripts.azurite import Azurite
from shared.events.envelope import to_event_grid
from shared.events.model import RegistryEvent, RequestInfo, delete_event, push_event
from shared.settings import Settings
from shared.storage.clients import StorageClients
from shared.webhooks.fanout import WebhookService
from shared.webhooks.model import DISABLED, Webhook, scope_matches
from shared.webhooks.outbound import WebhookSender, forbidden
from tests.conftest import unique_prefix
from tests.events.schemas import validate_payload
from tests.receiver import Receiver

DIGEST = "sha256:" + "34" * 32
MEDIA = "application/vnd.docker.distribution.manifest.v2+json"
PUT = RequestInfo("3f2a94c6-0d1e-4b1a-9c55-6b0ad0b7f0e1", "r.test", "PUT", "ua")
DELETE = dataclasses.replace(PUT, method="DELETE")


@pytest.fixture
def settings(azurite: Azurite) -> Settings:
    """Loopback allowed, fast retries, a short timeout."""
    return dataclasses.replace(
        Settings(storage_connection_string=azurite.connection_string, storage_prefix=unique_prefix()),
        webhook_allow_private=True, webhook_retry_ms=10, webhook_timeout_seconds=1,
    )


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[WebhookService]:
    """A webhook service over the test's storage."""
    storage = StorageClients(settings)
    await storage.ensure()
    webhooks = WebhookService(storage, settings)
    yield webhooks
    await webhooks.close()
    await storage.close()


def _envelope(event: RegistryEvent) -> dict[str, Any]:
    return to_event_grid(event, "westus", "/subscriptions/s/resourceGroups/g/providers/x/registries/r")


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


@pytest.mark.parametrize(("address", "refused"), [
    ("127.0.0.1", True), ("10.1.2.3", True), ("192.168.0.1", True), ("172.16.0.1", True),
    ("169.254.169.254", True), ("::1", True), ("fd00::1", True), ("fe80::1", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", True), ("100.64.0.1", True),  # noqa: S104
    ("8.8.8.8", False), ("2606:4700:4700::1111", False),
])
def test_outbound_refuses_non_public_addresses(address: str, refused: bool) -> None:
    assert forbidden(address) is refused


async def test_fan_out_posts_to_matching_webhooks_only(service: WebhookService, receiver: Receiver) -> None:
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
    await service.handle_event(_envelope(push))
    await service.handle_event(_envelope(delete_event("apps/web", DIGEST, MEDIA, DELETE)))
    assert [c.json()["action"] for c in receiver.at("/all")] == ["push", "delete"]
    [scoped] = receiver.at("/scoped")
    assert scoped.json() == push.to_payload()
    assert scoped.headers["X-Key"] == "k"
    assert scoped.headers["Content-Type"] == "application/json"
    validate_payload(scoped.json())
    assert receiver.at("/other") == []
    assert receiver.at("/disabled") == []
    assert [c.json()["action"] for c in receiver.at("/deletes")] == ["delete"]


async def test_failing_endpoint_is_retried_and_every_attempt_logged(
    service: WebhookService, receiver: Receiver
) -> None:
    receiver.failures["/flaky"] = 3
    await service.store.create(Webhook("flaky1", f"{receiver.url}/flaky", ("push",)))
    event = push_event("apps/web", DIGEST, MEDIA, 524, "v1", PUT)
    await service.handle_event(_envelope(event))
    assert len(receiver.at("/flaky")) == 4
    log = await service.store.deliveries("flaky1")
    assert [e["eventResponseMessage"]["statusCode"] for e in log] == [200, 500, 500, 500]  # newest first
    assert {e["eventId"] for e in log} == {event.id}


async def test_redelivered_event_is_not_sent_twice(service: WebhookService, receiver: Receiver) -> None:
    await service.store.create(Webhook("onceonly", f"{receiver.url}/once", ("push",)))
    envelope = _envelope(push_event("apps/web", DIGEST, MEDIA, 524, "v1", PUT))
    await service.handle_event(envelope)
    await service.handle_event(envelope)
    assert len(receiver.at("/once")) == 1


async def test_a_slow_endpoint_does_not_delay_the_others(settings: Settings, receiver: Receiver) -> None:
    storage = StorageClients(settings)
    await storage.ensure()
    service = WebhookService(storage, dataclasses.replace(settings, webhook_max_attempts=2))
    receiver.delays["/slow"] = 1.5
    try:
        # Listed by name, the slow one comes first: delivered in turn, the fast one would wait > 2 s.
        await service.store.create(Webhook("aaslowhook", f"{receiver.url}/slow", ("push",)))
        await service.store.create(Webhook("zzfasthook", f"{receiver.url}/fast", ("push",)))
        started = asyncio.get_running_loop().time()
        task = asyncio.create_task(service.handle_event(_envelope(push_event("a/b", DIGEST, MEDIA, 1, "v1", PUT))))
        await receiver.wait_for(lambda: len(receiver.at("/fast")) == 1, within=5)
        assert asyncio.get_running_loop().time() - started < 1.0
        await task
        slow = await service.store.deliveries("aaslowhook")
    finally:
        await service.close()
        await storage.close()
    assert len(slow) == 2
    assert slow[0]["eventResponseMessage"]["statusCode"] is None  # timed out after 1 s, each attempt
    assert "Timeout" in slow[0]["eventResponseMessage"]["reasonPhrase"]


async def test_private_addresses_are_refused_unless_allowed(settings: Settings, receiver: Receiver) -> None:
    sender = WebhookSender(dataclasses.replace(settings, webhook_allow_private=False))
    try:
        literal = await sender.post(f"{receiver.url}/x", b"{}", {})
        named = await sender.post(f"http://localhost:{receiver.port}/x", b"{}", {})
    finally:
        await sender.close()
    assert not literal.ok and "RefusedAddress" in literal.error
    assert not named.ok and "RefusedAddress" in named.error
    assert receiver.received == []


async def test_redirects_are_not_followed(settings: Settings, receiver: Receiver) -> None:
    receiver.statuses["/moved"] = 302
    sender = WebhookSender(settings)
    try:
        delivery = await sender.post(f"{receiver.url}/moved", b"{}", {})
    finally:
        await sender.close()
    assert not delivery.ok
    assert delivery.response is not None and delivery.response["statusCode"] == 302
    assert receiver.at("/redirected") == [] and receiver.at("/redirected", "GET") == []
