"""The geo-replication capability, declared in one place: its settings, its table, the
:class:`~shared.replication.regions.Regions` service, identities kept in the home region, the status
API with the endpoint switch, reads and pushes across regions, and the consumer that replicates
each change to the other regions (with its retry timer). Off (settings only) with fewer than two
regions."""

from __future__ import annotations

from shared.api.routes import ADMIN_ACCESS
from shared.auth.store import IdentityStore
from shared.kernel.configurator import Application, Configurator
from shared.kernel.container import Container
from shared.kernel.operations import Operation
from shared.kernel.routes import Access, RouteSpec
from shared.registry.blobs import BlobService
from shared.registry.discovery import DiscoveryService
from shared.registry.manifests import ManifestService
from shared.registry.uploads import UploadService
from shared.replication import api
from shared.replication.consumer import REPLICATE, RETRY_REPLICATION, Replicator, replicator
from shared.replication.elsewhere import OtherRegions, other_regions
from shared.replication.endpoint import SWITCHED_OPERATIONS, endpoint_switch
from shared.replication.listing import regional_discovery
from shared.replication.regions import Regions
from shared.replication.serving import regional_blobs, regional_manifests
from shared.replication.sessions import regional_uploads
from shared.replication.settings import ReplicationSettings
from shared.replication.status import ReplicationStatus
from shared.storage import layout

# Status, endpoint switches, per-image presence and metrics (shared/replication/api.py).
_ALL = "/acr/admin/replications"
STATUS_ROUTES = tuple(RouteSpec(path, methods, handler, Operation.ADMIN, ADMIN_ACCESS) for path, methods, handler in (
    (_ALL, ("GET",), api.list_replications),
    (_ALL + "/images/{name:path}/{reference}", ("GET",), api.image),
    (_ALL + "/{region}", ("GET",), api.get_replication),
    (_ALL + "/{region}", ("PATCH",), api.update_replication),
    ("/acr/admin/metrics", ("GET",), api.metrics_text),
))
#: Anonymous: 200 while this region serves, 503 while its endpoint is switched off (the front door's probe).
HEALTH_ROUTE = RouteSpec("/acr/health", ("GET", "HEAD"), api.health, Operation.API_ROOT, Access.public())


def register(config: Configurator) -> None:
    """Add geo-replication: its settings, table, regions, home identities, consumer and retry timer."""
    config.add_settings(ReplicationSettings)
    if not config.enabled(ReplicationSettings):
        return
    config.add_tables(layout.REPLICATION)
    config.add_service(Regions, _regions)
    config.decorate_service(IdentityStore, _home_identities)
    # Status and the endpoint switch.
    config.add_service(ReplicationStatus, _status)
    config.add_routes(*STATUS_ROUTES, HEALTH_ROUTE)
    config.add_policy(endpoint_switch, *SWITCHED_OPERATIONS)
    # Reads and pushes across regions.
    config.add_service(OtherRegions, other_regions)
    config.decorate_service(BlobService, regional_blobs)
    config.decorate_service(ManifestService, regional_manifests)
    config.decorate_service(UploadService, regional_uploads)
    config.decorate_service(DiscoveryService, regional_discovery)
    # Replicating each change to the other regions.
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


async def _status(container: Container) -> ReplicationStatus:
    return ReplicationStatus(await container.get(Regions), container.settings)
