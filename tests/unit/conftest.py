"""Unit tests of policy logic run over the in-memory store (``shared.storage.memory``), which
passes the same contract suite as Azurite (``tests/contract``); no Azurite is started for them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.storage.memory import MemoryService, MemoryStorage
from tests.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """The in-memory account's clock (row timestamps, queue visibility), moved by the test."""
    return ManualClock()


@pytest.fixture
async def memory(clock: ManualClock) -> AsyncIterator[MemoryStorage]:
    """The registry's container, tables and queues in a fresh in-memory account, created."""
    storage = MemoryStorage(MemoryService(clock=clock))
    await storage.ensure()
    yield storage
    await storage.close()
