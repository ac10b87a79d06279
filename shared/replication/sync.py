"""Bringing one region to another region's current state for the item an event names.

:func:`reconcile` reads the *source* region (where the change was made) as it is now and makes
the *target* region agree for that one item; it never replays the event's payload as state, so a
repeated, late or reordered event is harmless. What the event names decides what is read:

- ``push``, ``chart_push``, ``quarantine``: the manifest (its blobs, its child manifests and its
  large bytes first, so nothing in the target ever names what the target lacks; its subject need
  not exist, as referrers may precede subjects), the catalog row, then in one transaction of the
  repository's partition the manifest row, its referrer row, the tag row and the arrival event.
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
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError

from shared.events.model import ATTRIBUTES, CHART_DELETE, CHART_PUSH, DELETE, PUSH, QUARANTINE, UNTAG, RegistryEvent
from shared.events.outbox import Outbox
from shared.oci.digest import Digest
from shared.oci.manifest import Manifest, parse_manifest
from shared.replication.copy import copy_blob
from shared.replication.transfer import ensure_blob
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none, prefix_range
from shared.storage.rows import CatalogRow, ManifestRow, ReferrerRow, TagRow, etag_of

log = logging.getLogger("registry.replication")

PUSHES = frozenset({PUSH, CHART_PUSH, QUARANTINE})
DELETES = frozenset({DELETE, CHART_DELETE})
#: How many times one item's rows are re-read and re-decided after a concurrent writer changed them.
ATTEMPTS = 8
#: Blobs of one manifest copied at once.
PARALLEL_COPIES = 4
#: Index nesting followed (an index of indexes ...); content addressing rules out cycles.
MAX_DEPTH = 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONFLICTS = frozenset({"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ResourceNotFound"})
_IF_UNCHANGED = MatchConditions.IfNotModified


class ReplicationIncomplete(Exception):
    """The target could not be brought to the source's state this time (retried later)."""


@dataclass(frozen=True)
class Sides:
    """The two regions of one reconciliation: where the change was made, and where it goes."""

    source: Storage
    target: Storage
    source_region: str
    target_region: str


async def reconcile(sides: Sides, event: RegistryEvent) -> None:
    """Bring ``sides.target`` to ``sides.source``'s current state for the item ``event`` names;
    idempotent. ReplicationIncomplete (or a storage error) when it could not, to be retried."""
    handler = _HANDLERS.get(event.action)
    if handler is None:
        log.info("replication: nothing to do for action %s", event.action)
        return
    await handler(sides, event)


def arrival(event: RegistryEvent, sides: Sides, **target: Any) -> RegistryEvent:
    """The event announcing in the target that ``event``'s change arrived there (``target``
    overrides fields of the event's target); its id is the same for every attempt."""
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"replication:{event.id}:{sides.target_region}"))
    changed = replace(event.target, **target) if target else event.target
    return replace(event, id=event_id, target=changed, origin=sides.source_region)


def event_time(event: RegistryEvent) -> datetime:
    """The event's ``timestamp`` as a UTC datetime."""
    moment = datetime.fromisoformat(event.timestamp.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _when(moment: datetime | None) -> datetime:
    return moment if moment is not None else _EPOCH


def _conflict(error: TableTransactionError) -> bool:
    return str(getattr(error, "error_code", "")) in _CONFLICTS


# -- push ---------------------------------------------------------------------------------------

async def _push(sides: Sides, event: RegistryEvent) -> None:
    repository, digest = event.target.repository, event.target.digest
    partition = layout.encode_repository(repository)
    row = await get_or_none(sides.source.repos, partition, layout.manifest_key(digest), ManifestRow)
    if row is None:
        log.info("replication: %s@%s is no longer in %s", repository, digest, sides.source_region)
        return
    await _ensure_content(sides, row, 0)
    await _ensure_catalog(sides, repository)
    for _ in range(ATTEMPTS):
        if await _commit_push(sides, row, event):
            return
        row = await get_or_none(sides.source.repos, partition, layout.manifest_key(digest), ManifestRow) or row
    raise ReplicationIncomplete(f"{repository}@{digest} kept changing in {sides.target_region}")


async def _manifest_bytes(storage: Storage, row: ManifestRow) -> bytes:
    if row.content:
        return row.content
    blob = storage.container.get_blob_client(layout.manifest_blob(row.digest))
    return await (await blob.download_blob()).readall()


async def _ensure_content(sides: Sides, row: ManifestRow, depth: int) -> None:
    """Everything ``row``'s manifest references, present in the target: its blobs (linked into the
    repository), its child manifests (recursively, rows included) and its bytes kept as a blob."""
    raw = await _manifest_bytes(sides.source, row)
    manifest: Manifest = parse_manifest(raw, row.media_type, Digest.parse(row.digest).algorithm)
    limit = asyncio.Semaphore(PARALLEL_COPIES)

    async def blob(digest: Digest) -> None:
        async with limit:
            if await ensure_blob(sides.source, sides.target, digest, row.repository) is None:
                raise ReplicationIncomplete(f"blob {digest} of {row.repository}@{row.digest} is in neither region")

    await asyncio.gather(*(blob(d.digest) for d in manifest.blobs))
    if manifest.children and depth < MAX_DEPTH:
        partition = layout.encode_repository(row.repository)
        for child in manifest.children:
            child_row = await get_or_none(sides.source.repos, partition, layout.manifest_key(str(child.digest)),
                                          ManifestRow)
            if child_row is None:  # deleted in the source since: the index names it there too
                continue
            await _ensure_content(sides, child_row, depth + 1)
            await _create_manifest_row(sides, child_row)
    if not row.content:
        await _copy_manifest_blob(sides, row)


async def _copy_manifest_blob(sides: Sides, row: ManifestRow) -> None:
    name = layout.manifest_blob(row.digest)
    try:
        if (await sides.target.container.get_blob_client(name).get_blob_properties()).size == row.size:
            return
    except ResourceNotFoundError:
        pass
    await copy_blob(sides.source, name, sides.target, name, row.size)


async def _create_manifest_row(sides: Sides, row: ManifestRow) -> None:
    """A child manifest's row, copied if the target lacks it (with its referrer row; no event)."""
    ops: list[tuple[Any, ...]] = [("create", row.to_entity())]
    ops += await _referrer_ops(sides, row)
    try:
        await sides.target.repos.submit_transaction(ops)
    except TableTransactionError as error:
        if str(getattr(error, "error_code", "")) != "EntityAlreadyExists":
            raise


async def _referrer_ops(sides: Sides, row: ManifestRow) -> list[tuple[Any, ...]]:
    if not row.subject:
        return []
    referrer = await get_or_none(sides.source.repos, layout.encode_repository(row.repository),
                                 layout.referrer_key(row.subject, row.digest), ReferrerRow)
    return [] if referrer is None else [("upsert", referrer.to_entity(), {"mode": "replace"})]


async def _ensure_catalog(sides: Sides, repository: str) -> None:
    """The repository's catalog row in the target: the source's copied, or when both regions
    created one (the repository was first pushed in both), the earlier creation time in both."""
    key = layout.encode_repository(repository)
    row, there = await asyncio.gather(get_or_none(sides.source.repos, layout.CATALOG_PARTITION, key, CatalogRow),
                                      get_or_none(sides.target.repos, layout.CATALOG_PARTITION, key, CatalogRow))
    if there is None:
        try:
            await sides.target.repos.create_entity((row or CatalogRow(repository, datetime.now(UTC))).to_entity())
        except ResourceExistsError:
            pass
    elif row is not None and row.created is not None and row.created < _when(there.created):
        try:  # only the time: the target's lock flags are the attributes events' to change
            await sides.target.repos.update_entity(
                {"PartitionKey": layout.CATALOG_PARTITION, "RowKey": key, "created": row.created}, mode="merge",
                etag=there.etag, match_condition=_IF_UNCHANGED)
        except (ResourceModifiedError, ResourceNotFoundError):
            pass  # changed meanwhile: the next event of the repository tries again


def tag_wins(source: TagRow, target: TagRow | None) -> bool:
    """The converge rule for a tag: the source's row replaces the target's when its
    ``(updated, digest)`` is greater (or the target has none)."""
    return target is None or (_when(source.updated), source.digest) > (_when(target.updated), target.digest)


async def _commit_push(sides: Sides, row: ManifestRow, event: RegistryEvent) -> bool:
    """One attempt at the push's transaction in the target; False when a row changed meanwhile."""
    partition = layout.encode_repository(row.repository)
    tag = event.target.tag
    target_row, source_tag, target_tag = await asyncio.gather(
        get_or_none(sides.target.repos, partition, layout.manifest_key(row.digest), ManifestRow),
        _tag_row(sides.source, partition, tag), _tag_row(sides.target, partition, tag))
    ops: list[tuple[Any, ...]] = []
    if target_row is None:
        ops.append(("create", row.to_entity()))
        ops += await _referrer_ops(sides, row)
    elif _when(row.updated) > _when(target_row.updated):
        newer = replace(target_row, locks=row.locks, updated=row.updated)
        ops.append(("update", newer.to_entity(), {"mode": "replace", "etag": target_row.etag,
                                                   "match_condition": _IF_UNCHANGED}))
    tag_written = source_tag is not None and source_tag.digest == row.digest and tag_wins(source_tag, target_tag)
    if source_tag is not None and tag_written:
        if target_tag is None:
            ops.append(("create", source_tag.to_entity()))
        else:
            ops.append(("update", source_tag.to_entity(), {"mode": "replace", "etag": target_tag.etag,
                                                           "match_condition": _IF_UNCHANGED}))
    if target_row is None or tag_written:  # content or a tag arrived: the target's webhooks hear of it
        announced = arrival(event, sides) if tag_written or tag is None else arrival(event, sides, tag=None)
        ops.append(Outbox.row(partition, announced))
    if not ops:
        return True
    try:
        await sides.target.repos.submit_transaction(ops)
    except TableTransactionError as error:
        if _conflict(error):
            return False
        raise
    return True


async def _tag_row(storage: Storage, partition: str, tag: str | None) -> TagRow | None:
    if tag is None:
        return None
    return await get_or_none(storage.repos, partition, layout.tag_key(tag), TagRow)


# -- delete, untag ------------------------------------------------------------------------------

async def _delete(sides: Sides, event: RegistryEvent) -> None:
    repository, digest = event.target.repository, event.target.digest
    partition, key = layout.encode_repository(repository), layout.manifest_key(digest)
    if await get_or_none(sides.source.repos, partition, key, select=["RowKey"]) is not None:
        return  # pushed again in the source since: that push's event brings the target up to date
    deadline = event_time(event)
    for _ in range(ATTEMPTS):
        row = await get_or_none(sides.target.repos, partition, key, ManifestRow)
        if row is None or _when(row.updated) > deadline:
            return  # gone already, or pushed again in the target after the delete: the newer write wins
        await _delete_dependents(sides.target, partition, row)
        final: list[tuple[Any, ...]] = [("delete", {"PartitionKey": partition, "RowKey": key},
                                         {"etag": row.etag, "match_condition": _IF_UNCHANGED})]
        final.append(Outbox.row(partition, arrival(event, sides)))
        try:
            await sides.target.repos.submit_transaction(final)
            return
        except TableTransactionError as error:
            if not _conflict(error):
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
        await target.repos.delete_entity(partition, key, etag=etag, match_condition=_IF_UNCHANGED)
    except (ResourceModifiedError, ResourceNotFoundError):
        return False
    return True


async def _untag(sides: Sides, event: RegistryEvent) -> None:
    tag = event.target.tag
    if not tag:
        return
    partition = layout.encode_repository(event.target.repository)
    if await _tag_row(sides.source, partition, tag) is not None:
        return  # tagged again in the source since: that push's event brings the target up to date
    deadline = event_time(event)
    for _ in range(ATTEMPTS):
        row = await _tag_row(sides.target, partition, tag)
        if row is None or _when(row.updated) > deadline:
            return
        if await _delete_if_unchanged(sides.target, partition, layout.tag_key(tag), row.etag):
            return
    raise ReplicationIncomplete(f"tag {tag} of {event.target.repository} kept changing in {sides.target_region}")


# -- attributes ---------------------------------------------------------------------------------

LockedRow = CatalogRow | TagRow | ManifestRow


def _lock_key(row: LockedRow) -> tuple[datetime, tuple[bool, ...]]:
    """What orders two versions of a row's flags: its ``updated`` (a catalog row has none), then
    how locked it is (ties go to the more locked)."""
    updated = None if isinstance(row, CatalogRow) else row.updated
    return _when(updated), tuple(not row.locks.allows(flag) for flag in layout.LOCK_FLAGS)


async def _attributes(sides: Sides, event: RegistryEvent) -> None:
    t = event.target
    partition = layout.encode_repository(t.repository)
    kind: type[LockedRow]
    if t.tag:
        key, kind = layout.tag_key(t.tag), TagRow
    elif t.digest:
        key, kind = layout.manifest_key(t.digest), ManifestRow
    else:
        partition, key, kind = layout.CATALOG_PARTITION, partition, CatalogRow
    for _ in range(ATTEMPTS):
        source, target = await asyncio.gather(get_or_none(sides.source.repos, partition, key, kind),
                                              get_or_none(sides.target.repos, partition, key, kind))
        if source is None or target is None or _lock_key(source) <= _lock_key(target):
            return  # nothing to copy (the row's push brings its flags along), or the target's are newer
        changes: dict[str, Any] = {"locks": source.locks}
        if not isinstance(source, CatalogRow):
            changes["updated"] = source.updated
        try:
            await sides.target.repos.update_entity(replace(target, **changes).to_entity(), mode="replace",
                                                   etag=target.etag, match_condition=_IF_UNCHANGED)
            return
        except (ResourceModifiedError, ResourceNotFoundError):
            continue
    raise ReplicationIncomplete(f"the flags of {t.repository} kept changing in {sides.target_region}")


_HANDLERS: dict[str, Callable[[Sides, RegistryEvent], Awaitable[None]]] = {
    **{action: _push for action in PUSHES}, **{action: _delete for action in DELETES},
    UNTAG: _untag, ATTRIBUTES: _attributes,
}
