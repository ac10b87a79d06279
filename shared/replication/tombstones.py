"""Tombstones: what was deleted here, so the read fallback does not bring it back.

A DELETE of a manifest or a tag in one region reaches the other regions only when replication
catches up; until then a read that misses here would find the other regions' copy and serve it.
So before the delete is made, a tombstone is written in the local ``replication`` table
(``x|<repository>`` / ``m|<digest>`` or ``t|<tag>``, ``{deleted}``; see
:mod:`shared.storage.layout`), and the fallback treats another region's row as absent when a
tombstone of it is not older than the row's ``updated`` (a push made there after the delete is
served). A manifest's tags go with it, so another region's tag is hidden by the tombstone of the
tag and by that of the digest it names.

Tombstones do not accumulate: the replication consumer deletes one once the delete or untag
event it belongs to has reached every other region (:func:`settle`), and one older than
:data:`TOMBSTONE_TTL` is ignored and deleted when a read meets it. Only misses read them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared.events.model import UNTAG, RegistryEvent
from shared.replication.sides import event_time, when
from shared.storage import layout
from shared.storage.interfaces import Storage, Table
from shared.storage.queries import get_or_none, partition_rows
from shared.storage.rows import ManifestRow, TagRow
from shared.storage.rows.base import etag_of, moment

log = logging.getLogger("registry.replication")
#: A tombstone older than this is ignored (and deleted when met): replication is long done, or
#: so far behind that the region's operators know (the pending rows show it).
TOMBSTONE_TTL = timedelta(days=7)


def keys_of(row: TagRow | ManifestRow) -> tuple[str, ...]:
    """The tombstone keys that hide ``row``: a tag's own and its digest's, or a manifest's."""
    if isinstance(row, TagRow):
        return layout.tag_key(row.tag), layout.manifest_key(row.digest)
    return (layout.manifest_key(row.digest),)


def event_key(event: RegistryEvent) -> str | None:
    """The tombstone key a delete or untag event belongs to (None for other events)."""
    target = event.target
    if event.action == UNTAG:
        return layout.tag_key(target.tag) if target.tag else None
    return layout.manifest_key(target.digest) if target.digest else None


class Tombstones:
    """The tombstones of one region (its ``replication`` table)."""

    def __init__(self, storage: Storage) -> None:
        self.table: Table = storage.table(layout.REPLICATION.name)

    async def record(self, repository: str, key: str) -> str | None:
        """Write (or renew) the tombstone of ``key`` in ``repository``, dated now; its ETag."""
        written = await self.table.upsert_entity({"PartitionKey": layout.tombstone_partition(repository),
                                                  "RowKey": key, "deleted": datetime.now(UTC)}, mode="replace")
        return str(written.get("etag")) if written.get("etag") else None

    async def forget(self, repository: str, key: str, etag: str | None) -> None:
        """Delete the tombstone written with ``etag`` (a delete that deleted nothing); one renewed since stays."""
        await self._delete(layout.tombstone_partition(repository), key, etag)

    async def hides(self, repository: str, row: TagRow | ManifestRow) -> bool:
        """Whether a tombstone here, not older than ``row`` (another region's), hides it."""
        partition = layout.tombstone_partition(repository)
        found = await asyncio.gather(*(get_or_none(self.table, partition, key) for key in keys_of(row)))
        live = await self.live([e for e in found if e is not None])
        return any(deleted >= when(row.updated) for deleted in live.values())

    async def of_repository(self, repository: str) -> dict[str, datetime]:
        """Every live tombstone of ``repository``: row key -> when deleted (one partition query)."""
        return await self.live([e async for e in partition_rows(self.table, layout.tombstone_partition(repository))])

    async def live(self, entities: list[Mapping[str, Any]]) -> dict[str, datetime]:
        """Row key -> when deleted of the tombstones younger than :data:`TOMBSTONE_TTL`; the
        older ones are deleted."""
        now, live, expired = datetime.now(UTC), {}, []
        for entity in entities:
            deleted = when(moment(entity, "deleted"))
            if now - deleted < TOMBSTONE_TTL:
                live[str(entity["RowKey"])] = deleted
            else:
                expired.append(self._delete(str(entity["PartitionKey"]), str(entity["RowKey"]), etag_of(entity)))
        await asyncio.gather(*expired)
        return live

    async def settle(self, event: RegistryEvent) -> None:
        """Delete the tombstone ``event`` (a delete or untag made here) belongs to, once it has
        reached every region: unless a later delete of the same item renewed it."""
        key = event_key(event)
        if key is None:
            return
        partition = layout.tombstone_partition(event.target.repository)
        entity = await get_or_none(self.table, partition, key)
        if entity is not None and when(moment(entity, "deleted")) <= event_time(event):
            await self._delete(partition, key, etag_of(entity))

    async def _delete(self, partition: str, key: str, etag: str | None) -> None:
        try:
            if etag is None:
                await self.table.delete_entity(partition, key)
            else:
                await self.table.delete_entity(partition, key, etag=etag,
                                               match_condition=MatchConditions.IfNotModified)
        except (ResourceNotFoundError, ResourceModifiedError):
            pass
        except Exception:  # best effort: it is ignored once old, and met again
            log.warning("could not delete tombstone %s / %s", partition, key, exc_info=True)


def hidden_by(tombstones: Mapping[str, datetime], tag: str, digest: str, updated: datetime | None) -> bool:
    """Whether another region's tag (naming ``digest``, last ``updated``) is hidden by ``tombstones``
    (as :meth:`Tombstones.of_repository` reads them)."""
    moment_ = when(updated)
    return any(tombstones.get(key, datetime.min.replace(tzinfo=UTC)) >= moment_
               for key in (layout.tag_key(tag), layout.manifest_key(digest)))
