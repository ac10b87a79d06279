"""The core API as a capability: the distribution API, ``/acr/v1``, the token service and the admin
API (:mod:`shared.api.routes`), their request-time policies, the registry's and the identity
services they use, and the timer that purges abandoned uploads."""

from __future__ import annotations

from shared.api.policies import authorization, lock_check, mount_rewrite
from shared.api.routes import CORE_ROUTES
from shared.auth.service import AuthService
from shared.auth.store import IdentityStore
from shared.events.outbox import Outbox
from shared.kernel.configurator import Configurator
from shared.kernel.container import Container
from shared.kernel.jobs import Timer
from shared.kernel.operations import Operation
from shared.registry.blobs import BlobService
from shared.registry.discovery import DiscoveryService
from shared.registry.locks import LOCKED_OPERATIONS, LockService
from shared.registry.maintenance import purge_stale_uploads
from shared.registry.manifests import ManifestService
from shared.registry.metadata import MetadataService
from shared.registry.uploads import UploadService

#: Hourly: cancel uploads abandoned for longer than REGISTRY_UPLOAD_TTL_HOURS.
PURGE_STALE_UPLOADS = Timer("purge_stale_uploads", "0 17 * * * *", purge_stale_uploads)


def register(config: Configurator) -> None:
    """Add the core routes, their policies, services and timer."""
    config.add_routes(*CORE_ROUTES)
    config.add_policy(authorization, *Operation)  # a public route's access rule lets everyone through
    config.add_policy(mount_rewrite, Operation.START_UPLOAD)
    config.add_policy(lock_check, *LOCKED_OPERATIONS)
    config.add_service(BlobService, _blobs)
    config.add_service(UploadService, _uploads)
    config.add_service(ManifestService, _manifests)
    config.add_service(DiscoveryService, _discovery)
    config.add_service(LockService, _locks)
    config.add_service(MetadataService, _metadata)
    config.add_service(IdentityStore, _identities)
    config.add_service(AuthService, _auth)
    config.add_timer(PURGE_STALE_UPLOADS)


async def _blobs(container: Container) -> BlobService:
    return BlobService(container.storage, container.settings.registry.sas_ttl_seconds)


async def _uploads(container: Container) -> UploadService:
    return UploadService(container.storage, await container.get(BlobService),
                         container.settings.registry.upload_block_bytes)


async def _manifests(container: Container) -> ManifestService:
    return ManifestService(container.storage, await container.get(BlobService), await container.get(Outbox))


async def _discovery(container: Container) -> DiscoveryService:
    return DiscoveryService(container.storage)


async def _locks(container: Container) -> LockService:
    return LockService(container.storage)


async def _metadata(container: Container) -> MetadataService:
    return MetadataService(container.storage, await container.get(ManifestService), container.settings.registry.name,
                           await container.get(LockService))


async def _identities(container: Container) -> IdentityStore:
    return IdentityStore(container.storage.auth)


async def _auth(container: Container) -> AuthService:
    return AuthService(container.settings, await container.get(IdentityStore))
