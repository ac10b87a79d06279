"""Staging a byte stream as the blocks of an Azure block blob, hashing it on the way, and
committing, discarding or re-reading what was staged.

Blocks are about ``block_size`` bytes; at most two are in flight while the next one fills, so
one stream holds about three blocks in memory whatever its length. A data blob is committed at
most once (``If-None-Match: *``): nothing here can change content that is already committed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, ContentSettings, StorageErrorCode

from shared.oci.digest import Digest, ResumableHash
from shared.storage.interfaces import Blob


def block_id(prefix: int, index: int) -> str:
    """The Azure block id of block ``index`` staged by the request with ``prefix``."""
    return base64.b64encode(f"{prefix:08x}{index:08x}".encode()).decode()


class BlockWriter:
    """Buffers a byte stream into blocks, hashing them and staging up to two at once."""

    def __init__(self, blob: Blob, hasher: ResumableHash, block_size: int) -> None:
        self.blob = blob
        self.hasher = hasher
        self.block_size = block_size
        self.prefix = secrets.randbits(32)
        self.blocks = 0
        self.written = 0
        self._parts: list[bytes] = []
        self._buffered = 0
        self._in_flight: list[asyncio.Task[object]] = []

    async def write(self, chunk: bytes) -> None:
        """Add ``chunk``; full blocks are hashed and staged as they fill.

        Received pieces are joined once per block (one copy of each byte); a block may exceed
        ``block_size`` by less than one piece, which Azure allows (blocks may differ in size).
        """
        if len(chunk) > self.block_size:  # a body handed over whole (Functions): cut it up
            for start in range(0, len(chunk), self.block_size):
                await self.write(chunk[start:start + self.block_size])
            return
        self._parts.append(chunk)
        self._buffered += len(chunk)
        if self._buffered >= self.block_size:
            await self._flush()

    async def close(self) -> None:
        """Stage what is buffered and wait until every block is stored."""
        if self._parts:
            await self._flush()
        try:
            await asyncio.gather(*self._in_flight)
        finally:
            self._in_flight.clear()

    async def _flush(self) -> None:
        block = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts.clear()
        self._buffered = 0
        await self._stage(block)

    async def abort(self) -> None:
        """Stop staging; what was staged stays uncommitted and is never referenced."""
        for task in self._in_flight:
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._in_flight.clear()

    async def _stage(self, block: bytes) -> None:
        await asyncio.to_thread(self.hasher.update, block)
        if len(self._in_flight) >= 2:
            await self._in_flight.pop(0)
        task = asyncio.ensure_future(
            self.blob.stage_block(block_id(self.prefix, self.blocks), block, length=len(block))
        )
        self._in_flight.append(task)
        self.blocks += 1
        self.written += len(block)


class BlocksLost(Exception):
    """A commit named blocks that storage no longer holds (expired, or the blob was removed)."""


async def commit_once(blob: Blob, block_ids: list[str], metadata: dict[str, str]) -> str:
    """Commit ``block_ids`` as ``blob`` only if no content is committed there yet; returns its ETag.

    Raises ``ResourceExistsError`` when the blob already holds committed content (which is
    left untouched) and :class:`BlocksLost` when a named block is no longer staged.
    """
    try:
        result = await blob.commit_block_list(
            [BlobBlock(block_id=b) for b in block_ids],
            content_settings=ContentSettings(content_type="application/octet-stream"),
            metadata=metadata,
            match_condition=MatchConditions.IfMissing,
        )
    except HttpResponseError as error:
        if getattr(error, "error_code", None) == StorageErrorCode.INVALID_BLOCK_LIST:
            raise BlocksLost(blob.blob_name) from None
        raise
    return str(result["etag"])


async def delete_if_unchanged(blob: Blob, etag: str) -> None:
    """Delete ``blob`` only while it is the very version ``etag`` (gone or changed: nothing)."""
    try:
        await blob.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
    except (ResourceNotFoundError, ResourceModifiedError):
        pass


async def discard_staged(blob: Blob) -> None:
    """Drop the uncommitted blocks staged on ``blob`` when it holds no committed content.

    Storage keeps uncommitted blocks for a week and has no call to delete them, so an empty
    block list is committed (only if nothing is committed: content is never touched) and that
    empty blob deleted. A request still staging afterwards leaves blocks that expire.
    """
    try:
        etag = await commit_once(blob, [], {})
    except ResourceExistsError:
        return
    await delete_if_unchanged(blob, etag)


async def hash_committed(blob: Blob, etag: str, algorithm: str, size: int, piece: int) -> Digest:
    """The ``algorithm`` digest of the committed version ``etag`` of ``blob`` (``size`` bytes).

    Read in ranges of ``piece`` bytes, the next one downloading while this one is hashed, so
    memory stays at about two pieces whatever the size.
    """
    hasher = hashlib.new(algorithm)

    async def fetch(offset: int) -> bytes:
        downloader = await blob.download_blob(offset=offset, length=min(piece, size - offset), etag=etag,
                                              match_condition=MatchConditions.IfNotModified)
        return bytes(await downloader.readall())

    offsets = range(0, size, piece)
    pending = asyncio.ensure_future(fetch(0)) if size else None
    try:
        for offset in offsets:
            assert pending is not None
            data = await pending
            pending = asyncio.ensure_future(fetch(offset + piece)) if offset + piece < size else None
            await asyncio.to_thread(hasher.update, data)  # hashlib releases the GIL on large buffers
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
    return Digest(algorithm, hasher.hexdigest())
