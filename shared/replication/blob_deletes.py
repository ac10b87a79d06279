"""Blob deletes across regions.

A blob DELETE (unlinking it from a repository) causes no event, so nothing would replicate it, and
the read fallback would keep serving the blob from any region that still links it. So a delete
made in one region is carried to the others at once, as part of the request: a tombstone
(``x|<repository>`` / ``l|<digest>``, :mod:`shared.replication.tombstones`) is written here first,
the blob is unlinked here, then in every other region whose link is not newer than the tombstone
(a push made there since is kept), each on condition of the link row it read. Once every region
has it gone the tombstone is deleted; a region that could not be reached leaves the tombstone in
place (the fallback then does not serve that region's copy; it expires after a week).

A DELETE of a blob not linked here but linked in another region (which the fallback serves)
deletes it there: what a client can read, it can delete.
"""

from __future__ import annotations

import logging
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared.api.boundary import is_unavailable
from shared.oci.digest import Digest
from shared.registry.blobs import BlobService
from shared.registry.errors import BlobUnknown
from shared.replication.elsewhere import OtherRegions
from shared.replication.sides import when
from shared.replication.tombstones import Tombstones
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none
from shared.storage.rows import LinkRow
from shared.storage.rows.base import etag_of, moment

log = logging.getLogger("registry.replication")


async def unlink_everywhere(local: BlobService, elsewhere: OtherRegions, repository: str, digest: Digest) -> None:
    """Unlink ``digest`` from ``repository`` here and in every other region (see the module
    docstring); BlobUnknown when no region links it."""
    tombstones = Tombstones(local.storage)
    key = layout.link_key(str(digest))
    etag, deleted = await tombstones.record(repository, key), await _recorded(tombstones, repository, key)
    found = True
    try:
        await local.unlink(repository, digest)
    except BlobUnknown:
        found = False
    complete = True
    for name in elsewhere.regions.others:
        try:
            removed = await _unlink_in(await elsewhere.storage(name), repository, digest, deleted)
        except Exception as error:
            if not is_unavailable(error):
                raise
            log.warning("region %s is unreachable: its link of %s stays hidden by a tombstone", name, digest)
            complete = False
            continue
        found = found or removed
    if complete:
        await tombstones.forget(repository, key, etag)
    if not found:
        raise BlobUnknown(detail={"digest": str(digest)})


async def link_hidden(local: Storage, repository: str, row: LinkRow) -> bool:
    """Whether another region's link ``row`` was deleted here since it was made (a tombstone)."""
    tombstone = await get_or_none(Tombstones(local).table, layout.tombstone_partition(repository),
                                  layout.link_key(row.digest))
    if tombstone is None:
        return False
    live = await Tombstones(local).live([tombstone])
    return any(moment >= when(row.linked) for moment in live.values())


async def _recorded(tombstones: Tombstones, repository: str, key: str) -> datetime:
    entity = await get_or_none(tombstones.table, layout.tombstone_partition(repository), key)
    deleted = None if entity is None else entity.get("deleted")
    return when(deleted if isinstance(deleted, datetime) else None)


async def _unlink_in(storage: Storage, repository: str, digest: Digest, deleted: datetime) -> bool:
    """Delete the region's link unless it is newer than ``deleted``; True when it had one."""
    partition, key = layout.encode_repository(repository), layout.link_key(str(digest))
    entity = await get_or_none(storage.repos, partition, key)
    if entity is None:
        return False
    if when(moment(entity, "linked")) > deleted:
        return True  # linked there again after this delete: it stays
    try:
        await storage.repos.delete_entity(partition, key, etag=etag_of(entity),
                                          match_condition=MatchConditions.IfNotModified)
    except (ResourceNotFoundError, ResourceModifiedError):
        pass  # gone meanwhile, or linked again: either way not ours to delete
    return True
