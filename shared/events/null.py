"""Null collaborators, for tools and tests that need a service but none of its events: a sink that
stores nothing and a publisher that accepts everything. Services never check for a missing one."""

from __future__ import annotations

from collections.abc import Sequence

from shared.events.model import RegistryEvent
from shared.kernel.interfaces import TransactionOperation


class NullEventSink:
    """An event sink that keeps no events."""

    def operations(self, partition: str, events: Sequence[RegistryEvent]) -> list[TransactionOperation]:
        """Nothing to store."""
        return []

    def committed(self, partition: str, events: Sequence[RegistryEvent]) -> None:
        """Nothing to publish."""


class NullPublisher:
    """A publisher that accepts every event and delivers none."""

    async def publish(self, events: Sequence[RegistryEvent]) -> None:
        """Accept ``events``."""

    async def close(self) -> None:
        """Nothing to release."""
