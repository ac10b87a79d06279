"""The geo-replication capability, declared in one place: its settings, its table, the
:class:`~shared.replication.regions.Regions` service, and the consumer that replicates each change
(with its retry timer). Off (settings only) with fewer than two regions."""

from __future__ import annotations

from shared.events.envelope import (
    ATTRIBUTES_CHANGED,
    CHART_DELETED,
    CHART_PUSHED,
    IMAGE_DELETED,
    IMAGE_PUSHED,
    TAG_DELETED,
)
from shared.kernel.configurator import Application, Configurator
from shared.kernel.container import Container
from shared.kernel.jobs import EventConsumer, Subscription, Timer
from shared.replication.consumer import Replicator, replicate, retry_replication
from shared.replication.regions import Regions
from shared.replication.settings import ReplicationSettings
from shared.storage import layout

#: The Event Grid subscription "replication": every change made here goes to every other region.
REPLICATE = EventConsumer(
    Subscription(name="replication", function_name="replicate",
                 included_event_types=(IMAGE_PUSHED, IMAGE_DELETED, CHART_PUSHED, CHART_DELETED, TAG_DELETED,
                                       ATTRIBUTES_CHANGED)),
    replicate,
)
#: Every minute: retry the changes not replicated within REGISTRY_REPLICATION_RETRY_SECONDS.
RETRY_REPLICATION = Timer("retry_replication", "0 * * * * *", retry_replication)


def register(config: Configurator) -> None:
    """Add geo-replication: its settings, table, regions, consumer and retry timer."""
    config.add_settings(ReplicationSettings)
    if not config.enabled(ReplicationSettings):
        return
    config.add_tables(layout.REPLICATION)
    config.add_service(Regions, _regions)
    config.add_service(Replicator, _replicator)
    config.add_consumer(REPLICATE)
    config.add_timer(RETRY_REPLICATION)


async def _regions(container: Container) -> Regions:
    tables = (await container.get(Application)).tables
    every = (*layout.TABLES, *(t for t in tables if t not in layout.TABLES))
    return Regions(container.settings, container.storage, every)


async def _replicator(container: Container) -> Replicator:
    return Replicator(await container.get(Regions), container.storage)
