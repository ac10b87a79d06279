"""The geo-replication capability, declared in one place: its settings, its table, the
:class:`~shared.replication.regions.Regions` service, identities kept in the home region, and the
consumer that replicates each change to the other regions (with its retry timer).
Off (settings only) with fewer than two regions."""

from __future__ import annotations

from shared.auth.store import IdentityStore
from shared.kernel.configurator import Application, Configurator
from shared.kernel.container import Container
from shared.replication.consumer import REPLICATE, RETRY_REPLICATION, Replicator, replicator
from shared.replication.regions import Regions
from shared.replication.settings import ReplicationSettings
from shared.storage import layout


def register(config: Configurator) -> None:
    """Add geo-replication: its settings, table, regions, home identities, consumer and retry timer."""
    config.add_settings(ReplicationSettings)
    if not config.enabled(ReplicationSettings):
        return
    config.add_tables(layout.REPLICATION)
    config.add_service(Regions, _regions)
    config.decorate_service(IdentityStore, _home_identities)
    config.add_service(Replicator, replicator)
    config.add_consumer(REPLICATE)
    config.add_timer(RETRY_REPLICATION)


async def _regions(container: Container) -> Regions:
    tables = (await container.get(Application)).tables
    every = (*layout.TABLES, *(t for t in tables if t not in layout.TABLES))
    return Regions(container.settings, container.storage, every)


async def _home_identities(container: Container, local: IdentityStore) -> IdentityStore:
    """Tokens, scope maps and role assignments of every region live in the home region's auth
    table, so a token created through any region's endpoint works in all of them."""
    regions = await container.get(Regions)
    if regions.local == regions.home:
        return local
    return IdentityStore((await regions.storage(regions.home)).auth)
