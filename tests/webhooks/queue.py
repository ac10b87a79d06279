"""Helpers that run the webhook queue as the Functions host (or ``make run``) would, and read it."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from shared.composition import open_container
from shared.local_jobs import QueueConsumer, consumer
from shared.settings import Settings
from shared.storage.clients import StorageClients
from shared.webhooks.capability import WEBHOOK_DELIVERY, WEBHOOK_DELIVERY_POISON


async def queued(storage: StorageClients) -> int:
    """Messages in the delivery queue, visible or not."""
    properties = await storage.deliveries.get_queue_properties()
    return int(properties.approximate_message_count or 0)


async def peek(storage: StorageClients) -> list[dict[str, Any]]:
    """The visible messages of the delivery queue, decoded by hand (base64 JSON), oldest first."""
    raw = storage.queue_service.get_queue_client(storage.deliveries.queue_name)  # no decode policy
    try:
        return [json.loads(base64.b64decode(str(m.content))) for m in await raw.peek_messages(max_messages=32)]
    finally:
        await raw.close()


async def take(storage: StorageClients) -> dict[str, Any]:
    """Receive the oldest visible delivery message and delete it, as the trigger does; decoded by hand."""
    raw = storage.queue_service.get_queue_client(storage.deliveries.queue_name)
    try:
        [message] = [m async for m in raw.receive_messages(messages_per_page=1, max_messages=1)]
        await raw.delete_message(message)
    finally:
        await raw.close()
    decoded: dict[str, Any] = json.loads(base64.b64decode(str(message.content)))
    return decoded


async def drain(settings: Settings, storage: StorageClients, within: float = 30.0) -> int:
    """Run the delivery consumer (and the poison one) until the queue is empty; messages processed."""
    container = await open_container(settings)
    deliveries = consumer(WEBHOOK_DELIVERY, container)
    poison = consumer(WEBHOOK_DELIVERY_POISON, container)
    processed = 0
    deadline = asyncio.get_running_loop().time() + within
    try:
        while True:
            done = await deliveries.drain_once() + await poison.drain_once()
            processed += done
            if not done:
                if await queued(storage) == 0:
                    return processed
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"the queue still holds {await queued(storage)} message(s)")
                await asyncio.sleep(0.1)
    finally:
        await _close(deliveries, poison)
        await container.close()


async def _close(*consumers: QueueConsumer) -> None:
    for c in consumers:
        await c.queue.close()
        await c.poison.close()
