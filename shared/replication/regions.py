"""The regions of a replicated registry and the storage of each, opened once per process.

The local region's storage is the container's own (:attr:`Container.storage`); every other
region's clients are opened on first use, with the same layout (``shared/storage/layout.py``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared.replication.settings import RegionConfig, ReplicationSettings
from shared.replication.switches import EndpointSwitches
from shared.settings import Settings
from shared.storage import layout
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from shared.storage.interfaces import Storage
from shared.storage.layout import TableSpec


@dataclass(frozen=True)
class Region:
    """One region: its name, its storage account and its registry endpoint."""

    name: str
    account: StorageAccount
    endpoint: str


class UnknownRegion(LookupError):
    """A region name that is not one of the registry's regions."""


class Regions:
    """The registry's regions (home first) and their storage, as seen from the local region."""

    def __init__(self, settings: Settings, local_storage: Storage,
                 tables: tuple[TableSpec, ...] = layout.TABLES) -> None:
        group = settings.group(ReplicationSettings)
        self.local = group.local
        own = StorageAccount.from_settings(settings)
        self.regions: dict[str, Region] = {c.name: _region(c, own) for c in group.regions}
        self.home = next(iter(self.regions), self.local)
        self._tables = tables
        self._storage: dict[str, Storage] = {self.local: local_storage}
        self._opened: list[StorageClients] = []
        self._lock = asyncio.Lock()
        #: The regions' endpoint switches, kept in the home region (see :mod:`shared.replication.switches`).
        self.switches = EndpointSwitches(lambda: self.storage(self.home))

    @property
    def names(self) -> tuple[str, ...]:
        """Every region, home first."""
        return tuple(self.regions)

    @property
    def others(self) -> tuple[str, ...]:
        """Every region but the local one, in the order listed."""
        return tuple(name for name in self.regions if name != self.local)

    def region(self, name: str) -> Region:
        """The region ``name``; UnknownRegion when the registry has none of that name."""
        try:
            return self.regions[name]
        except KeyError:
            raise UnknownRegion(name) from None

    async def is_enabled(self, name: str) -> bool:
        """True unless region ``name``'s endpoint is switched off (cached for a few seconds, so it
        costs no storage call per request); UnknownRegion for a name the registry lacks."""
        self.region(name)
        return await self.switches.is_enabled(name)

    async def storage(self, name: str) -> Storage:
        """The storage of region ``name`` (opened, with its container and tables created, on first use)."""
        found = self._storage.get(name)
        if found is not None:
            return found
        region = self.region(name)
        async with self._lock:
            found = self._storage.get(name)
            if found is not None:
                return found
            clients = StorageClients(region.account, self._tables)
            try:
                await clients.ensure()
            except BaseException:
                await clients.close()
                raise
            self._opened.append(clients)
            self._storage[name] = clients
            return clients

    async def close(self) -> None:
        """Close the clients of the other regions (the local storage belongs to the container)."""
        for clients in self._opened:
            await clients.close()
        self._opened.clear()


def _region(config: RegionConfig, own: StorageAccount) -> Region:
    """The region a settings entry describes; the local entry without storage is the app's own account."""
    if not config.has_storage:
        return Region(config.name, own, config.endpoint)
    account = StorageAccount(
        prefix=config.prefix or own.prefix, connection_string=config.connection_string,
        blob_endpoint=config.blob_endpoint, table_endpoint=config.table_endpoint,
        queue_endpoint=config.queue_endpoint,
    )
    return Region(config.name, account, config.endpoint)
