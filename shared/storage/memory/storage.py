"""The registry's container, tables and queues in an in-memory account: the :class:`Storage`
of fast unit tests (end-to-end tests use Azurite and real clients)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceExistsError

from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.memory.blobs import MemoryContainer
from shared.storage.memory.queues import MemoryQueue
from shared.storage.memory.service import MemoryService
from shared.storage.memory.tables import MemoryTable
from shared.storage.tables import TableSlot


class MemoryStorage:
    """The registry's storage (as :class:`shared.storage.clients.StorageClients` opens it) in a
    :class:`MemoryService`. Several may share one service, as several processes share an account."""

    blobs = TableSlot[MemoryTable](layout.BLOBS)
    uploads = TableSlot[MemoryTable](layout.UPLOADS)
    repos = TableSlot[MemoryTable](layout.REPOS)
    webhooks = TableSlot[MemoryTable](layout.WEBHOOKS)
    events = TableSlot[MemoryTable](layout.EVENTS)
    auth = TableSlot[MemoryTable](layout.AUTH)

    def __init__(self, service: MemoryService | None = None, prefix: str = "registry",
                 tables: Sequence[layout.TableSpec] = layout.TABLES) -> None:
        self.service = service or MemoryService()
        self.prefix = prefix
        self.container = MemoryContainer(self.service, layout.container(prefix))
        self.tables: dict[str, MemoryTable] = {spec.name: MemoryTable(self.service, spec.table_name(prefix))
                                               for spec in tables}
        self.deliveries, self.poison = (self.queue(name) for name in layout.queues(prefix))

    def table(self, name: str) -> MemoryTable:
        """The table listed as ``name``."""
        return self.tables[name]

    def queue(self, name: str) -> MemoryQueue:
        """A client of queue ``name``."""
        return MemoryQueue(self.service, name)

    async def ensure(self) -> None:
        """Create the container, tables and queues that do not exist yet."""
        try:
            await self.container.create_container()
        except ResourceExistsError:
            pass
        for queue in (self.deliveries, self.poison):
            try:
                await queue.create_queue()
            except ResourceExistsError:
                pass
        for table in self.tables.values():
            self.service.tables.setdefault(table.table_name, {})

    async def read_url(self, blob_name: str, ttl_seconds: int) -> str:
        """A URL naming the blob (no server serves it: unit tests compare it)."""
        return f"{self.container.get_blob_client(blob_name).url}?ttl={ttl_seconds}"

    async def close(self) -> None:
        """Nothing to release."""


if TYPE_CHECKING:
    def _is_storage(storage: MemoryStorage) -> Storage:
        return storage  # mypy checks that the in-memory store has the interface of the Azure one
