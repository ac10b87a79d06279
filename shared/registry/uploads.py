"""Blob uploads: staged as Azure blocks, hashed as they stream, committed without a copy.

Each PATCH streams its body into Put Block calls of at most ``upload_block_bytes`` and feeds
the same bytes to a resumable hash whose state is saved with the upload, so the final PUT only
commits the block list (Put Block List) and compares digests: no data is re-read or copied
(except for a digest of another algorithm than the one hashed, see ``content.py``).

Block ids carry a random prefix chosen per request, so two requests racing on one upload never
overwrite each other's blocks; only the request whose state update wins (ETag) has its blocks
committed. The upload row records each request's prefix and block count.

A session ends once. Whatever ends it (the final PUT, a DELETE, a wrong digest, the purge)
first claims the row with the ETag it read, marking it ``ended``; a request that loses the
claim, or finds the row ended or gone, raises UploadUnknown. Only the claimant touches
the data blob, so a late request can neither overwrite committed content nor delete it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared.errors import Unavailable
from shared.oci.digest import Digest, ResumableHash
from shared.registry.blobs import BlobInfo, BlobService
from shared.registry.content import ContentStore
from shared.registry.errors import (
    DigestMismatch,
    SizeMismatch,
    UploadInvalid,
    UploadOutOfOrder,
    UploadUnknown,
)
from shared.storage import layout
from shared.storage.blocks import BlockWriter, block_id
from shared.storage.interfaces import Blob, Storage
from shared.storage.queries import get_or_none
from shared.storage.rows import MAX_SEGMENTS, UploadRow

_UPLOAD_ID_LENGTH = 32
_CANCEL_ATTEMPTS = 5
#: The state of one upload session, as stored in the uploads table.
Upload = UploadRow


def validate_upload_id(upload_id: str) -> str:
    """Return ``upload_id`` if it has the shape this registry issues, else UploadUnknown."""
    if len(upload_id) != _UPLOAD_ID_LENGTH or not all(c in "0123456789abcdef" for c in upload_id):
        raise UploadUnknown(detail={"uuid": upload_id[:64]})
    return upload_id


class UploadService:
    """Starts, appends to, completes, reports and cancels blob uploads."""

    def __init__(self, storage: Storage, blobs: BlobService, block_size: int) -> None:
        self.storage = storage
        self.blobs = blobs
        self.content = ContentStore(storage, blobs, block_size)
        self.block_size = block_size

    async def start(self, repository: str) -> Upload:
        """Open an upload session for ``repository``."""
        upload = Upload(id=uuid.uuid4().hex, repository=repository)
        meta = await self.storage.uploads.create_entity(upload.to_entity())
        return dataclasses.replace(upload, etag=meta["etag"])

    async def get(self, repository: str, upload_id: str) -> Upload:
        """The open upload ``upload_id`` of ``repository``; UploadUnknown otherwise."""
        validate_upload_id(upload_id)
        row = await get_or_none(self.storage.uploads, upload_id, "", Upload)
        if row is None or row.repository != repository or row.ended:
            raise UploadUnknown(detail={"uuid": upload_id})
        return row

    async def append(
        self, upload: Upload, body: AsyncIterator[bytes], start: int | None, length: int | None, save: bool = True
    ) -> Upload:
        """Stream ``body`` onto the end of ``upload`` and (when ``save``) store the new state.

        ``start`` (from ``Content-Range``) must equal the current offset; ``length`` (from
        ``Content-Length`` or the range) must match what arrives. Nothing changes on failure.
        A final PUT passes ``save=False``: its commit follows at once.
        """
        if start is not None and start != upload.offset:
            raise UploadOutOfOrder(upload.offset)
        if len(upload.segments) >= MAX_SEGMENTS:
            raise UploadInvalid("too many chunks in one upload; send larger chunks")
        hasher = ResumableHash(upload.algorithm, upload.hash_state)
        writer = await _stream(BlockWriter(self._data(upload), hasher, self.block_size), body, length)
        if writer.blocks == 0:
            return upload
        updated = dataclasses.replace(upload, offset=upload.offset + writer.written,
                                      segments=(*upload.segments, (writer.prefix, writer.blocks)),
                                      hash_state=hasher.state())
        return await self._save(updated) if save else updated

    async def complete(self, upload: Upload, expected: Digest) -> BlobInfo:
        """End the upload: commit its blocks as the blob ``expected`` and link it into the repository.

        The session is claimed (ETag) before anything is committed, so of several requests
        ending one upload exactly one goes on; the others raise UploadUnknown (UploadOutOfOrder if
        a PATCH moved the upload on meanwhile). A digest that does not match ends the upload
        (DigestMismatch); content already stored is linked instead of stored twice.
        """
        verified = expected.algorithm == upload.algorithm
        if verified:
            actual = ResumableHash(upload.algorithm, upload.hash_state).digest()
            if actual != expected:
                await self.cancel(upload, retry=False)
                raise DigestMismatch(detail={"expected": str(expected), "actual": str(actual)})
        claim = await self._claim(upload)
        try:
            info = await self.content.store(self._data(upload), upload.block_ids(), expected, upload.offset, verified)
        except (DigestMismatch, UploadInvalid):
            await self._forget(upload, claim)  # nothing of it was kept; otherwise the purge settles it
            raise
        await self.blobs.link(upload.repository, info)
        await self._forget(upload, claim)
        return info

    async def put_monolithic(
        self, repository: str, body: AsyncIterator[bytes], expected: Digest, length: int | None = None
    ) -> BlobInfo:
        """Store a whole blob sent in one request (POST with ``digest``) and link it.

        ``length`` (the declared ``Content-Length``) must match what arrives; nothing is
        stored otherwise, nor when the digest does not match.
        """
        blob = self._data(Upload(id=uuid.uuid4().hex, repository=repository))
        hasher = ResumableHash(expected.algorithm)
        try:
            writer = await _stream(BlockWriter(blob, hasher, self.block_size), body, length)
            actual = hasher.digest()
            if actual != expected:
                raise DigestMismatch(detail={"expected": str(expected), "actual": str(actual)})
        except BaseException:
            await self.content.discard(blob)
            raise
        blocks = [block_id(writer.prefix, i) for i in range(writer.blocks)]
        info = await self.content.store(blob, blocks, actual, writer.written, verified=True)
        await self.blobs.link(repository, info)
        return info

    async def cancel(self, upload: Upload, retry: bool = True) -> None:
        """End the upload and drop what it staged; UploadUnknown if it already ended.

        With ``retry``, a PATCH that moved the upload on meanwhile does not stop the cancel.
        """
        for _ in range(_CANCEL_ATTEMPTS if retry else 1):
            try:
                claim = await self._claim(upload)
                break
            except UploadOutOfOrder:
                if not retry:
                    raise
                upload = await self.get(upload.repository, upload.id)
        else:
            raise Unavailable("the upload keeps changing; retry the request")
        await self.content.discard(self._data(upload))
        await self._forget(upload, claim)

    async def purge_stale(self, older_than: timedelta) -> int:
        """End uploads untouched for ``older_than``; returns how many were purged.

        Each row is claimed like any other ending, so the purge never races a final PUT; what
        an interrupted completion left committed is indexed or removed, never lost.
        """
        cutoff = datetime.now(UTC) - older_than
        purged = 0
        rows = self.storage.uploads.query_entities(
            "Timestamp lt @cutoff", parameters={"cutoff": cutoff}, select=["PartitionKey", "repository"]
        )
        async for row in rows:
            upload = Upload.from_entity(row)  # only its keys, repository and ETag
            try:
                claim = await self._claim(upload)
            except (UploadOutOfOrder, UploadUnknown):
                continue  # in use, or ended by someone else meanwhile
            await self.content.settle(self._data(upload))
            await self._forget(upload, claim)
            purged += 1
        return purged

    def _data(self, upload: Upload) -> Blob:
        return self.storage.container.get_blob_client(layout.data_blob(upload.id))

    async def _save(self, upload: Upload) -> Upload:
        try:
            meta = await self.storage.uploads.update_entity(
                upload.to_entity(), mode="replace", etag=upload.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise await self._lost(upload) from None
        return dataclasses.replace(upload, etag=meta["etag"])

    async def _claim(self, upload: Upload) -> str:
        """Mark the session ended if it is still the version ``upload`` read; returns the new ETag."""
        try:
            meta = await self.storage.uploads.update_entity(
                upload.claim(), mode="merge", etag=upload.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise await self._lost(upload) from None
        return str(meta["etag"])

    async def _lost(self, upload: Upload) -> UploadUnknown | UploadOutOfOrder:
        """The error for a request whose view of ``upload`` is stale: ended, or moved on."""
        try:
            current = await self.get(upload.repository, upload.id)
        except UploadUnknown as error:
            return error
        return UploadOutOfOrder(current.offset, "the upload changed during this request")

    async def _forget(self, upload: Upload, claim: str) -> None:
        try:
            await self.storage.uploads.delete_entity(upload.id, "", etag=claim,
                                                     match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            pass  # the purge took over an ended row; it deletes it


async def _stream(writer: BlockWriter, body: AsyncIterator[bytes], length: int | None) -> BlockWriter:
    """Stage ``body`` through ``writer``, holding it to ``length`` when one was declared."""
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if length is not None and received > length:
                raise SizeMismatch("body is longer than its declared length")
            await writer.write(chunk)
        await writer.close()
    except BaseException:
        await writer.abort()
        raise
    if length is not None and writer.written != length:
        raise SizeMismatch("body is shorter than its declared length")
    return writer
