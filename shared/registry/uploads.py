"""Blob uploads: staged as Azure blocks, hashed as they stream, committed without a copy.

Each PATCH streams its body into Put Block calls of at most ``upload_block_bytes`` and feeds
the same bytes to a resumable hash whose state is saved with the upload, so the final PUT only
commits the block list (Put Block List) and compares digests: no data is re-read or copied.

Block ids carry a random prefix chosen per request, so two requests racing on one upload never
overwrite each other's blocks; only the request whose state update wins (ETag) has its blocks
committed. The upload row records each request's prefix and block count.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, ContentSettings
from azure.storage.blob.aio import BlobClient

from shared.errors import ErrorCode, RegistryError
from shared.oci.digest import Digest, ResumableHash
from shared.registry.blobs import BlobInfo, BlobService
from shared.storage import layout
from shared.storage.blocks import BlockWriter, block_id
from shared.storage.clients import StorageClients

_SEGMENT = struct.Struct(">II")  # (request prefix, blocks staged by that request)
MAX_SEGMENTS = 60_000 // _SEGMENT.size  # a binary table property holds at most 64 KiB
_UPLOAD_ID_LENGTH = 32


def validate_upload_id(upload_id: str) -> str:
    """Return ``upload_id`` if it has the shape this registry issues, else BLOB_UPLOAD_UNKNOWN."""
    if len(upload_id) != _UPLOAD_ID_LENGTH or not all(c in "0123456789abcdef" for c in upload_id):
        raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, detail={"uuid": upload_id[:64]})
    return upload_id


@dataclass
class Upload:
    """The state of one upload session, as stored in the uploads table."""

    id: str
    repository: str
    offset: int = 0
    segments: list[tuple[int, int]] = field(default_factory=list)
    algorithm: str = "sha256"
    hash_state: bytes | None = None
    etag: str | None = None

    def block_ids(self) -> list[str]:
        """Every block staged so far, in order."""
        return [block_id(prefix, i) for prefix, count in self.segments for i in range(count)]


class UploadService:
    """Starts, appends to, completes, reports and cancels blob uploads."""

    def __init__(self, storage: StorageClients, blobs: BlobService, block_size: int) -> None:
        self.storage = storage
        self.blobs = blobs
        self.block_size = block_size

    async def start(self, repository: str) -> Upload:
        """Open an upload session for ``repository``."""
        upload = Upload(id=uuid.uuid4().hex, repository=repository)
        meta = await self.storage.uploads.create_entity(self._entity(upload))
        upload.etag = meta["etag"]
        return upload

    async def get(self, repository: str, upload_id: str) -> Upload:
        """The upload ``upload_id`` of ``repository``; BLOB_UPLOAD_UNKNOWN otherwise."""
        validate_upload_id(upload_id)
        try:
            row = await self.storage.uploads.get_entity(upload_id, "")
        except ResourceNotFoundError:
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, detail={"uuid": upload_id}) from None
        if row["repository"] != repository:
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, detail={"uuid": upload_id})
        raw = bytes(row.get("segments") or b"")
        segments = [_SEGMENT.unpack_from(raw, i) for i in range(0, len(raw), _SEGMENT.size)]
        return Upload(
            id=upload_id,
            repository=repository,
            offset=int(row["offset"]),
            segments=segments,
            algorithm=str(row["algorithm"]),
            hash_state=bytes(row["hash_state"]) if row.get("hash_state") else None,
            etag=row.metadata["etag"],
        )

    async def append(
        self, upload: Upload, body: AsyncIterator[bytes], start: int | None, length: int | None, save: bool = True
    ) -> Upload:
        """Stream ``body`` onto the end of ``upload`` and (when ``save``) store the new state.

        ``start`` (from ``Content-Range``) must equal the current offset; ``length`` (from
        ``Content-Length`` or the range) must match what arrives. Nothing changes on failure.
        A final PUT passes ``save=False``: its commit follows at once.
        """
        if start is not None and start != upload.offset:
            raise RegistryError(ErrorCode.RANGE_INVALID, headers=range_headers(upload))
        if len(upload.segments) >= MAX_SEGMENTS:
            raise RegistryError(ErrorCode.BLOB_UPLOAD_INVALID, "too many chunks in one upload; send larger chunks")
        hasher = ResumableHash(upload.algorithm, upload.hash_state)
        writer = BlockWriter(self._data(upload), hasher, self.block_size)
        received = 0
        try:
            async for chunk in body:
                received += len(chunk)
                if length is not None and received > length:
                    raise RegistryError(ErrorCode.SIZE_INVALID, "body is longer than its declared length")
                await writer.write(chunk)
            await writer.close()
        except BaseException:
            await writer.abort()
            raise
        if length is not None and writer.written != length:
            raise RegistryError(ErrorCode.SIZE_INVALID, "body is shorter than its declared length")
        if writer.blocks == 0:
            return upload
        updated = Upload(
            id=upload.id,
            repository=upload.repository,
            offset=upload.offset + writer.written,
            segments=[*upload.segments, (writer.prefix, writer.blocks)],
            algorithm=upload.algorithm,
            hash_state=hasher.state(),
            etag=upload.etag,
        )
        return await self._save(updated) if save else updated

    async def complete(self, upload: Upload, expected: Digest) -> BlobInfo:
        """Commit the staged blocks as the blob ``expected`` and link it into the repository.

        A digest that does not match cancels the upload (DIGEST_INVALID). If the content is
        already stored, the new copy is dropped and the stored one linked.
        """
        hasher = ResumableHash(upload.algorithm, upload.hash_state)
        actual = hasher.digest()
        if actual != expected:
            await self.cancel(upload)
            raise RegistryError(
                ErrorCode.DIGEST_INVALID, detail={"expected": str(expected), "actual": str(actual)}
            )
        info = await self.commit(self._data(upload), upload.block_ids(), actual, upload.offset)
        await self.blobs.link(upload.repository, info)
        await self._delete_row(upload)
        return info

    async def commit(self, blob: BlobClient, block_ids: list[str], digest: Digest, size: int) -> BlobInfo:
        """Commit ``block_ids`` on ``blob`` as the content ``digest`` and index it (deduplicated)."""
        await blob.commit_block_list(
            [BlobBlock(block_id=b) for b in block_ids],
            content_settings=ContentSettings(content_type="application/octet-stream"),
            metadata={"digest": str(digest)},
        )
        info = BlobInfo(digest, size, blob.blob_name)
        winner = await self.blobs.index(info)
        if winner.location != info.location:
            await _delete_quietly(blob)
        return winner

    async def put_monolithic(self, repository: str, body: AsyncIterator[bytes], expected: Digest) -> BlobInfo:
        """Store a whole blob sent in one request (POST with ``digest``) and link it."""
        upload = Upload(id=uuid.uuid4().hex, repository=repository, algorithm=expected.algorithm)
        hasher = ResumableHash(expected.algorithm)
        writer = BlockWriter(self._data(upload), hasher, self.block_size)
        try:
            async for chunk in body:
                await writer.write(chunk)
            await writer.close()
        except BaseException:
            await writer.abort()
            await _delete_quietly(self._data(upload))
            raise
        actual = hasher.digest()
        if actual != expected:
            await _delete_quietly(self._data(upload))  # the blocks just staged, never to be committed
            raise RegistryError(ErrorCode.DIGEST_INVALID, detail={"expected": str(expected), "actual": str(actual)})
        blocks = [block_id(writer.prefix, i) for i in range(writer.blocks)]
        info = await self.commit(self._data(upload), blocks, actual, writer.written)
        await self.blobs.link(repository, info)
        return info

    async def cancel(self, upload: Upload) -> None:
        """Drop the upload and whatever it staged."""
        await self._delete_row(upload)
        await _delete_quietly(self._data(upload))

    async def purge_stale(self, older_than: timedelta) -> int:
        """Cancel uploads untouched for ``older_than``; returns how many were purged."""
        cutoff = datetime.now(UTC) - older_than
        purged = 0
        rows = self.storage.uploads.query_entities(
            "Timestamp lt @cutoff", parameters={"cutoff": cutoff}, select=["PartitionKey", "repository"]
        )
        async for row in rows:
            upload = Upload(id=row["PartitionKey"], repository=row["repository"])
            blob = self._data(upload)
            if not await self._is_indexed_content(blob):
                await _delete_quietly(blob)
            await self._delete_row(upload)
            purged += 1
        return purged

    async def _is_indexed_content(self, blob: BlobClient) -> bool:
        # A crash between commit and row delete leaves a committed blob that the index uses.
        try:
            props = await blob.get_blob_properties()
        except ResourceNotFoundError:
            return False
        digest = (props.metadata or {}).get("digest")
        if not digest:
            return False
        entry = await self.blobs.indexed(Digest.parse(digest))
        return entry is not None and entry.location == blob.blob_name

    def _data(self, upload: Upload) -> BlobClient:
        return self.storage.container.get_blob_client(layout.data_blob(upload.id))

    def _entity(self, upload: Upload) -> dict[str, object]:
        entity: dict[str, object] = {
            "PartitionKey": upload.id,
            "RowKey": "",
            "repository": upload.repository,
            "offset": upload.offset,
            "algorithm": upload.algorithm,
            "segments": b"".join(_SEGMENT.pack(*s) for s in upload.segments),
        }
        if upload.hash_state is not None:
            entity["hash_state"] = upload.hash_state
        return entity

    async def _save(self, upload: Upload) -> Upload:
        try:
            meta = await self.storage.uploads.update_entity(
                self._entity(upload), mode="replace", etag=upload.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            # Another request moved the upload on (or ended it) while this one streamed.
            raise RegistryError(ErrorCode.RANGE_INVALID, "the upload changed during this request") from None
        upload.etag = meta["etag"]
        return upload

    async def _delete_row(self, upload: Upload) -> None:
        try:
            await self.storage.uploads.delete_entity(upload.id, "")
        except ResourceNotFoundError:
            pass


async def _delete_quietly(blob: BlobClient) -> None:
    try:
        await blob.delete_blob()
    except ResourceNotFoundError:
        pass


def range_headers(upload: Upload) -> dict[str, str]:
    """The ``Range`` header reporting what an upload holds (``0-0`` when empty, as distribution does)."""
    return {"Range": f"0-{max(upload.offset - 1, 0)}"}
