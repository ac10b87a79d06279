"""Where a webhook delivery stands (shared/webhooks/deliveries.py, delivery.py): fan-out once per
event and matching webhook, one message per attempt, retries delayed on the queue, duplicates and
stale messages dropped, claims respected, dead letters listed and re-delivered. Over the in-memory
store with its clock moved by the test; the outbound call is a stand-in that records and answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.composition import load_settings
from shared.events.envelope import to_event_grid
from shared.events.model import RegistryEvent, RequestInfo, push_event
from shared.storage.memory import MemoryStorage
from shared.webhooks.deliveries import Message
from shared.webhooks.fanout import WebhookService
from shared.webhooks.model import Webhook
from shared.webhooks.outbound import Delivery
from tests.clock import ManualClock

PUT = RequestInfo("3f2a94c6-0d1e-4b1a-9c55-6b0ad0b7f0e1", "r.test", "PUT", "ua")


class Endpoint:
    """Answers each call with the next status of ``statuses`` (200 once they run out)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls: list[dict[str, Any]] = []

    async def post(self, uri: str, body: bytes, headers: dict[str, str]) -> Delivery:
        self.calls.append(json.loads(body))
        status = self.statuses.pop(0) if self.statuses else 200
        return Delivery({"method": "POST", "requestUri": uri}, {"statusCode": status, "reasonPhrase": "Said so"})

    async def close(self) -> None:
        return None


def _event(n: int, repository: str = "apps/web") -> RegistryEvent:
    return push_event(repository, "sha256:" + f"{n:02x}" * 32, "application/vnd.oci.image.manifest.v1+json",
                      100 + n, f"v{n}", PUT)


def _envelope(event: RegistryEvent) -> dict[str, Any]:
    return to_event_grid(event, "westus", "/subscriptions/s/resourceGroups/g/providers/x/registries/r")


@pytest.fixture
async def service(memory: MemoryStorage) -> AsyncIterator[WebhookService]:
    settings = load_settings({"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
                              "REGISTRY_WEBHOOK_RETRY_MS": "1000", "REGISTRY_WEBHOOK_RETRY_MAX_SECONDS": "2",
                              "REGISTRY_WEBHOOK_MAX_ATTEMPTS": "3", "REGISTRY_WEBHOOK_TIMEOUT_SECONDS": "10"})
    webhooks = WebhookService(memory, settings)
    yield webhooks
    await webhooks.close()


def _answering(service: WebhookService, *statuses: int) -> Endpoint:
    endpoint = Endpoint(*statuses)
    service.worker.sender = endpoint  # type: ignore[assignment]
    return endpoint


async def _take(memory: MemoryStorage) -> list[str]:
    """The texts of the messages visible now (each then invisible for 5 minutes)."""
    return [str(m.content) async for m in memory.deliveries.receive_messages(visibility_timeout=300)]


async def _row(memory: MemoryStorage, webhook: str, event: RegistryEvent) -> dict[str, Any]:
    return dict(await memory.events.get_entity(f"w|{webhook}", event.id))


def _int(value: Any) -> int:
    return int(getattr(value, "value", value))


async def test_fan_out_queues_one_delivery_per_matching_webhook_once_per_event(memory: MemoryStorage,
                                                                            service: WebhookService) -> None:
    await service.store.create(Webhook("everything", "https://a.example/hook", ("push",)))
    await service.store.create(Webhook("otherrepo", "https://b.example/hook", ("push",), scope="other/*"))
    await service.store.create(Webhook("deletesonly", "https://c.example/hook", ("delete",)))
    await service.store.create(Webhook("thisrepo", "https://d.example/hook", ("push",), scope="apps/web:*"))
    event = _event(1)
    assert await service.handle_event(_envelope(event)) == 2
    assert await service.handle_event(_envelope(event)) == 0  # Event Grid delivered it again
    messages = sorted(json.loads(text)["webhook"] for text in await _take(memory))
    assert messages == ["everything", "thisrepo"]
    row = await _row(memory, "everything", event)
    assert (row["status"], _int(row["seq"]), _int(row["attempt"]), row["queued"]) == ("queued", 1, 1, True)
    assert json.loads(row["event"])["id"] == event.id


async def test_a_failed_attempt_queues_the_next_for_later_and_a_success_ends_the_delivery(
        memory: MemoryStorage, service: WebhookService, clock: ManualClock) -> None:
    endpoint = _answering(service, 500)
    await service.store.create(Webhook("flaky", "https://a.example/hook", ("push",)))
    event = _event(2)
    await service.handle_event(_envelope(event))
    [first] = await _take(memory)
    assert await service.deliver(first) == "retrying"
    row = await _row(memory, "flaky", event)
    assert (row["status"], _int(row["seq"]), _int(row["attempt"])) == ("queued", 2, 2)
    assert (row["last_error"], _int(row["last_status"])) == ("HTTP 500 Said so", 500)
    assert await _take(memory) == []  # the retry waits its backoff (1 s) on the queue
    clock.advance(1)
    [second] = await _take(memory)
    assert Message.parse(second) == Message("flaky", event.id, 2, 2)
    assert await service.deliver(second) == "delivered"
    assert await service.deliver(first) == "stale"  # the queue handed the first message out again
    assert await service.deliver(second) == "duplicate"
    row = await _row(memory, "flaky", event)
    assert (row["status"], row["last_error"], _int(row["last_status"])) == ("delivered", "", 200)
    assert [call["id"] for call in endpoint.calls] == [event.id, event.id]


async def test_after_the_last_attempt_the_delivery_is_dead_lettered_listed_and_redelivered(
        memory: MemoryStorage, service: WebhookService, clock: ManualClock) -> None:
    endpoint = _answering(service, 503, 503, 503)
    await service.store.create(Webhook("downhook", "https://a.example/hook", ("push",)))
    event = _event(3)
    await service.handle_event(_envelope(event))
    outcomes = []
    for _ in range(3):
        [text] = await _take(memory)
        outcomes.append(await service.deliver(text))
        clock.advance(2)
    assert outcomes == ["retrying", "retrying", "dead"] and await _take(memory) == []
    [letter] = await service.dead_letters("downhook")
    assert (letter["eventId"], letter["attempts"], letter["lastStatusCode"]) == (event.id, 3, 503)
    assert await service.redeliver("downhook") == [event.id]
    [again] = await _take(memory)
    assert Message.parse(again) == Message("downhook", event.id, 4, 1)
    assert await service.deliver(again) == "delivered"
    assert await service.dead_letters("downhook") == [] and len(endpoint.calls) == 4


async def test_a_message_finding_the_delivery_claimed_comes_back_when_the_claim_expires(
        memory: MemoryStorage, service: WebhookService, clock: ManualClock) -> None:
    endpoint = _answering(service)
    await service.store.create(Webhook("busy1", "https://a.example/hook", ("push",)))
    event = _event(4)
    await service.handle_event(_envelope(event))
    [text] = await _take(memory)
    row = await service.deliveries.get("busy1", event.id)
    assert row is not None and await service.deliveries.claim(row, Message.parse(text), lease=60) is not None
    assert await service.deliver(text) == "busy"  # another consumer is making this attempt
    assert await _take(memory) == [] and endpoint.calls == []
    clock.advance(62)
    assert await _take(memory) == [text]


async def test_a_message_of_a_deleted_webhook_or_a_poisoned_one_makes_no_call(memory: MemoryStorage,
                                                                             service: WebhookService) -> None:
    endpoint = _answering(service)
    for name in ("gone1", "poisoned"):
        await service.store.create(Webhook(name, "https://a.example/hook", ("push",)))
    event = _event(5)
    await service.handle_event(_envelope(event))
    texts = {json.loads(t)["webhook"]: t for t in await _take(memory)}
    await service.delete("gone1")
    assert await service.deliver(texts["gone1"]) == "unknown"
    await service.poisoned(texts["poisoned"])
    assert (await _row(memory, "poisoned", event))["status"] == "dead"
    assert await service.deliver(texts["poisoned"]) == "duplicate"
    assert endpoint.calls == []
