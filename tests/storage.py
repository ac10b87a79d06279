"""Reads a test's container and tables directly, to assert on what the registry stored."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from shared.settings import Settings
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients

try:  # the queue SDK is only there once the registry uses queues
    from azure.storage.queue.aio import QueueServiceClient
except ImportError:  # pragma: no cover - depends on the installed packages
    QueueServiceClient = None


class StorageProbe:
    """Lists every blob, table row and queue message under one storage prefix."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prefix = settings.storage.prefix
        self.clients = StorageClients(StorageAccount.from_settings(settings))
        self._hashes: dict[tuple[str, str, str], str] = {}

    async def blobs(self) -> dict[str, int]:
        """Committed blob name -> size."""
        try:
            return {b.name: b.size async for b in self.clients.container.list_blobs()}
        except ResourceNotFoundError:
            return {}

    async def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` (``blobs``, ``uploads``, ``repos``, ``auth``, ...)."""
        client = getattr(self.clients, table)
        try:
            return [dict(e) async for e in client.list_entities()]
        except ResourceNotFoundError:
            return []

    async def snapshot(self, staged: bool = True) -> dict[str, Any]:
        """Everything stored under the prefix, to compare before and after a request.

        ``tables``: every non-empty table whose name starts with the prefix (listed, so new tables
        are covered), each as ``{(PartitionKey, RowKey): {property: value}}`` with every property but
        the service's metadata (Timestamp, ETag). ``blobs``: every blob of every container of the
        prefix, committed or not, with a SHA-256 of its content, its metadata and its block list
        (blocks staged but not committed show up there). ``queues``: the messages of every
        non-empty queue of the prefix.

        ``staged=False`` leaves out blocks staged but never committed (and blobs holding only
        such blocks): nobody can read them, no upload commits blocks it did not stage itself,
        and storage discards them after a week.
        """
        blobs = await self._blobs()
        if not staged:
            blobs = {name: {k: v for k, v in state.items() if k != "uncommitted"}
                     for name, state in blobs.items() if state["committed"] or "sha256" in state}
        return {"tables": await self._tables(), "blobs": blobs, "queues": await self._queues()}

    @staticmethod
    def is_empty(snapshot: dict[str, Any]) -> bool:
        """True when ``snapshot`` holds no row, blob or queue message."""
        return not snapshot["tables"] and not snapshot["blobs"] and not snapshot["queues"]

    async def _tables(self) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
        service = self.clients.table_service
        names = sorted([t.name async for t in service.list_tables() if t.name.startswith(self.prefix)])

        async def rows(name: str) -> dict[tuple[str, str], dict[str, Any]]:
            async with service.get_table_client(name) as table:
                return {(e["PartitionKey"], e["RowKey"]): {k: v for k, v in e.items()
                                                           if k not in ("PartitionKey", "RowKey")}
                        async for e in table.list_entities()}

        tables = dict(zip(names, await asyncio.gather(*(rows(n) for n in names)), strict=True))
        # An empty table (created when the registry opened) holds nothing.
        return {name[len(self.prefix):]: found for name, found in tables.items() if found}

    async def _blobs(self) -> dict[str, dict[str, Any]]:
        service = self.clients.blob_service
        listed: list[tuple[str, ContainerClient, Any]] = []
        async for container in service.list_containers(name_starts_with=self.prefix):
            client = service.get_container_client(container.name)
            suffix = container.name[len(self.prefix):]  # "" for the registry's own container
            async for blob in client.list_blobs(include=["metadata", "uncommittedblobs"]):
                listed.append((f"{suffix}/{blob.name}" if suffix else blob.name, client, blob))
        states = await asyncio.gather(*(self._blob_state(client, blob) for _, client, blob in listed))
        return {name: state for (name, _, _), state in zip(listed, states, strict=True)}

    async def _blob_state(self, container: ContainerClient, blob: Any) -> dict[str, Any]:
        client = container.get_blob_client(blob.name)
        committed, uncommitted = await client.get_block_list("all")
        state: dict[str, Any] = {
            "metadata": dict(blob.metadata or {}),
            "committed": [(b.id, b.size) for b in committed],
            "uncommitted": sorted((b.id, b.size) for b in uncommitted),
        }
        if committed or not uncommitted:  # a blob with only staged blocks has no content to read
            # Any write to a blob's content changes its ETag, so a hash is read once per ETag.
            key = (container.container_name, blob.name, blob.etag)
            if key not in self._hashes:
                digest = hashlib.sha256()
                stream = await client.download_blob()
                async for chunk in stream.chunks():
                    digest.update(chunk)
                self._hashes[key] = digest.hexdigest()
            state["sha256"] = self._hashes[key]
            state["size"] = blob.size
        return state

    async def _queues(self) -> dict[str, list[Any]]:
        connection = self.settings.storage.connection_string
        if QueueServiceClient is None or not connection or "QueueEndpoint=" not in connection:
            return {}
        queues: dict[str, list[Any]] = {}
        async with QueueServiceClient.from_connection_string(connection) as service:
            async for queue in service.list_queues(name_starts_with=self.prefix):
                client = service.get_queue_client(queue.name)
                properties = await client.get_queue_properties()
                # Peeking leaves the messages as they are; 32 is the most one peek returns.
                messages = [m.content for m in await client.peek_messages(max_messages=32)]
                if properties.approximate_message_count or messages:  # an empty queue holds nothing
                    queues[queue.name] = [properties.approximate_message_count, sorted(map(str, messages))]
        return queues

    async def close(self) -> None:
        """Close the clients."""
        await self.clients.close()

