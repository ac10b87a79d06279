"""A registry of several regions for the status tests: each region's app, an admin client of each,
and raw table access (the Azure SDK itself, not the registry's code) to write and read rows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import httpx
from azure.data.tables import TableServiceClient
from azure.data.tables.aio import TableClient
from starlette.applications import Starlette

from shared.composition import configure, create_app
from shared.replication.regions import Regions
from shared.settings import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Azurite, RunningAzurite, test_settings
from tests.replication.regions import region_settings


@dataclass
class World:
    """The regions of one registry, home first."""

    settings: dict[str, Settings]
    apps: dict[str, Starlette] = field(default_factory=dict)
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    @property
    def connection(self) -> str:
        """The connection string of the one Azurite every region uses."""
        return next(iter(self.settings.values())).storage.connection_string

    def table(self, region: str, name: str) -> TableClient:
        """A raw client of table ``name`` of ``region`` (the caller closes it)."""
        prefix = self.settings[region].storage.prefix
        return TableClient.from_connection_string(self.connection, f"{prefix}{name}")

    def create_table(self, region: str, name: str) -> None:
        """Create table ``name`` of ``region`` if it does not exist yet."""
        with TableServiceClient.from_connection_string(self.connection) as service:
            service.create_table_if_not_exists(f"{self.settings[region].storage.prefix}{name}")

    async def pending(self, source: str, target: str, event_id: str, queued: datetime) -> None:
        """A change made in ``source`` and not yet replicated to ``target``, as the replicator queues it."""
        self.create_table(source, "replication")
        async with self.table(source, "replication") as table:
            await table.create_entity({"PartitionKey": f"q|{target}", "RowKey": event_id,
                                       "event": json.dumps({"id": event_id, "action": "push"}), "queued": queued,
                                       "attempts": 0, "last_error": ""})

    async def rows(self, region: str, name: str, partition: str) -> dict[str, dict[str, Any]]:
        """The rows of one partition of table ``name`` of ``region``, by row key."""
        self.create_table(region, name)
        async with self.table(region, name) as table:
            return {str(e["RowKey"]): dict(e) async for e in table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition})}

    async def regions_of(self, region: str) -> Regions:
        """The Regions service of ``region``'s app."""
        container = await self.apps[region].state.open_container()
        regions: Regions = await container.get(Regions)
        return regions


def replicated_app(settings: Settings) -> Starlette:
    """The app of one region, with replication held back (no Event Grid consumers): the status
    tests write the pending rows they need themselves, and count the storage calls of a read."""
    return create_app(settings, replace(configure(environ=settings.source), consumers=()))


def single_region(azurite: Azurite | RunningAzurite, world: World, region: str) -> Settings:
    """Settings of a registry without replication over ``region``'s storage: what it stores
    there reaches no other region, whatever the replication capability does."""
    return test_settings(azurite, REGISTRY_STORAGE_PREFIX=world.settings[region].storage.prefix)


@asynccontextmanager
async def app_client(settings: Settings, app: Starlette | None = None
                     ) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app of ``settings`` (or ``app``) and an admin client of it; both closed afterwards."""
    app = app or create_app(settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                                     auth=(ADMIN_USER, ADMIN_PASSWORD)) as client:
            yield app, client
    finally:
        if app.state.registry is not None:
            await app.state.registry.close()


@asynccontextmanager
async def world_of(azurite: Azurite | RunningAzurite, names: Sequence[str] = ("east", "west")) -> AsyncIterator[World]:
    """The apps of regions ``names`` (home first) and an admin client of each."""
    world = World(region_settings(azurite, names))
    try:
        for name, settings in world.settings.items():
            world.apps[name] = replicated_app(settings)
            world.clients[name] = httpx.AsyncClient(transport=httpx.ASGITransport(app=world.apps[name]),
                                                    base_url="http://registry.test", auth=(ADMIN_USER, ADMIN_PASSWORD))
        yield world
    finally:
        for client in world.clients.values():
            await client.aclose()
        for app in world.apps.values():
            if app.state.registry is not None:
                await app.state.registry.close()
