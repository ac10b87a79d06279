"""The registry's services wired over one storage account."""

from __future__ import annotations

from dataclasses import dataclass

from shared.auth.service import AuthService
from shared.auth.store import IdentityStore
from shared.events.outbox import Outbox
from shared.events.publisher import create_publisher
from shared.events.subscriptions import WEBHOOK_FANOUT
from shared.registry.blobs import BlobService
from shared.registry.discovery import DiscoveryService
from shared.registry.locks import LockService
from shared.registry.manifests import ManifestService
from shared.registry.metadata import MetadataService
from shared.registry.uploads import UploadService
from shared.settings import Settings
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from shared.webhooks.fanout import WebhookService


@dataclass
class Registry:
    """Every service of the registry, sharing one set of storage clients."""

    settings: Settings
    storage: StorageClients
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    discovery: DiscoveryService
    outbox: Outbox
    webhooks: WebhookService
    identities: IdentityStore
    auth: AuthService
    locks: LockService
    metadata: MetadataService

    @classmethod
    async def open(cls, settings: Settings) -> Registry:
        """Connect to storage, create the container and tables if needed, and wire the services."""
        storage = StorageClients(StorageAccount.from_settings(settings))
        try:
            await storage.ensure()
        except BaseException:
            await storage.close()
            raise
        blobs = BlobService(storage, settings.registry.sas_ttl_seconds)
        webhooks = WebhookService(storage, settings)
        # The in-process handlers of the local Event Grid: the plain functions the triggers call.
        publisher = create_publisher(settings, storage, {WEBHOOK_FANOUT: webhooks.handle_event})
        outbox = Outbox(storage, settings, publisher)
        manifests = ManifestService(storage, blobs, outbox)
        identities = IdentityStore(storage.auth)
        locks = LockService(storage)
        return cls(
            settings=settings,
            storage=storage,
            blobs=blobs,
            uploads=UploadService(storage, blobs, settings.registry.upload_block_bytes),
            manifests=manifests,
            discovery=DiscoveryService(storage),
            outbox=outbox,
            webhooks=webhooks,
            identities=identities,
            auth=AuthService(settings, identities),
            locks=locks,
            metadata=MetadataService(storage, manifests, settings.registry.name, locks),
        )

    async def close(self) -> None:
        """Let background event publications finish (bounded), then close every client."""
        await self.outbox.close()
        await self.webhooks.close()
        await self.storage.close()
