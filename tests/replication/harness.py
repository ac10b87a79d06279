"""Registries of several regions in one test process: each region's app (replication on), a client
of it, events delivered to its replicator by hand, and what each region stored, read directly."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
from azure.core.exceptions import ResourceNotFoundError
from starlette.applications import Starlette

from shared.composition import Registry, configure, create_app
from shared.events.envelope import to_event_grid
from shared.events.model import RegistryEvent, Target, timestamp_now
from shared.kernel.configurator import Application
from shared.replication.consumer import Replicator, replicate
from shared.replication.regions import Regions
from shared.settings import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.manifest_helpers import encode, registry_of_app
from tests.replication.regions import region_settings
from tests.storage import StorageProbe


@dataclass
class RegionApp:
    """One region of the test registry: its settings, app, admin client, registry and storage probe."""

    name: str
    settings: Settings
    app: Starlette
    client: httpx.AsyncClient
    registry: Registry
    probe: StorageProbe

    async def replicator(self) -> Replicator:
        """The region's replicator (its container's)."""
        return await self.registry.container.get(Replicator)

    async def regions(self) -> Regions:
        """The region's view of every region."""
        return await self.registry.container.get(Regions)

    async def deliver(self, event: RegistryEvent) -> None:
        """Deliver ``event`` to this region's ``replicate`` function, as Event Grid would."""
        await replicate(self.registry.container, to_event_grid(event, "testlocation", None))

    async def settle(self) -> None:
        """Wait for the events published so far (and so the replication they cause) to be handled."""
        await self.registry.outbox.settle()

    async def pending(self) -> list[dict[str, Any]]:
        """Every row of the region's ``replication`` table."""
        return await pending_rows(self.probe)

    async def rows(self, repository: str) -> dict[str, dict[str, Any]]:
        """The region's rows of ``repository`` (see :func:`repository_rows`)."""
        return await repository_rows(self.probe, repository)

    async def outbox(self, repository: str) -> list[dict[str, Any]]:
        """The region's outbox rows of ``repository``."""
        return [row for row in await self.probe.rows("repos")
                if row["PartitionKey"] == encode(repository) and row["RowKey"].startswith("o|")]

    async def linked_blob_hashes(self, repository: str) -> dict[str, str]:
        """digest -> sha256 of each blob linked into ``repository`` (see :func:`linked_blob_hashes`)."""
        return await linked_blob_hashes(self.probe, repository)

    async def tag_digest(self, repository: str, tag: str) -> str | None:
        """The digest the region's tag row names (None without one)."""
        row = (await self.rows(repository)).get(f"t|{tag}")
        return None if row is None else str(row["digest"])


async def pending_rows(probe: StorageProbe) -> list[dict[str, Any]]:
    """Every row of a region's ``replication`` table (none when it has no such table yet)."""
    async with probe.clients.table_service.get_table_client(f"{probe.prefix}replication") as table:
        try:
            return [dict(e) async for e in table.list_entities()]
        except ResourceNotFoundError:
            return []


async def repository_rows(probe: StorageProbe, repository: str) -> dict[str, dict[str, Any]]:
    """A region's rows of ``repository`` by row key (outbox rows left out; a link row without its
    location and time, which are the region's own), plus its catalog row as ``catalog``."""
    found: dict[str, dict[str, Any]] = {}
    for row in await probe.rows("repos"):
        if row["PartitionKey"] == "_catalog" and row["RowKey"] == encode(repository):
            found["catalog"] = row
        elif row["PartitionKey"] == encode(repository) and not row["RowKey"].startswith("o|"):
            skip = ("location", "linked") if row["RowKey"].startswith("l|") else ()
            found[row["RowKey"]] = {k: v for k, v in row.items() if k not in skip}
    return found


async def linked_blob_hashes(probe: StorageProbe, repository: str) -> dict[str, str]:
    """digest -> sha256 (computed here) of the bytes each blob linked into ``repository`` holds."""
    hashes = {}
    for row in await probe.rows("repos"):
        if row["PartitionKey"] == encode(repository) and row["RowKey"].startswith("l|"):
            blob = probe.clients.container.get_blob_client(row["location"])
            data = await (await blob.download_blob()).readall()
            hashes[row["RowKey"][2:]] = "sha256:" + hashlib.sha256(data).hexdigest()
    return hashes


def replicating(settings: Settings, auto: bool) -> Application:
    """The registry's capabilities with replication on (as ``settings`` configure it); without
    ``auto`` the ``replicate`` consumer is left out, so that tests deliver its events by hand."""
    application = configure(environ=settings.source)
    if auto:
        return application
    return replace(application, consumers=tuple(c for c in application.consumers if c.function_name != "replicate"))


@asynccontextmanager
async def regions_of(azurite: Any, names: Sequence[str] = ("east", "west"), auto: bool = True,
                     **env: str) -> AsyncIterator[dict[str, RegionApp]]:
    """Every region's app of one registry (see :func:`replicating` for ``auto``)."""
    settings = region_settings(azurite, names, **env)
    opened: dict[str, RegionApp] = {}
    try:
        for name, region in settings.items():
            app = create_app(region, replicating(region, auto))
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}.test",
                                       auth=(ADMIN_USER, ADMIN_PASSWORD))
            opened[name] = RegionApp(name, region, app, client, await registry_of_app(app), StorageProbe(region))
        yield opened
    finally:
        for region_app in opened.values():
            await region_app.settle()
            await region_app.client.aclose()
            await region_app.registry.close()
            await region_app.probe.close()


def event(action: str, repository: str, digest: str, tag: str | None = None, media_type: str | None = None,
          timestamp: str | None = None) -> RegistryEvent:
    """An event of a change a client made, built by hand (a new id, now unless ``timestamp``)."""
    return RegistryEvent(str(uuid.uuid4()), timestamp or timestamp_now(), action,
                         Target(repository, digest, media_type, None, tag))
