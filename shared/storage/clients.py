"""The Azure Storage clients of one storage account, and read-only SAS URLs for its blobs.

Storage calls raise the Azure SDK's own errors (``ResourceNotFoundError``,
``ResourceExistsError``, ``ResourceModifiedError``); the services translate them, because only
they know whether a missing key is a blob, a manifest or an upload.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.blob import BlobSasPermissions, UserDelegationKey, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.settings import Settings
from shared.storage import layout

# azure-core's aiohttp sessions otherwise trust the environment: every storage call then reads
# ~/.netrc and the proxy variables on a worker thread, about a third of a manifest GET's CPU
# (docs/benchmarks.md). Storage traffic goes straight to the account, never through a proxy.
_TRANSPORT: dict[str, Any] = {"use_env_settings": False}


class StorageClients:
    """Async clients for the registry's container and tables in one storage account."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._credential: Any = None
        if settings.storage_connection_string:
            self.blob_service = BlobServiceClient.from_connection_string(
                settings.storage_connection_string, **_TRANSPORT
            )
            self.table_service = TableServiceClient.from_connection_string(
                settings.storage_connection_string, **_TRANSPORT
            )
            self.queue_service = QueueServiceClient.from_connection_string(
                settings.storage_connection_string, **_TRANSPORT
            )
        else:
            from azure.identity.aio import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
            self.blob_service = BlobServiceClient(settings.blob_endpoint, credential=self._credential, **_TRANSPORT)
            self.table_service = TableServiceClient(settings.table_endpoint, credential=self._credential, **_TRANSPORT)
            self.queue_service = QueueServiceClient(settings.queue_service_url, credential=self._credential,
                                                    **_TRANSPORT)
        prefix = settings.storage_prefix
        self.container: ContainerClient = self.blob_service.get_container_client(layout.container(prefix))
        self.blobs: TableClient = self.table_service.get_table_client(layout.blobs_table(prefix))
        self.uploads: TableClient = self.table_service.get_table_client(layout.uploads_table(prefix))
        self.repos: TableClient = self.table_service.get_table_client(layout.repos_table(prefix))
        self.webhooks: TableClient = self.table_service.get_table_client(layout.webhooks_table(prefix))
        self.events: TableClient = self.table_service.get_table_client(layout.events_table(prefix))
        self.auth: TableClient = self.table_service.get_table_client(layout.auth_table(prefix))
        self.deliveries = self.queue(layout.delivery_queue(prefix))
        self.poison = self.queue(layout.poison_queue(layout.delivery_queue(prefix)))
        self._delegation_key: UserDelegationKey | None = None
        self._delegation_expiry = datetime.min.replace(tzinfo=UTC)
        self._delegation_lock = asyncio.Lock()

    def queue(self, name: str) -> QueueClient:
        """A client of queue ``name`` whose messages are base64 text, as the Functions host's queue
        trigger reads them by default (the caller closes it, unless it is one of this object's)."""
        return self.queue_service.get_queue_client(name, message_encode_policy=TextBase64EncodePolicy(),
                                                   message_decode_policy=TextBase64DecodePolicy())

    async def ensure(self) -> None:
        """Create the container, tables and queues if they do not exist yet."""
        try:
            await self.container.create_container()
        except ResourceExistsError:
            pass
        for queue in (self.deliveries, self.poison):
            try:
                await queue.create_queue()
            except ResourceExistsError:
                pass
        for table in (self.blobs, self.uploads, self.repos, self.webhooks, self.events, self.auth):
            try:
                await self.table_service.create_table(table.table_name)
            except ResourceExistsError:
                pass

    async def close(self) -> None:
        """Close every client and the credential."""
        for client in (self.blobs, self.uploads, self.repos, self.webhooks, self.events, self.auth, self.container,
                       self.deliveries, self.poison):
            await client.close()
        await self.blob_service.close()
        await self.table_service.close()
        await self.queue_service.close()
        if self._credential is not None:
            await self._credential.close()

    async def read_url(self, blob_name: str) -> str:
        """A short-lived, read-only SAS URL of one blob.

        With an account key (Azurite, connection strings) the SAS is signed with the key; with a
        managed identity it is a user-delegation SAS, whose key is cached and renewed.
        """
        now = datetime.now(UTC)
        expiry = now + timedelta(seconds=self.settings.sas_ttl_seconds)
        start = now - timedelta(minutes=5)  # tolerate clock skew between us and storage
        common: dict[str, Any] = {
            "account_name": self.blob_service.account_name,
            "container_name": self.container.container_name,
            "blob_name": blob_name,
            "permission": BlobSasPermissions(read=True),
            "expiry": expiry,
            "start": start,
        }
        if self._credential is None:
            token = generate_blob_sas(account_key=self.blob_service.credential.account_key, **common)
        else:
            token = generate_blob_sas(user_delegation_key=await self._user_delegation_key(expiry), **common)
        return f"{self.container.get_blob_client(blob_name).url}?{token}"

    async def _user_delegation_key(self, needed_until: datetime) -> UserDelegationKey:
        async with self._delegation_lock:
            if self._delegation_key is None or self._delegation_expiry < needed_until:
                now = datetime.now(UTC)
                self._delegation_expiry = now + timedelta(hours=6)
                self._delegation_key = await self.blob_service.get_user_delegation_key(
                    now - timedelta(minutes=5), self._delegation_expiry
                )
            return self._delegation_key
