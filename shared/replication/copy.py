"""Copying a blob's bytes from one region's container to another's.

Server-side where storage allows: the target stages each block with Put Block From URL from a
short-lived read-only SAS URL of the source, so the bytes go from account to account without
passing through this process (Azurite does this too, for a source on the same Azurite). When the
target refuses to read the source (:func:`server_side_refused`), the bytes are streamed through
the process instead, a few bounded pieces at a time. Either way the blocks are committed once,
with the metadata, so the target blob exists only complete.

Block ids are a function of the block size and the block's index, so a copy that is repeated
(after a crash, or by a concurrent copier of the same digest) stages the same ids with the same
bytes, and a commit of the full list by any of them leaves one complete blob. Offsets and sizes
are Python ints throughout: a blob may exceed 2^32 bytes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobBlock, BlockState, ContentSettings

from shared.storage.interfaces import Blob, Storage

log = logging.getLogger("registry.replication")

MiB = 1024 * 1024

#: Bytes per block staged from the source's URL, and such blocks in flight at once. Azure takes
#: up to 4000 MiB per block; 32 MiB keeps each request well inside storage's timeouts and
#: Azurite's (see docs/benchmarks.md, *Replication copy*, for the figures behind the choice).
SERVER_BLOCK_BYTES = 32 * MiB
SERVER_IN_FLIGHT = 4
#: Bytes per block of the streamed fallback, and blocks in flight (each downloaded, then staged:
#: while one is staged the next downloads). Memory is about this many blocks, whatever the size.
STREAM_BLOCK_BYTES = 4 * MiB
STREAM_IN_FLIGHT = 4
#: Blocks one blob may have (Azure's limit); a bigger blob gets bigger blocks.
MAX_BLOCKS = 50_000
#: Seconds each block's SAS URL of the source is valid: storage begins reading within it.
SAS_TTL_SECONDS = 900
#: Error codes with which the target refuses to read the source: the copy is streamed instead.
REFUSED_CODES = frozenset({"CannotVerifyCopySource", "NotImplemented", "FeatureNotSupported"})


@dataclass(frozen=True)
class Blocks:
    """How ``size`` bytes are cut into the blocks of one blob: equal blocks of at least
    ``wanted`` bytes (more when the blob would otherwise need more than :data:`MAX_BLOCKS`), the
    last one shorter."""

    size: int
    wanted: int

    @property
    def block_bytes(self) -> int:
        """Bytes per block: ``wanted``, or a whole number of MiB that keeps within MAX_BLOCKS."""
        if self.size <= self.wanted * MAX_BLOCKS:
            return self.wanted
        return -(-self.size // (MAX_BLOCKS * MiB)) * MiB  # whole MiB, integer arithmetic

    @property
    def count(self) -> int:
        """How many blocks (none for an empty blob)."""
        return -(-self.size // self.block_bytes)

    def span(self, index: int) -> tuple[int, int]:
        """Offset and length of block ``index``."""
        offset = index * self.block_bytes
        return offset, min(self.block_bytes, self.size - offset)

    def block_id(self, index: int) -> str:
        """The id of block ``index``: the same for every copy cut the same way, and of the same
        length for every block size (Azure requires one length per blob)."""
        return base64.b64encode(f"{self.block_bytes:012x}{index:012x}".encode()).decode()

    def ids(self) -> list[str]:
        """Every block's id, in order."""
        return [self.block_id(index) for index in range(self.count)]


def server_side_refused(error: BaseException) -> bool:
    """Whether ``error`` says the target cannot copy from the source's URL: the source is not
    reachable from the target or its SAS is not accepted (``CannotVerifyCopySource``, at any
    status: separate Azurite instances, network rules, an expired or rejected SAS), or the
    storage does not do Put Block From URL (``NotImplemented``, ``FeatureNotSupported``, 501)."""
    if not isinstance(error, HttpResponseError):
        return False
    return getattr(error, "error_code", None) in REFUSED_CODES or error.status_code == 501


async def copy_blob(source: Storage, source_name: str, target: Storage, target_name: str, size: int,
                    metadata: dict[str, str] | None = None,
                    content_type: str = "application/octet-stream") -> None:
    """Copy blob ``source_name`` of ``source``'s container (``size`` bytes) to ``target_name`` in
    ``target``'s container, as a block blob committed once (with ``metadata``): the target blob
    exists only complete, and copying the same bytes to the same name twice leaves one blob.

    The blocks are staged server-side (Put Block From URL); when the target refuses that
    (:func:`server_side_refused`: ``CannotVerifyCopySource``, ``NotImplemented``,
    ``FeatureNotSupported`` or 501), they are streamed through this process in bounded pieces.
    Any other error is raised, leaving at most uncommitted blocks, which a later copy re-stages
    under the same ids (storage drops the rest after a week).
    """
    blob = target.container.get_blob_client(target_name)
    try:
        blocks = await _stage_server_side(source, source_name, blob, size)
    except HttpResponseError as error:
        if not server_side_refused(error):
            raise
        log.info("server-side copy of %s refused (%s): streaming it", source_name,
                 getattr(error, "error_code", None) or error.status_code)
        blocks = await _stage_streamed(source, source_name, blob, size)
    await blob.commit_block_list([BlobBlock(block_id=i, state=BlockState.LATEST) for i in blocks.ids()],
                                 content_settings=ContentSettings(content_type=content_type), metadata=metadata)


async def _stage_server_side(source: Storage, source_name: str, blob: Blob, size: int) -> Blocks:
    blocks = Blocks(size, SERVER_BLOCK_BYTES)

    async def stage(index: int) -> None:
        offset, length = blocks.span(index)
        url = await source.read_url(source_name, SAS_TTL_SECONDS)
        await blob.stage_block_from_url(blocks.block_id(index), url, source_offset=offset, source_length=length)

    await _each(blocks.count, stage, SERVER_IN_FLIGHT)
    return blocks


async def _stage_streamed(source: Storage, source_name: str, blob: Blob, size: int) -> Blocks:
    blocks = Blocks(size, STREAM_BLOCK_BYTES)
    reader = source.container.get_blob_client(source_name)

    async def stage(index: int) -> None:
        offset, length = blocks.span(index)
        data = await (await reader.download_blob(offset=offset, length=length)).readall()
        if len(data) != length:
            raise ValueError(f"{source_name}: read {len(data)} bytes at {offset}, expected {length}")
        await blob.stage_block(blocks.block_id(index), data, length=length)

    await _each(blocks.count, stage, STREAM_IN_FLIGHT)
    return blocks


async def _each(count: int, work: Callable[[int], Awaitable[None]], limit: int) -> None:
    """Run ``work(0)`` … ``work(count - 1)``, at most ``limit`` at once, in order of index; the
    first failure cancels the rest and is raised as itself."""
    indices = iter(range(count))

    async def worker() -> None:
        for index in indices:
            await work(index)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(limit, count)):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
