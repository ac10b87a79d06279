"""Durable webhook delivery: an endpoint down for a while gets every event exactly once, one that
never comes back is dead-lettered and re-delivered, and duplicates (of messages, of events, of
consumers) do not POST twice. Each test counts the POSTs its receiver got per event."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from scripts.azurite import Azurite
from shared.composition import load_settings
from shared.events.envelope import to_event_grid
from shared.events.model import RequestInfo, push_event
from shared.settings import Settings
from shared.storage import layout
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from shared.webhooks.deliveries import Message
from shared.webhooks.fanout import WebhookService
from shared.webhooks.model import DISABLED, Webhook
from shared.webhooks.settings import WebhookSettings
from tests.conftest import unique_prefix
from tests.receiver import Receiver
from tests.webhooks.queue import drain, peek, queued, take

MEDIA = "application/vnd.oci.image.manifest.v1+json"
PUT = RequestInfo("3f2a94c6-0d1e-4b1a-9c55-6b0ad0b7f0e1", "r.test", "PUT", "ua")


@pytest.fixture
def settings(azurite: Azurite) -> Settings:
    """Loopback allowed; retries after 1 s doubling to 2 s (queue delays are whole seconds)."""
    return load_settings({
        "REGISTRY_STORAGE_CONNECTION_STRING": azurite.connection_string, "REGISTRY_STORAGE_PREFIX": unique_prefix(),
        "REGISTRY_WEBHOOK_ALLOW_PRIVATE": "true", "REGISTRY_WEBHOOK_RETRY_MS": "1000",
        "REGISTRY_WEBHOOK_RETRY_MAX_SECONDS": "2", "REGISTRY_WEBHOOK_MAX_ATTEMPTS": "30",
        "REGISTRY_WEBHOOK_TIMEOUT_SECONDS": "2",
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


def _event(n: int) -> Any:
    return push_event("apps/web", "sha256:" + f"{n:02x}" * 32, MEDIA, 100 + n, f"v{n}", PUT)


def _envelope(event: Any) -> dict[str, Any]:
    return to_event_grid(event, "westus", "/subscriptions/s/resourceGroups/g/providers/x/registries/r")


def _posts_per_event(receiver: Receiver, path: str) -> collections.Counter[str]:
    return collections.Counter(call.json()["id"] for call in receiver.at(path))


async def _row(storage: StorageClients, webhook: str, event_id: str) -> dict[str, Any]:
    return dict(await storage.events.get_entity(layout.webhook_delivery_partition(webhook), event_id))


async def _consume_until(settings: Settings, storage: StorageClients, done: Any, within: float) -> None:
    """Run the queue consumer (as ``make run`` does) until ``done()``."""
    from shared.composition import open_container
    from shared.local_jobs import consumer
    from shared.webhooks.capability import WEBHOOK_DELIVERY

    container = await open_container(settings)
    worker = consumer(WEBHOOK_DELIVERY, container)
    deadline = asyncio.get_running_loop().time() + within
    try:
        while not done():
            assert asyncio.get_running_loop().time() < deadline, "not delivered in time"
            if not await worker.drain_once():
                await asyncio.sleep(0.2)
    finally:
        await worker.queue.close()
        await worker.poison.close()
        await container.close()


async def test_an_endpoint_down_during_ten_pushes_gets_each_exactly_once_when_back(
    settings: Settings, storage: StorageClients, service: WebhookService
) -> None:
    down = Receiver()  # its port is reserved but nothing listens: connections are refused
    await service.store.create(Webhook("outage1", f"{down.url}/hook", ("push",)))
    events = [_event(n) for n in range(10)]
    for event in events:
        await service.handle_event(_envelope(event))
    consuming = asyncio.create_task(_consume_until(settings, storage, lambda: len(down.at("/hook")) >= 10, 60))
    await asyncio.sleep(6)  # several failed attempts each, backing off to 2 s
    failed = [await _row(storage, "outage1", e.id) for e in events]
    assert all(r["status"] in ("queued", "sending") and r["attempt"].value >= 3 for r in failed)
    await down.start()
    try:
        await consuming
        await drain(settings, storage)
    finally:
        await down.stop()
    assert _posts_per_event(down, "/hook") == {e.id: 1 for e in events}
    assert {(await _row(storage, "outage1", e.id))["status"] for e in events} == {"delivered"}


async def test_a_receiver_that_never_returns_is_dead_lettered_then_redelivered(
    settings: Settings, storage: StorageClients, receiver: Receiver
) -> None:
    settings = settings.with_env(REGISTRY_WEBHOOK_MAX_ATTEMPTS="3", REGISTRY_WEBHOOK_RETRY_MS="0")
    service = WebhookService(storage, settings)
    receiver.statuses["/gone"] = 503
    try:
        await service.store.create(Webhook("gone1", f"{receiver.url}/gone", ("push",)))
        event = _event(1)
        await service.handle_event(_envelope(event))
        await drain(settings, storage)
        assert len(receiver.at("/gone")) == 3
        [letter] = await service.dead_letters("gone1")
        assert (letter["eventId"], letter["attempts"], letter["lastStatusCode"]) == (event.id, 3, 503)
        assert letter["lastError"] == "HTTP 503 Service Unavailable"
        assert letter["event"]["target"]["digest"] == "sha256:" + "01" * 32

        del receiver.statuses["/gone"]
        assert await service.redeliver("gone1") == [event.id]
        assert await drain(settings, storage) == 1
        assert await service.dead_letters("gone1") == []
        assert (await _row(storage, "gone1", event.id))["status"] == "delivered"
    finally:
        await service.close()
    assert [c.json()["id"] for c in receiver.at("/gone")] == [event.id] * 4


async def test_duplicate_messages_and_a_redelivered_event_post_once(
    settings: Settings, storage: StorageClients, service: WebhookService, receiver: Receiver
) -> None:
    await service.store.create(Webhook("onceonly", f"{receiver.url}/once", ("push",)))
    event = _event(2)
    for _ in range(3):  # Event Grid redelivers: one message only
        await service.handle_event(_envelope(event))
    assert len(await peek(storage)) == 1
    message = Message("onceonly", event.id, 1, 1)
    for _ in range(2):  # the queue delivers a message twice
        await service.queue.send(message)
    outcomes = [await service.deliver(json.dumps(m)) for m in [await take(storage) for _ in range(3)]]
    assert outcomes == ["delivered", "duplicate", "duplicate"]
    assert await service.deliver(Message("onceonly", event.id, 1, 1).text()) == "duplicate"
    assert _posts_per_event(receiver, "/once") == {event.id: 1}


async def test_two_consumers_racing_on_copies_of_one_message_post_once(
    settings: Settings, storage: StorageClients, receiver: Receiver
) -> None:
    receiver.delays["/slow"] = 1.0  # the first POST is held open while the copy arrives
    first, second = WebhookService(storage, settings), WebhookService(storage, settings)
    try:
        await first.store.create(Webhook("racing1", f"{receiver.url}/slow", ("push",)))
        event = _event(3)
        await first.handle_event(_envelope(event))
        text = json.dumps(await take(storage))
        owner = asyncio.create_task(first.deliver(text))
        await receiver.wait_for(lambda: len(receiver.at("/slow")) == 1)
        assert await second.deliver(text) == "busy"  # claimed: it comes back after the claim expires
        assert await owner == "delivered"
        [check_back] = [m async for m in storage.deliveries.receive_messages(visibility_timeout=1)] or [None]
    finally:
        await first.close()
        await second.close()
    assert check_back is None  # invisible until the claim would have expired
    later = Message.parse(text)
    assert await WebhookService(storage, settings).deliver(later.text()) == "duplicate"
    assert _posts_per_event(receiver, "/slow") == {event.id: 1}


async def test_a_stale_retry_message_is_dropped(
    settings: Settings, storage: StorageClients, service: WebhookService, receiver: Receiver
) -> None:
    receiver.failures["/hook"] = 1
    await service.store.create(Webhook("stale1", f"{receiver.url}/hook", ("push",)))
    event = _event(4)
    await service.handle_event(_envelope(event))
    first = json.dumps(await take(storage))
    assert await service.deliver(first) == "retrying"
    assert await service.deliver(first) == "stale"  # the queue delivered the first message again
    assert len(receiver.at("/hook")) == 1


async def test_a_disabled_webhook_dead_letters_and_redelivers_once_enabled(
    settings: Settings, storage: StorageClients, service: WebhookService, receiver: Receiver
) -> None:
    hook = Webhook("paused1", f"{receiver.url}/hook", ("push",))
    await service.store.create(hook)
    event = _event(5)
    await service.handle_event(_envelope(event))
    await service.store.update(dataclasses.replace(hook, status=DISABLED))
    await drain(settings, storage)
    [letter] = await service.dead_letters("paused1")
    assert letter["lastError"] == "the webhook is disabled"
    assert receiver.received == []
    await service.store.update(hook)
    await service.redeliver("paused1", event.id)
    await drain(settings, storage)
    assert _posts_per_event(receiver, "/hook") == {event.id: 1}


async def test_deleting_a_webhook_drops_its_pending_deliveries(
    settings: Settings, storage: StorageClients, service: WebhookService, receiver: Receiver
) -> None:
    await service.store.create(Webhook("removed1", f"{receiver.url}/hook", ("push",)))
    await service.handle_event(_envelope(_event(6)))
    await service.delete("removed1")
    assert [r async for r in storage.events.list_entities()] == []
    await drain(settings, storage)
    assert receiver.received == []


async def test_a_message_the_function_keeps_failing_on_is_dead_lettered_from_the_poison_queue(
    settings: Settings, storage: StorageClients, service: WebhookService, receiver: Receiver
) -> None:
    await service.store.create(Webhook("poison1", f"{receiver.url}/hook", ("push",)))
    event = _event(7)
    await service.handle_event(_envelope(event))
    # A row the function cannot read (as if written by a broken version): every attempt raises.
    await storage.events.update_entity({"PartitionKey": layout.webhook_delivery_partition("poison1"),
                                        "RowKey": event.id, "seq": "not a number"}, mode="merge")
    from shared.composition import open_container
    from shared.local_jobs import consumer
    from shared.webhooks.capability import WEBHOOK_DELIVERY, WEBHOOK_DELIVERY_POISON

    container = await open_container(settings)
    deliveries = consumer(WEBHOOK_DELIVERY, container)
    deliveries.retry_after = 0
    try:
        for _ in range(5):
            assert await deliveries.drain_once() == 1
    finally:
        await deliveries.queue.close()
        await deliveries.poison.close()
    assert await peek(storage) == []
    await storage.events.update_entity({"PartitionKey": layout.webhook_delivery_partition("poison1"),
                                        "RowKey": event.id, "seq": 1}, mode="merge")
    poison = consumer(WEBHOOK_DELIVERY_POISON, container)
    try:
        assert await poison.drain_once() == 1
    finally:
        await poison.queue.close()
        await poison.poison.close()
        await container.close()
    [letter] = await service.dead_letters("poison1")
    assert "failed on this message repeatedly" in letter["lastError"]
    assert receiver.received == []


def test_the_default_schedule_retries_for_about_23_hours() -> None:
    backoff = WebhookSettings().backoff
    # 30, 60, ..., 1920 s, then 22 waits capped at an hour: 3810 + 79200 seconds in all
    assert [backoff.whole_seconds(a) for a in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff.span() == 3810 + 22 * 3600
    assert backoff.exhausted(30) and not backoff.exhausted(29)


async def test_an_event_fanned_out_twice_at_once_posts_once(
    settings: Settings, storage: StorageClients, receiver: Receiver
) -> None:
    """What a sweep republishing an event while its first publication still runs does."""
    first, second = WebhookService(storage, settings), WebhookService(storage, settings)
    try:
        await first.store.create(Webhook("twice1", f"{receiver.url}/hook", ("push",)))
        event = _event(8)
        await asyncio.gather(first.handle_event(_envelope(event)), second.handle_event(_envelope(event)))
        messages = len(await peek(storage))
        assert messages in (1, 2)  # two only if the second fan-out ran between the first's row and its message
        await _consume_until(settings, storage, lambda: len(receiver.at("/hook")) >= 1, 10)
        await asyncio.sleep(0.5)
        # A second message, if any, found the delivery claimed or done: it was dropped, or put back
        # (invisible) to look again once the claim expires, when it is dropped as a duplicate.
        assert await queued(storage) <= messages - 1
    finally:
        await first.close()
        await second.close()
    assert _posts_per_event(receiver, "/hook") == {event.id: 1}


async def test_an_answer_slower_than_the_timeout_is_the_one_duplicate_source_left(
    settings: Settings, storage: StorageClients, service: WebhookService, receiver: Receiver
) -> None:
    """The receiver handles a POST, but answers after the timeout: the attempt counts as failed and
    is retried, so the receiver sees the event twice. Nothing on the sending side can tell."""
    receiver.delays["/late"] = settings.group(WebhookSettings).timeout_seconds + 0.5
    await service.store.create(Webhook("late1", f"{receiver.url}/late", ("push",)))
    event = _event(9)
    await service.handle_event(_envelope(event))
    assert await service.deliver(json.dumps(await take(storage))) == "retrying"
    del receiver.delays["/late"]
    await drain(settings, storage)
    assert _posts_per_event(receiver, "/late") == {event.id: 2}


async def test_a_fan_out_that_cannot_enqueue_raises_and_its_retry_delivers_once(
    settings: Settings, storage: StorageClients, service: WebhookService, receiver: Receiver
) -> None:
    await service.store.create(Webhook("retried1", f"{receiver.url}/hook", ("push",)))
    event = _event(10)
    await storage.deliveries.delete_queue()  # the queue is unreachable for this first delivery
    with pytest.raises(ResourceNotFoundError):
        await service.handle_event(_envelope(event))
    row = await _row(storage, "retried1", event.id)
    assert (row["status"], row["queued"]) == ("queued", False)
    await storage.deliveries.create_queue()
    assert await service.handle_event(_envelope(event)) == 1  # Event Grid's retry of the event
    assert await service.handle_event(_envelope(event)) == 0  # and a further one enqueues nothing
    await drain(settings, storage)
    assert _posts_per_event(receiver, "/hook") == {event.id: 1}
