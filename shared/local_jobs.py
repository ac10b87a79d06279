"""The background functions without the Functions host (``make run``): the timers of
:data:`shared.jobs.TIMERS` on their NCRONTAB schedules (croniter) and the consumers of
:data:`shared.jobs.QUEUES`, calling the same plain functions the triggers call.

A queue consumer follows the host's rules (:data:`shared.jobs.QUEUE_HOST_SETTINGS`): a message is
invisible while its function runs and deleted when it returns; when it raises, the message comes
back after ``visibilityTimeout``, and after ``maxDequeueCount`` failures it moves to the poison
queue. As in Azure, a timer run that is still going when its next occurrence comes delays it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueMessage
from croniter import croniter

from shared.jobs import QUEUE_HOST_SETTINGS, QUEUES, TIMERS, QueueJob, Timer, seconds
from shared.settings import Settings
from shared.storage import layout
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from shared.storage.interfaces import Queue, Storage

log = logging.getLogger("registry.jobs")
_MIN_POLL = 0.1
_PROCESSING_VISIBILITY = 300  # seconds a message stays invisible while its function runs


def next_run(schedule: str, after: datetime) -> datetime:
    """The first occurrence of the NCRONTAB ``schedule`` strictly after ``after`` (UTC)."""
    occurrence: datetime = croniter(schedule, after, second_at_beginning=True).get_next(datetime)
    return occurrence


async def run_timer(timer: Timer, settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Run ``timer`` on its schedule until cancelled; a failing run is logged and the schedule goes on."""
    while True:
        due = next_run(timer.schedule, clock())
        await sleep(max((due - clock()).total_seconds(), 0))
        try:
            await timer.run(settings)
        except Exception:
            log.exception("timer %s failed", timer.name)


class QueueConsumer:
    """Consumes one queue the way the Functions host's queue trigger does."""

    def __init__(self, job: QueueJob, settings: Settings, queue: Queue, poison: Queue) -> None:
        self.job = job
        self.settings = settings
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
            await self.job.run(self.settings, str(message.content))
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


def consumer(job: QueueJob, settings: Settings, storage: Storage) -> QueueConsumer:
    """A consumer of ``job``'s queue in ``storage``'s account."""
    name = job.queue(storage.prefix)
    return QueueConsumer(job, settings, storage.queue(name), storage.queue(layout.poison_queue(name)))


async def run_background_jobs(settings: Settings) -> None:
    """Every timer and queue consumer of :mod:`shared.jobs`, until cancelled."""
    storage = StorageClients(StorageAccount.from_settings(settings))
    consumers = [consumer(job, settings, storage) for job in QUEUES]
    try:
        await storage.ensure()
        for c in consumers:
            for queue in (c.queue, c.poison):
                try:
                    await queue.create_queue()
                except ResourceExistsError:
                    pass
        await asyncio.gather(*(run_timer(t, settings) for t in TIMERS), *(c.run() for c in consumers))
    finally:
        for c in consumers:
            await c.queue.close()
            await c.poison.close()
        await storage.close()
