"""The background functions without the Functions host (``make run``): the timers the
capabilities registered, on their NCRONTAB schedules (croniter), and consumers of their queue
jobs' queues, calling the same plain functions the triggers call, with the same container.

A queue consumer follows the host's rules (:data:`QUEUE_HOST_SETTINGS`, which ``host.json``'s
``extensions.queues`` holds; a test keeps them equal): a message is
invisible while its function runs and deleted when it returns; when it raises, the message comes
back after ``visibilityTimeout``, and after ``maxDequeueCount`` failures it moves to the poison
queue. As in Azure, a timer run that is still going when its next occurrence comes delays it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueMessage
from croniter import croniter

from shared.kernel.configurator import Application
from shared.kernel.container import Container
from shared.kernel.jobs import QueueJob, Timer
from shared.storage import layout
from shared.storage.interfaces import Queue

log = logging.getLogger("registry.jobs")
_MIN_POLL = 0.1
_PROCESSING_VISIBILITY = 300  # seconds a message stays invisible while its function runs

#: How the host runs queue triggers (host.json ``extensions.queues``), mimicked locally: a message
#: whose function raised is retried after ``visibilityTimeout``, and after ``maxDequeueCount``
#: failures moved to ``<queue>-poison``; an empty queue is polled at least every
#: ``maxPollingInterval``. Messages are base64 text.
QUEUE_HOST_SETTINGS: dict[str, Any] = {
    "batchSize": 16,
    "maxDequeueCount": 5,
    "visibilityTimeout": "00:00:30",
    "maxPollingInterval": "00:00:02",
    "messageEncoding": "base64",
}


def seconds(timespan: str) -> float:
    """Seconds of a host.json ``hh:mm:ss`` timespan."""
    hours, minutes, secs = timespan.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def next_run(schedule: str, after: datetime) -> datetime:
    """The first occurrence of the NCRONTAB ``schedule`` strictly after ``after`` (UTC)."""
    occurrence: datetime = croniter(schedule, after, second_at_beginning=True).get_next(datetime)
    return occurrence


async def run_timer(timer: Timer, container: Container, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Run ``timer`` on its schedule until cancelled; a failing run is logged and the schedule goes on."""
    while True:
        due = next_run(timer.schedule, clock())
        await sleep(max((due - clock()).total_seconds(), 0))
        try:
            await timer.run(container)
        except Exception:
            log.exception("timer %s failed", timer.name)


class QueueConsumer:
    """Consumes one queue the way the Functions host's queue trigger does."""

    def __init__(self, job: QueueJob, container: Container, queue: Queue, poison: Queue) -> None:
        self.job = job
        self.container = container
        self.queue = queue
        self.poison = poison
        self.batch = int(QUEUE_HOST_SETTINGS["batchSize"])
        self.max_dequeue = int(QUEUE_HOST_SETTINGS["maxDequeueCount"])
        self.retry_after = int(seconds(QUEUE_HOST_SETTINGS["visibilityTimeout"]))
        self.max_poll = seconds(QUEUE_HOST_SETTINGS["maxPollingInterval"])

    async def drain_once(self) -> int:
        """Receive one batch and run the function on each message; how many there were."""
        messages = [m async for m in self.queue.receive_messages(
            messages_per_page=self.batch, max_messages=self.batch, visibility_timeout=_PROCESSING_VISIBILITY)]
        await asyncio.gather(*(self._one(m) for m in messages))
        return len(messages)

    async def _one(self, message: QueueMessage) -> None:
        try:
            await self.job.run(self.container, str(message.content))
        except Exception:
            log.exception("%s failed on message %s (dequeue %d)", self.job.name, message.id, message.dequeue_count)
            if (message.dequeue_count or 0) >= self.max_dequeue:
                await self.poison.send_message(message.content, time_to_live=-1)
                await self.queue.delete_message(message)
            else:
                await self.queue.update_message(message, visibility_timeout=self.retry_after)
            return
        await self.queue.delete_message(message)

    async def run(self) -> None:
        """Poll until cancelled, backing off to ``maxPollingInterval`` while the queue is empty."""
        poll = _MIN_POLL
        while True:
            try:
                busy = await self.drain_once() > 0
            except Exception:
                log.warning("polling %s failed", self.job.name, exc_info=True)
                busy = False
            poll = _MIN_POLL if busy else min(poll * 2, self.max_poll)
            if not busy:
                await asyncio.sleep(poll)


def consumer(job: QueueJob, container: Container) -> QueueConsumer:
    """A consumer of ``job``'s queue in the container's storage account (the caller closes its
    two queue clients)."""
    storage = container.storage
    name = job.queue(storage.prefix)
    return QueueConsumer(job, container, storage.queue(name), storage.queue(layout.poison_queue(name)))


async def run_background_jobs(container: Container) -> None:
    """Every timer and queue job the capabilities registered, until cancelled."""
    tables = await container.get(Application)
    consumers = [consumer(job, container) for job in tables.queue_jobs]
    try:
        for c in consumers:
            for queue in (c.queue, c.poison):
                try:
                    await queue.create_queue()
                except ResourceExistsError:
                    pass
        await asyncio.gather(*(run_timer(t, container) for t in tables.timers), *(c.run() for c in consumers))
    finally:
        for c in consumers:
            await c.queue.close()
            await c.poison.close()
