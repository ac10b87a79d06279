"""Staging a byte stream as the blocks of an Azure block blob, hashing it on the way.

Blocks are about ``block_size`` bytes; at most two are in flight while the next one fills, so
one stream holds about three blocks in memory whatever its length.
"""

from __future__ import annotations

import asyncio
import base64
import secrets

from azure.storage.blob.aio import BlobClient

from shared.oci.digest import ResumableHash


def block_id(prefix: int, index: int) -> str:
    """The Azure block id of block ``index`` staged by the request with ``prefix``."""
    return base64.b64encode(f"{prefix:08x}{index:08x}".encode()).decode()


class BlockWriter:
    """Buffers a byte stream into blocks, hashing them and staging up to two at once."""

    def __init__(self, blob: BlobClient, hasher: ResumableHash, block_size: int) -> None:
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
