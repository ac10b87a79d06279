"""Region endpoint switches: whether each region's endpoint serves registry requests.

The switches live in the home region's ``replication`` table (PK ``_regions``, RK the region:
``{endpoint_enabled, updated}``); a region without a row is enabled. A process reads the whole
partition (one query, one row per region) at most once per :data:`CACHE_SECONDS` and answers from
memory in between, so the request-time check costs no storage call per request. A switch changed
through this process is seen by it at once; other processes see it within :data:`CACHE_SECONDS`.

When the home region's storage cannot be read, the switches last read stay in force (every region
enabled when none were ever read) and the read is not retried before the cache expires again: an
outage of the home region must not stop the other regions from serving, nor slow their requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.storage import layout
from shared.storage.interfaces import Storage, Table
from shared.storage.queries import partition_rows

log = logging.getLogger("registry.replication")

#: How long a process answers from the switches it read (seconds).
CACHE_SECONDS = 5.0
#: How long a read of the switches may take before the last known ones are used (seconds).
READ_TIMEOUT = 3.0


@dataclass(frozen=True)
class Switch:
    """One region's endpoint switch: on or off, and when it was last set (None: never)."""

    region: str
    enabled: bool = True
    updated: datetime | None = None


class EndpointSwitches:
    """The endpoint switches of every region, read from the home region and cached."""

    def __init__(self, home_storage: Callable[[], Awaitable[Storage]], ttl: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._home_storage = home_storage
        self._ttl = ttl
        self._clock = clock
        self._known: dict[str, Switch] = {}
        self._expires = float("-inf")
        self._lock = asyncio.Lock()

    async def _table(self) -> Table:
        return (await self._home_storage()).table(layout.REPLICATION.name)

    async def read(self) -> dict[str, Switch]:
        """Every switch that was ever set, read from storage now (storage errors propagate)."""
        table = await self._table()
        found: dict[str, Switch] = {}
        async for row in partition_rows(table, layout.REGIONS_PARTITION,
                                        select=["RowKey", "endpoint_enabled", "updated"]):
            region = str(row["RowKey"])
            updated = row.get("updated")
            found[region] = Switch(region, row.get("endpoint_enabled") is not False,
                                   updated if isinstance(updated, datetime) else None)
        self._remember(found)
        return found

    async def cached(self) -> dict[str, Switch]:
        """The switches as this process last read them, read again once the cache expired."""
        if self._clock() < self._expires:
            return self._known
        async with self._lock:
            if self._clock() < self._expires:
                return self._known
            try:
                return await asyncio.wait_for(self.read(), READ_TIMEOUT)
            except Exception as error:  # any failure to read keeps the last known switches
                log.warning("endpoint switches unreadable in the home region (%s); keeping the last known",
                            type(error).__name__)
                self._expires = self._clock() + self._ttl
                return self._known

    async def switch(self, region: str, fresh: bool = False) -> Switch:
        """The switch of ``region`` (cached, or read now when ``fresh``)."""
        known = await (self.read() if fresh else self.cached())
        return known.get(region) or Switch(region)

    async def is_enabled(self, region: str) -> bool:
        """True unless ``region``'s endpoint is switched off (cached; see the module docstring)."""
        return (await self.switch(region)).enabled

    async def set(self, region: str, enabled: bool) -> Switch:
        """Switch ``region``'s endpoint on or off; this process sees the change at once."""
        switch = Switch(region, enabled, datetime.now(UTC))
        await (await self._table()).upsert_entity(
            {"PartitionKey": layout.REGIONS_PARTITION, "RowKey": region, "endpoint_enabled": enabled,
             "updated": switch.updated}, mode="replace")
        async with self._lock:
            self._remember({**self._known, region: switch})
        return switch

    def _remember(self, switches: dict[str, Switch]) -> None:
        self._known = switches
        self._expires = self._clock() + self._ttl
