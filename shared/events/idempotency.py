"""Consumers are idempotent by event id: each records what it has processed in storage."""

from __future__ import annotations

from datetime import UTC, datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.storage import layout


class ProcessedEvents:
    """The event ids each consumer has processed, in the ``events`` table."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    async def seen(self, consumer: str, event_id: str) -> bool:
        """Whether ``consumer`` already processed ``event_id``."""
        try:
            await self.table.get_entity(layout.consumer_partition(consumer), event_id, select=["RowKey"])
        except ResourceNotFoundError:
            return False
        return True

    async def record(self, consumer: str, event_id: str) -> None:
        """Remember that ``consumer`` processed ``event_id`` (record after the effect: at least once)."""
        await self.table.upsert_entity(
            {"PartitionKey": layout.consumer_partition(consumer), "RowKey": event_id, "created": datetime.now(UTC)}
        )
