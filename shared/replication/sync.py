"""Bringing one region to another region's current state for the item an event names.

:func:`reconcile` reads the *source* region (where the change was made) as it is now and makes
the *target* region agree for that one item; it never replays the event's payload as state, so a
repeated, late or reordered event is harmless. What the event names decides what is read:

- ``push``, ``chart_push``, ``quarantine``: the manifest (its blobs, its child manifests and its
  large bytes first, so nothing in the target ever names what the target lacks; its subject need
  not exist, as referrers may precede subjects), the catalog row, then in one transaction of the
  repository's partition the manifest row, its referrer row, the tag row and the arrival event
  (:mod:`shared.replication.arrive`).
- ``delete``, ``chart_delete``: the manifest with its tags and referrer row, and the arrival event.
- ``untag``: the tag row. ``attributes``: the lock flags of a catalog, tag or manifest row.

Rows are copied verbatim (``created`` and ``updated`` travel with them); blob links and the blob
index are the target's own (:func:`~shared.replication.transfer.ensure_blob`).

**Converge rule: last writer wins by the row's ``(updated, digest)``.** A tag row is written in the
target only when the source's ``(updated, digest)`` is greater than the target's (a create when it
has none, else a replace on condition of the ETag read, re-decided on conflict); so when two
regions move one tag at once, each region's replicator carries its own write to the other, the
greater pair wins in both directions and both end at the same digest. A delete or an untag
removes the target's row only when the target's ``updated`` is not after the event's
``timestamp`` (a re-push made meanwhile wins), and not while the source has the item again (its
own push event follows). An existing manifest row takes the source's lock flags and ``updated``
only when the source's ``updated`` is newer; lock flags (``attributes``) are copied when the
source's ``(updated, locks)`` is greater, ties going to the more locked row. Times are each
region's clock: skew between regions shifts who "last" was, never whether they converge.

A change that arrives in the target is announced there by an *arrival event* (the same action,
target and request, ``origin`` = the source region, an id derived from the event's and the
target's) written in the target's outbox in the transaction of the change, so the target's
webhooks fire once the content is there; the target's replicator ignores it (``origin`` is set).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, TableTransactionError

from shared.events.model import ATTRIBUTES, CHART_DELETE, CHART_PUSH, DELETE, PUSH, QUARANTINE, UNTAG, RegistryEvent
from shared.events.outbox import Outbox
from shared.replication.arrive import arrive
from shared.replication.sides import (
    ATTEMPTS,
    IF_UNCHANGED,
    ReplicationIncomplete,
    Sides,
    arrival,
    conflict,
    event_time,
    verbatim,
    when,
)
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none, prefix_range
from shared.storage.rows import Locks, ManifestRow, TagRow, etag_of
from shared.storage.rows.base import moment

log = logging.getLogger("registry.replication")

PUSHES = frozenset({PUSH, CHART_PUSH, QUARANTINE})
DELETES = frozenset({DELETE, CHART_DELETE})


async def reconcile(sides: Sides, event: RegistryEvent) -> None:
    """Bring ``sides.target`` to ``sides.source``'s current state for the item ``event`` names;
    idempotent. ReplicationIncomplete (or a storage error) when it could not, to be retried."""
    handler = _HANDLERS.get(event.action)
    if handler is None:
        log.info("replication: nothing to do for action %s", event.action)
        return
    await handler(sides, event)


async def _delete(sides: Sides, event: RegistryEvent) -> None:
    repository, digest = event.target.repository, event.target.digest
    partition, key = layout.encode_repository(repository), layout.manifest_key(digest)
    if await get_or_none(sides.source.repos, partition, key, select=["RowKey"]) is not None:
        return  # pushed again in the source since: that push's event brings the target up to date
    deadline = event_time(event)
    for _ in range(ATTEMPTS):
        row = await get_or_none(sides.target.repos, partition, key, ManifestRow)
        if row is None or when(row.updated) > deadline:
            return  # gone already, or pushed again in the target after the delete: the newer write wins
        await _delete_dependents(sides.target, partition, row)
        final: list[tuple[Any, ...]] = [("delete", {"PartitionKey": partition, "RowKey": key},
                                         {"etag": row.etag, "match_condition": IF_UNCHANGED}),
                                        Outbox.row(partition, arrival(event, sides))]
        try:
            await sides.target.repos.submit_transaction(final)
            return
        except TableTransactionError as error:
            if not conflict(error):
                raise
    raise ReplicationIncomplete(f"{repository}@{digest} kept changing in {sides.target_region}")


async def _delete_dependents(target: Storage, partition: str, row: ManifestRow) -> None:
    """The target's tags naming ``row``'s manifest (each on condition of the ETag read) and its
    referrer row, before the manifest row: a failure part-way never leaves a tag naming nothing."""
    tags = prefix_range(target.repos, partition, layout.TAG, where="digest eq @digest",
                        parameters={"digest": row.digest}, select=["PartitionKey", "RowKey"])
    async for tag in tags:
        await _delete_if_unchanged(target, partition, str(tag["RowKey"]), etag_of(tag))
    if row.subject:
        await target.repos.delete_entity(partition, layout.referrer_key(row.subject, row.digest))


async def _delete_if_unchanged(target: Storage, partition: str, key: str, etag: str | None) -> bool:
    try:
        await target.repos.delete_entity(partition, key, etag=etag, match_condition=IF_UNCHANGED)
    except (ResourceModifiedError, ResourceNotFoundError):
        return False
    return True


async def _untag(sides: Sides, event: RegistryEvent) -> None:
    tag = event.target.tag
    if not tag:
        return
    partition, key = layout.encode_repository(event.target.repository), layout.tag_key(tag)
    if await get_or_none(sides.source.repos, partition, key, select=["RowKey"]) is not None:
        return  # tagged again in the source since: that push's event brings the target up to date
    deadline = event_time(event)
    for _ in range(ATTEMPTS):
        row = await get_or_none(sides.target.repos, partition, key, TagRow)
        if row is None or when(row.updated) > deadline:
            return
        if await _delete_if_unchanged(sides.target, partition, key, row.etag):
            return
    raise ReplicationIncomplete(f"tag {tag} of {event.target.repository} kept changing in {sides.target_region}")


def lock_order(entity: Mapping[str, Any]) -> tuple[Any, ...]:
    """What orders two versions of a row's lock flags: its ``updated``, then how locked it is
    (ties go to the more locked)."""
    locks = Locks.from_entity(entity)
    return when(moment(entity, "updated")), tuple(not locks.allows(flag) for flag in layout.LOCK_FLAGS)


def _with_flags_of(target: TableEntity, source: TableEntity) -> dict[str, Any]:
    """``target``'s row with ``source``'s lock flags and ``updated`` (a flag absent is true)."""
    row = {name: value for name, value in verbatim(target).items() if name not in layout.LOCK_FLAGS}
    row.update({name: source[name] for name in layout.LOCK_FLAGS if source.get(name) is not None})
    if source.get("updated") is not None:
        row["updated"] = source["updated"]
    return row


async def _attributes(sides: Sides, event: RegistryEvent) -> None:
    t = event.target
    partition = layout.encode_repository(t.repository)
    if t.tag:
        key = layout.tag_key(t.tag)
    elif t.digest:
        key = layout.manifest_key(t.digest)
    else:
        partition, key = layout.CATALOG_PARTITION, partition
    for _ in range(ATTEMPTS):
        source, target = await asyncio.gather(get_or_none(sides.source.repos, partition, key),
                                              get_or_none(sides.target.repos, partition, key))
        if source is None or target is None or lock_order(source) <= lock_order(target):
            return  # nothing to copy (the row's push brings its flags along), or the target's are as new
        try:
            await sides.target.repos.update_entity(_with_flags_of(target, source), mode="replace",
                                                   etag=target.metadata["etag"], match_condition=IF_UNCHANGED)
            return
        except (ResourceModifiedError, ResourceNotFoundError):
            continue
    raise ReplicationIncomplete(f"the flags of {t.repository} kept changing in {sides.target_region}")


_HANDLERS: dict[str, Callable[[Sides, RegistryEvent], Awaitable[None]]] = {
    **{action: arrive for action in PUSHES}, **{action: _delete for action in DELETES},
    UNTAG: _untag, ATTRIBUTES: _attributes,
}
