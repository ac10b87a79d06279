"""The replication consumer: the Event Grid-triggered function ``replicate`` and its retry timer.

For an event of a change made in this region (``origin`` unset; an event that arrived by
replication is acknowledged and ignored), :func:`replicate` first writes one *pending row* per
other region (table ``replication``, partition ``q|<region>``, row key the event id: the event,
when it was queued, attempts, the last error), then brings each region to this region's state
(:func:`~shared.replication.sync.reconcile`) and deletes that region's row. A region that fails
does not hold up the others; the function then raises, so Event Grid delivers the event again.
Whatever a crash or an outage leaves behind is in the pending rows, which the timer
:func:`retry_pending` takes up once they are ``REGISTRY_REPLICATION_RETRY_SECONDS`` old: its cost
is the number of pending rows, never a scan of the repositories.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.events.envelope import (
    ATTRIBUTES_CHANGED,
    CHART_DELETED,
    CHART_PUSHED,
    IMAGE_DELETED,
    IMAGE_PUSHED,
    TAG_DELETED,
    event_of,
)
from shared.events.model import UNTAG, RegistryEvent
from shared.kernel.container import Container
from shared.kernel.jobs import EventConsumer, Subscription, Timer
from shared.replication.regions import Regions
from shared.replication.settings import ReplicationSettings
from shared.replication.sides import Sides
from shared.replication.sync import DELETES, reconcile
from shared.replication.tombstones import Tombstones
from shared.storage import layout
from shared.storage.interfaces import Storage, Table
from shared.storage.queries import get_or_none, partition_rows
from shared.storage.rows.base import etag_of, moment
from shared.storage.values import int64, read_int

log = logging.getLogger("registry.replication")
_ERROR_CHARS = 500
#: Reconciliations one process runs at once (events and retries together): more would only queue
#: for the storage clients' connections, and time out there under a burst of pushes.
PARALLEL_RECONCILIATIONS = 16
#: The actions whose region keeps a tombstone until they have reached every other region.
TOMBSTONED = DELETES | {UNTAG}
_SECRET = re.compile(r"(sig|se|sv|sp|skoid|sktid|skt|ske|sks|skv|AccountKey|SharedAccessSignature)=[^&;\s]*",
                     re.IGNORECASE)


@dataclass(frozen=True)
class PendingRow:
    """``replication``, ``q|<region>`` / ``<event-id>``: an event not yet replicated to ``region``."""

    region: str
    event_id: str
    event: Mapping[str, Any]  # the event's Event Grid ``data`` (its payload)
    queued: datetime
    attempts: int = 0
    last_error: str = ""
    etag: str | None = None

    def to_entity(self) -> dict[str, Any]:
        """The row as stored (the event as compact JSON)."""
        return {"PartitionKey": layout.replication_partition(self.region), "RowKey": self.event_id,
                "event": json.dumps(self.event, separators=(",", ":")), "queued": self.queued,
                "attempts": int64(self.attempts), "last_error": self.last_error}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        region = str(entity["PartitionKey"]).removeprefix(layout.replication_partition(""))
        return cls(region, str(entity["RowKey"]), json.loads(entity["event"]),
                   moment(entity, "queued") or datetime.now(UTC), read_int(entity.get("attempts")),
                   str(entity.get("last_error") or ""), etag_of(entity))


def pending_table(storage: Storage) -> Table:
    """The ``replication`` table of ``storage``."""
    return storage.table(layout.REPLICATION.name)


def describe(error: BaseException) -> str:
    """A failure as a pending row keeps it: short, with anything like a key or a SAS removed."""
    return _SECRET.sub(r"\1=…", f"{type(error).__name__}: {error}")[:_ERROR_CHARS]


class Replicator:
    """Replicates this region's changes to every other region, through durable pending rows."""

    def __init__(self, regions: Regions, local: Storage) -> None:
        self.regions = regions
        self.local = local
        self.table = pending_table(local)
        self.tombstones = Tombstones(local)
        self._running = asyncio.Semaphore(PARALLEL_RECONCILIATIONS)

    async def sides(self, region: str) -> Sides:
        """This region (source) and ``region`` (target)."""
        return Sides(self.local, await self.regions.storage(region), self.regions.local, region)

    async def handle(self, event: RegistryEvent, data: Mapping[str, Any]) -> None:
        """Replicate ``event`` (whose payload is ``data``) to every other region; raises when one failed."""
        if event.origin is not None:
            return  # it arrived here by replication: its own region's replicator handles it
        now = datetime.now(UTC)
        rows = [PendingRow(region, event.id, dict(data), now) for region in self.regions.others]
        await asyncio.gather(*(self._queue(row) for row in rows))
        results = await asyncio.gather(*(self.attempt(row, event) for row in rows))
        failed = [row.region for row, done in zip(rows, results, strict=True) if not done]
        if failed:
            raise ReplicationFailed(f"event {event.id} not replicated to {', '.join(failed)}")

    async def _queue(self, row: PendingRow) -> None:
        try:
            await self.table.create_entity(row.to_entity())
        except ResourceExistsError:
            pass  # queued by an earlier delivery: it keeps its time and attempts

    async def attempt(self, row: PendingRow, event: RegistryEvent | None = None) -> bool:
        """Reconcile ``row``'s region for its event, then delete the row; on failure note the
        attempt in the row (which stays for the timer) and return False."""
        try:
            async with self._running:
                await reconcile(await self.sides(row.region), event or RegistryEvent.from_payload(row.event))
        except Exception as error:
            log.warning("replicating event %s to %s failed: %s", row.event_id, row.region, describe(error))
            await self._note_failure(row, error)
            return False
        try:
            await self.table.delete_entity(layout.replication_partition(row.region), row.event_id)
        except ResourceNotFoundError:
            pass
        try:
            await self._settle_tombstone(row, event)
        except Exception:  # the tombstone is ignored once old, and deleted then
            log.warning("could not settle the tombstone of event %s", row.event_id, exc_info=True)
        return True

    async def _settle_tombstone(self, row: PendingRow, event: RegistryEvent | None) -> None:
        """Once a delete or untag has reached every other region (no pending row of it is left),
        delete its tombstone: the fallback no longer needs it (:mod:`shared.replication.tombstones`)."""
        event = event or RegistryEvent.from_payload(row.event)
        if event.action not in TOMBSTONED:
            return
        others = [region for region in self.regions.others if region != row.region]
        left = await asyncio.gather(*(get_or_none(self.table, layout.replication_partition(region), row.event_id,
                                                  select=["RowKey"]) for region in others))
        if not any(left):
            await self.tombstones.settle(event)

    async def _note_failure(self, row: PendingRow, error: Exception) -> None:
        key = (layout.replication_partition(row.region), row.event_id)
        try:
            entity = await self.table.get_entity(*key)
            current = PendingRow.from_entity(entity)
            noted = replace(current, attempts=current.attempts + 1, last_error=describe(error))
            await self.table.update_entity(noted.to_entity(), mode="replace")
        except Exception:  # the row stays as it was; the timer still finds it
            log.warning("could not note the failed attempt of event %s for %s", row.event_id, row.region,
                        exc_info=True)

    async def retry_pending(self, older_than: timedelta, now: datetime | None = None) -> int:
        """Retry every pending row queued more than ``older_than`` before ``now``; how many succeeded."""
        cutoff = (now or datetime.now(UTC)) - older_than
        rows = []
        for region in self.regions.others:
            entities = partition_rows(self.table, layout.replication_partition(region), where="queued lt @cutoff",
                                      parameters={"cutoff": cutoff})
            rows += [PendingRow.from_entity(entity) async for entity in entities]
        results = await asyncio.gather(*(self.attempt(row) for row in rows))
        if rows:
            log.info("replication retry: %d of %d pending change(s) done", sum(results), len(rows))
        return sum(results)


class ReplicationFailed(Exception):
    """An event could not be replicated to every region this time (Event Grid delivers it again)."""


async def replicate(container: Container, envelope: Mapping[str, Any]) -> None:
    """The plain function behind the ``replicate`` Event Grid trigger."""
    data = envelope.get("data")
    await (await container.get(Replicator)).handle(event_of(envelope), data if isinstance(data, Mapping) else {})


async def retry_replication(container: Container) -> int:
    """The plain function behind the ``retry_replication`` timer: one pass over the pending rows."""
    seconds = container.settings.group(ReplicationSettings).retry_seconds
    return await (await container.get(Replicator)).retry_pending(timedelta(seconds=seconds))


async def replicator(container: Container) -> Replicator:
    """The container's replicator (its factory)."""
    return Replicator(await container.get(Regions), container.storage)


#: The Event Grid subscription "replication": every change made here goes to every other region.
REPLICATE = EventConsumer(
    Subscription(name="replication", function_name="replicate",
                 included_event_types=(IMAGE_PUSHED, IMAGE_DELETED, CHART_PUSHED, CHART_DELETED, TAG_DELETED,
                                       ATTRIBUTES_CHANGED)),
    replicate,
)
#: Every minute: retry the changes not replicated within REGISTRY_REPLICATION_RETRY_SECONDS.
RETRY_REPLICATION = Timer("retry_replication", "0 * * * * *", retry_replication)
