"""Reads a test's container and tables directly, to assert on what the registry stored."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.settings import Settings
from shared.storage.clients import StorageClients


class StorageProbe:
    """Lists every blob and table row under one storage prefix."""

    def __init__(self, settings: Settings) -> None:
        self.clients = StorageClients(settings)

    async def blobs(self) -> dict[str, int]:
        """Committed blob name -> size."""
        try:
            return {b.name: b.size async for b in self.clients.container.list_blobs()}
        except ResourceNotFoundError:
            return {}

    async def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` (``blobs``, ``uploads`` or ``repos``)."""
        client = getattr(self.clients, table)
        try:
            return [dict(e) async for e in client.list_entities()]
        except ResourceNotFoundError:
            return []

    async def snapshot(self) -> dict[str, Any]:
        """Everything stored: container blobs (``data``) and the keys of every table's rows."""
        return {
            "data": await self.blobs(),
            **{t: sorted((r["PartitionKey"], r["RowKey"]) for r in await self.rows(t))
               for t in ("blobs", "uploads", "repos")},
        }

    async def close(self) -> None:
        """Close the clients."""
        await self.clients.close()
