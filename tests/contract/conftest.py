"""One storage contract, two backends: every test here runs against Azurite through the Azure
clients and against the in-memory store, which unit tests use in Azurite's place."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from shared.storage.interfaces import Storage
from shared.storage.layout import TABLES, TableSpec
from shared.storage.memory import MemoryService, MemoryStorage
from tests.clock import ManualClock
from tests.conftest import unique_prefix


@dataclass
class Backend:
    """A backend's storage, and its notion of time: ``wait`` lets ``seconds`` pass (the in-memory
    store's clock is moved instead of sleeping)."""

    name: str
    open: Callable[[Sequence[TableSpec]], Storage]
    clock: ManualClock | None = None

    def __post_init__(self) -> None:
        self.storage = self.open(TABLES)

    def reopen(self, tables: Sequence[TableSpec]) -> Storage:
        """Another handle on the same account and prefix, listing ``tables``."""
        return self.open(tables)

    async def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass for the backend."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)

    def now(self) -> datetime:
        """The backend's current time."""
        return self.clock() if self.clock is not None else datetime.now(UTC)


@pytest.fixture(params=["azurite", "memory"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """The registry's container, tables and queues, created, in one of the two backends."""
    prefix = unique_prefix()
    chosen: Backend
    if request.param == "azurite":
        account = StorageAccount(prefix=prefix, connection_string=request.getfixturevalue("azurite").connection_string)
        chosen = Backend("azurite", lambda tables: StorageClients(account, tables))
    else:
        clock = ManualClock()
        service = MemoryService(clock=clock)
        chosen = Backend("memory", lambda tables: MemoryStorage(service, prefix, tables), clock)
    await chosen.storage.ensure()
    yield chosen
    await chosen.storage.close()
