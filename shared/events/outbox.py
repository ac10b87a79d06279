"""The outbox: an event is stored in the transaction of the commit it describes, then published.

The outbox is the :class:`~shared.kernel.interfaces.EventSink` of the services that commit: a
manifest PUT or DELETE adds :meth:`Outbox.operations` to the entity-group transaction that commits
it, so the event exists exactly when the commit happened. After the commit, :meth:`Outbox.committed`
publishes in the background (the response is not delayed) and deletes the row once the publisher
accepted the event. Rows left behind by a crash or a failed publish are found by
:meth:`Outbox.republish` (the timer function, or the web process's sweeper under ``make run``):
delivery is at least once, and consumers are idempotent by event id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError

from shared.events.model import RegistryEvent
from shared.kernel.container import Container
from shared.kernel.interfaces import EventPublisher, TransactionOperation
from shared.settings import Settings
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import prefix_range
from shared.storage.rows import OutboxRow

log = logging.getLogger("registry.events.outbox")
_CLOSE_TIMEOUT = 30.0


class Outbox:
    """Outbox rows in the repository partitions, and their publication."""

    def __init__(self, storage: Storage, settings: Settings, publisher: EventPublisher[RegistryEvent]) -> None:
        self.storage = storage
        self.settings = settings
        self.publisher = publisher
        self._tasks: set[asyncio.Task[None]] = set()

    def operations(self, partition: str, events: Sequence[RegistryEvent]) -> list[TransactionOperation]:
        """The transaction operations that store ``events`` in ``partition`` (the repository's)."""
        return [self.row(partition, event) for event in events]

    @staticmethod
    def row(partition: str, event: RegistryEvent) -> TransactionOperation:
        """The transaction operation that stores ``event`` in ``partition`` (the repository's)."""
        return ("create", OutboxRow(partition, event.id, event.to_stored(), datetime.now(UTC)).to_entity())

    def committed(self, partition: str, events: Sequence[RegistryEvent]) -> None:
        """The transaction holding the rows of ``events`` committed: publish them in the background."""
        if not events:
            return
        task = asyncio.get_running_loop().create_task(self._publish(partition, list(events)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, partition: str, events: list[RegistryEvent]) -> None:
        try:
            await self.publisher.publish(events)
        except Exception:
            log.warning("publishing %d event(s) failed; the outbox keeps them", len(events), exc_info=True)
            return
        for event in events:
            await self._delete(partition, event.id)

    async def _delete(self, partition: str, event_id: str) -> None:
        try:
            await self.storage.repos.delete_entity(partition, layout.outbox_key(event_id))
        except ResourceNotFoundError:
            pass

    async def republish(self, grace: timedelta | None = None) -> int:
        """Publish outbox rows older than ``grace`` (default: the setting); returns how many were published."""
        cutoff = datetime.now(UTC) - (grace if grace is not None else
                                      timedelta(seconds=self.settings.events.outbox_grace_seconds))
        published = 0
        async for entity in prefix_range(self.storage.repos, None, layout.OUTBOX):  # every repository's
            row = OutboxRow.from_entity(entity)
            if row.created is not None and row.created > cutoff:
                continue
            event = RegistryEvent.from_payload(row.payload)
            try:
                await self.publisher.publish([event])
            except Exception:
                log.warning("republishing event %s failed; it stays in the outbox", event.id, exc_info=True)
                continue
            await self._delete(row.partition, event.id)
            published += 1
        if published:
            log.info("republished %d event(s) from the outbox", published)
        return published

    async def sweep_forever(self, interval: float) -> None:
        """Republish every ``interval`` seconds until cancelled (the web process's own timer)."""
        while True:
            try:
                await self.republish()
            except Exception:
                log.warning("outbox sweep failed", exc_info=True)
            await asyncio.sleep(interval)

    async def settle(self) -> None:
        """Wait until the background publications started so far have finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Wait (bounded) for background publications, then close the publisher."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=_CLOSE_TIMEOUT)
        await self.publisher.close()


async def republish_outbox(container: Container) -> int:
    """The plain function behind the ``republish_outbox`` timer: one sweep."""
    outbox = await container.get(Outbox)
    return await outbox.republish()
