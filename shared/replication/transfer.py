"""Bringing one blob into a region: copy its bytes from a region that has them, index and link it.

Idempotent and safe to repeat or race: the copy goes to the one name of its digest
(:func:`~shared.storage.layout.replicated_blob`), the index row is only ever created (or repointed
from a copy that is not sound), and a copy the index did not take is deleted.
"""

from __future__ import annotations

import logging

from azure.core.exceptions import ResourceNotFoundError

from shared.oci.digest import Digest
from shared.registry.blobs import BlobInfo, BlobService
from shared.replication.copy import copy_blob
from shared.storage import layout
from shared.storage.interfaces import Storage

log = logging.getLogger("registry.replication")


async def ensure_blob(source: Storage, target: Storage, digest: Digest, repository: str | None = None,
                      sas_ttl_seconds: int = 600) -> BlobInfo | None:
    """Make ``digest`` present (sound and indexed) in ``target``, copying it from ``source`` when
    ``target`` lacks it, and link it into ``repository`` there when one is given.

    Returns the target's entry, or None when neither region has a sound copy.
    """
    here = BlobService(target, sas_ttl_seconds)
    found = await here.indexed(digest)
    if found is None or not await here.is_sound(found):
        there = BlobService(source, sas_ttl_seconds)
        original = await there.indexed(digest)
        if original is None or not await there.is_sound(original):
            return None
        name = layout.replicated_blob(str(digest))
        await copy_blob(source, original.location, target, name, original.size, metadata={"digest": str(digest)})
        copied = BlobInfo(digest, original.size, name)
        held = await here.index(copied) if found is None else await here.repoint(copied, found)
        if held.location != name:
            log.info("region already holds %s at %s: dropping the copy", digest, held.location)
            try:
                await target.container.get_blob_client(name).delete_blob()
            except ResourceNotFoundError:
                pass
        found = held
    if repository is not None:
        await here.link(repository, found)
    return found
