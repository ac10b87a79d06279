"""The geo-replication capability, declared in one place: its settings, its table and the
:class:`~shared.replication.regions.Regions` service. Off (settings only) with fewer than two regions."""

from __future__ import annotations

from shared.kernel.configurator import Application, Configurator
from shared.kernel.container import Container
from shared.registry.blobs import BlobService
from shared.registry.manifests import ManifestService
from shared.registry.uploads import UploadService
from shared.replication.regions import Regions
from shared.replication.serving import regional_blobs, regional_manifests
from shared.replication.sessions import regional_uploads
from shared.replication.settings import ReplicationSettings
from shared.storage import layout


def register(config: Configurator) -> None:
    """Add geo-replication: its settings, table and regions."""
    config.add_settings(ReplicationSettings)
    if not config.enabled(ReplicationSettings):
        return
    config.add_tables(layout.REPLICATION)
    config.add_service(Regions, _regions)
    config.decorate_service(BlobService, regional_blobs)
    config.decorate_service(ManifestService, regional_manifests)
    config.decorate_service(UploadService, regional_uploads)


async def _regions(container: Container) -> Regions:
    tables = (await container.get(Application)).tables
    every = (*layout.TABLES, *(t for t in tables if t not in layout.TABLES))
    return Regions(container.settings, container.storage, every)
