"""A storage outage on demand: TCP relays in front of Azurite's blob and table services that can be
cut (connections refused, or accepted and never answered) and restored."""

from __future__ import annotations

import asyncio
import contextlib
from enum import Enum

from scripts.azurite import ACCOUNT, ACCOUNT_KEY, Azurite, free_port


class Cut(Enum):
    """How storage is gone."""

    REFUSED = "refused"  # nothing listens: connections are refused at once
    BLACK_HOLE = "black hole"  # connections are accepted, nothing is read or answered
    SERVER_BUSY = "server busy"  # every request is answered 503, as an overloaded front end does


class Relay:
    """Relays loopback TCP connections to one port, until it is cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.cut: Cut | None = None
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen (again)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut_off(self, how: Cut) -> None:
        """Break every open connection and answer new ones as ``how`` says."""
        self.cut = how
        if how is Cut.REFUSED and self._server is not None:
            self._server.close()
            self._server = None
        self._drop_all()

    async def restore(self) -> None:
        """Relay again."""
        self.cut = None
        self._drop_all()
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self._drop_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _drop_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        if self.cut is Cut.BLACK_HOLE:
            writer.transport.pause_reading()  # hold the connection; read nothing, answer nothing
            return
        if self.cut is Cut.SERVER_BUSY:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._open.add(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(256 * 1024):
                sink.write(data)
                await sink.drain()
        if self.cut:
            sink.transport.abort()
        else:
            sink.close()


class StorageOutage:
    """Relays in front of Azurite's blob, table and queue services, cut and restored together."""

    def __init__(self, azurite: Azurite) -> None:
        self.blob = Relay(azurite.blob_port)
        self.table = Relay(azurite.table_port)
        self.queue = Relay(azurite.queue_port)
        self.relays = (self.blob, self.table, self.queue)

    @property
    def connection_string(self) -> str:
        """A connection string whose endpoints are the relays."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob.port}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{self.table.port}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{self.queue.port}/{ACCOUNT};"
        )

    async def start(self) -> StorageOutage:
        """Start relaying."""
        for relay in self.relays:
            await relay.start()
        return self

    async def begin(self, how: Cut) -> None:
        """Storage goes away."""
        for relay in self.relays:
            await relay.cut_off(how)

    async def end(self) -> None:
        """Storage is back."""
        for relay in self.relays:
            await relay.restore()

    async def close(self) -> None:
        """Stop the relays."""
        for relay in self.relays:
            await relay.close()
