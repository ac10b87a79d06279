"""Turning staged blocks into content: committed at most once, verified, indexed, deduplicated.

The rules that keep every digest serving its own bytes:

- a data blob is committed at most once (``If-None-Match: *``) and only by the request that
  holds its upload (``shared/registry/uploads.py`` claims the session first);
- a committed blob carries ``digest`` metadata only once its bytes were verified against it,
  and only such a blob is ever indexed;
- the index row of a digest is created once and only repointed away from a copy that is
  missing or labelled with another digest;
- the only data blob this module deletes is one the caller has just committed and that the
  index does not name (a duplicate, or bytes that failed verification), and only while it is
  the version that was committed (``If-Match``).
"""

from __future__ import annotations

import logging

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.errors import Unavailable
from shared.oci.digest import Digest
from shared.registry.blobs import BlobInfo, BlobService
from shared.registry.errors import DigestMismatch, UploadInvalid
from shared.storage.blocks import (
    BlocksLost,
    commit_once,
    delete_if_unchanged,
    discard_staged,
    hash_committed,
)
from shared.storage.interfaces import Blob, Storage

log = logging.getLogger("registry.content")

_REPOINT_ATTEMPTS = 3


class ContentStore:
    """Commits an upload's staged blocks as the content of one digest and indexes it."""

    def __init__(self, storage: Storage, blobs: BlobService, read_piece: int) -> None:
        self.storage = storage
        self.blobs = blobs
        self.read_piece = read_piece

    async def store(self, blob: Blob, block_ids: list[str], digest: Digest, size: int,
                    verified: bool) -> BlobInfo:
        """Commit ``block_ids`` on ``blob`` as the content ``digest`` and return the index entry.

        ``verified`` says the staged bytes were already hashed to ``digest`` as they streamed;
        otherwise (another algorithm) the committed blob is read back and hashed. When the
        digest is already stored soundly, the new copy is dropped and the stored one returned.
        Raises UploadInvalid when the staged blocks are gone and DigestMismatch when
        the bytes do not match; neither leaves anything behind.
        """
        try:
            etag = await commit_once(blob, block_ids, {"digest": str(digest)} if verified else {})
        except BlocksLost:
            await discard_staged(blob)
            raise UploadInvalid("the upload's data is no longer stored; start the upload again") from None
        except ResourceExistsError:
            log.error("data blob %s was already committed; refusing to overwrite it", blob.blob_name)
            raise UploadInvalid("the upload cannot be completed") from None
        if not verified:
            actual = await hash_committed(blob, etag, digest.algorithm, size, self.read_piece)
            if actual != digest:
                await delete_if_unchanged(blob, etag)
                raise DigestMismatch(detail={"expected": str(digest), "actual": str(actual)})
            result = await blob.set_blob_metadata({"digest": str(digest)}, etag=etag,
                                                  match_condition=MatchConditions.IfNotModified)
            etag = str(result["etag"])
        return await self._index(BlobInfo(digest, size, blob.blob_name), blob, etag)

    async def settle(self, blob: Blob) -> None:
        """Resolve what an ended upload left in ``blob`` (the purge calls this).

        Staged blocks are dropped; committed, verified content (a completion that stopped
        between its commit and its index write) is indexed or, if another copy is indexed,
        deleted; committed bytes never verified are deleted.
        """
        try:
            props = await blob.get_blob_properties()
        except ResourceNotFoundError:
            await discard_staged(blob)
            return
        label = (props.metadata or {}).get("digest")
        if not label:
            await delete_if_unchanged(blob, str(props.etag))
            return
        await self._index(BlobInfo(Digest.parse(label), int(props.size), blob.blob_name), blob, str(props.etag))

    async def discard(self, blob: Blob) -> None:
        """Drop whatever an upload staged in ``blob`` without committing it."""
        await discard_staged(blob)

    async def _index(self, info: BlobInfo, blob: Blob, etag: str) -> BlobInfo:
        winner = await self.blobs.index(info)
        for _ in range(_REPOINT_ATTEMPTS):
            if winner.location == info.location:
                return info
            if await self.blobs.is_sound(winner):
                await delete_if_unchanged(blob, etag)  # a duplicate this request just committed
                return winner
            log.error("index entry of %s named unsound data %s; repointing it to %s",
                      info.digest, winner.location, info.location)
            winner = await self.blobs.repoint(info, winner)
        raise Unavailable("the blob index is changing; retry the upload")
