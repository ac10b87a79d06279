"""Bringing a pushed manifest into a region: what it references first, then its rows at once.

The blobs it references (linked into the repository), the manifests an index lists (with their
rows) and its bytes kept as a blob go first, so nothing in the target ever names what the target
lacks; its subject need not exist (referrers may precede subjects). Then the catalog row, then one
transaction of the repository's partition: the manifest row, its referrer row, the tag row and
the arrival event. The rules deciding each row are :mod:`shared.replication.sync`'s.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError

from shared.events.model import RegistryEvent
from shared.events.outbox import Outbox
from shared.oci.digest import Digest
from shared.oci.manifest import parse_manifest
from shared.replication.copy import copy_blob
from shared.replication.sides import (
    ATTEMPTS,
    IF_UNCHANGED,
    ReplicationIncomplete,
    Sides,
    arrival,
    conflict,
    verbatim,
    when,
)
from shared.replication.transfer import ensure_blob
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none
from shared.storage.rows import CatalogRow, ManifestRow, ReferrerRow, TagRow
from shared.storage.rows.base import moment

log = logging.getLogger("registry.replication")

#: Blobs of one manifest copied at once.
PARALLEL_COPIES = 4
#: Index nesting followed (an index of indexes ...); content addressing rules out cycles.
MAX_DEPTH = 4


def tag_wins(source: TagRow, target: TagRow | None) -> bool:
    """The converge rule of a tag: the source's row replaces the target's when its
    ``(updated, digest)`` is greater (or the target has none)."""
    return target is None or (when(source.updated), source.digest) > (when(target.updated), target.digest)


async def arrive(sides: Sides, event: RegistryEvent) -> None:
    """Bring the manifest ``event`` names (push, chart_push, quarantine) and its tag into the target."""
    repository, digest = event.target.repository, event.target.digest
    partition, key = layout.encode_repository(repository), layout.manifest_key(digest)
    row = await get_or_none(sides.source.repos, partition, key, ManifestRow)
    if row is None:
        log.info("replication: %s@%s is no longer in %s", repository, digest, sides.source_region)
        return
    await _ensure_content(sides, row, 0)
    await _ensure_catalog(sides, repository)
    for _ in range(ATTEMPTS):
        if await _commit(sides, row, event):
            return
        row = await get_or_none(sides.source.repos, partition, key, ManifestRow) or row
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
    manifest = parse_manifest(raw, row.media_type, Digest.parse(row.digest).algorithm)
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
            if child_row is None:  # deleted in the source since: the index names nothing there either
                continue
            await _ensure_content(sides, child_row, depth + 1)
            await _create_child(sides, child_row)
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


async def _create_child(sides: Sides, row: ManifestRow) -> None:
    """An index's child manifest row, copied if the target lacks it (with its referrer row; the
    child's own push event announces it)."""
    try:
        await sides.target.repos.submit_transaction([("create", row.to_entity()), *await _referrer_ops(sides, row)])
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
    row, there = await asyncio.gather(get_or_none(sides.source.repos, layout.CATALOG_PARTITION, key),
                                      get_or_none(sides.target.repos, layout.CATALOG_PARTITION, key))
    if there is None:
        try:
            await sides.target.repos.create_entity(
                verbatim(row) if row is not None else CatalogRow(repository, datetime.now(UTC)).to_entity())
        except ResourceExistsError:
            pass
        return
    created, created_there = moment(row or {}, "created"), moment(there, "created")
    if created is not None and created < when(created_there):
        try:  # only the time: the target's lock flags are the attributes events' to change
            await sides.target.repos.update_entity(
                {"PartitionKey": layout.CATALOG_PARTITION, "RowKey": key, "created": created}, mode="merge",
                etag=there.metadata["etag"], match_condition=IF_UNCHANGED)
        except (ResourceModifiedError, ResourceNotFoundError):
            pass  # changed meanwhile: the repository's next event tries again


async def _commit(sides: Sides, row: ManifestRow, event: RegistryEvent) -> bool:
    """One attempt at the push's transaction in the target; False when a row changed meanwhile."""
    partition, tag = layout.encode_repository(row.repository), event.target.tag
    target_row, source_tag, target_tag = await asyncio.gather(
        get_or_none(sides.target.repos, partition, layout.manifest_key(row.digest), ManifestRow),
        _tag_row(sides.source, partition, tag), _tag_row(sides.target, partition, tag))
    ops: list[tuple[Any, ...]] = []
    if target_row is None:
        ops += [("create", row.to_entity()), *await _referrer_ops(sides, row)]
    elif when(row.updated) > when(target_row.updated):
        newer = replace(target_row, locks=row.locks, updated=row.updated)
        ops.append(("update", newer.to_entity(), {"mode": "replace", "etag": target_row.etag,
                                                   "match_condition": IF_UNCHANGED}))
    # The tag follows the source only while it names this manifest there: a later push moved it
    # otherwise, and that push's own event carries it (with its manifest) to the target.
    tagged = source_tag if source_tag is not None and source_tag.digest == row.digest else None
    if tagged is not None and tag_wins(tagged, target_tag):
        if target_tag is None:
            ops.append(("create", tagged.to_entity()))
        else:
            ops.append(("update", tagged.to_entity(), {"mode": "replace", "etag": target_tag.etag,
                                                       "match_condition": IF_UNCHANGED}))
    else:
        tagged = None
    if target_row is None or tagged is not None:  # content or a tag arrived: the target's webhooks hear of it
        announced = arrival(event, sides) if tagged is not None or tag is None else arrival(event, sides, tag=None)
        ops.append(Outbox.row(partition, announced))
    if not ops:
        return True
    try:
        await sides.target.repos.submit_transaction(ops)
    except TableTransactionError as error:
        if conflict(error):
            return False
        raise
    return True


async def _tag_row(storage: Storage, partition: str, tag: str | None) -> TagRow | None:
    if tag is None:
        return None
    return await get_or_none(storage.repos, partition, layout.tag_key(tag), TagRow)
