"""The Azure Storage clients of one storage account (:class:`~shared.storage.accounts.StorageAccount`),
and read-only SAS URLs for its blobs.

Storage calls raise the Azure SDK's own errors (``ResourceNotFoundError``,
``ResourceExistsError``, ``ResourceModifiedError``); the services translate them, because only
they know whether a missing key is a blob, a manifest or an upload.

When storage cannot be reached, a call fails within seconds, not minutes: connecting and waiting
for an answer are bounded (:class:`BoundedTransport`), quick failures (refused or reset
connections, 5xx answers) are retried twice after short pauses, and a try that times out is not
retried (storage that hangs once is likely to hang again). What is left is raised to the API's
error boundary, which answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceExistsError, ServiceRequestTimeoutError, ServiceResponseTimeoutError
from azure.core.pipeline.transport import AioHttpTransport, AsyncHttpTransport
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.blob import BlobSasPermissions, UserDelegationKey, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient, ContainerClient, LinearRetry
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.storage import layout
from shared.storage.accounts import StorageAccount
from shared.storage.interfaces import Storage
from shared.storage.tables import TableSlot

_MiB = 1024 * 1024

#: Seconds to open a connection to storage (it takes milliseconds within a region).
CONNECT_TIMEOUT = 2.0
#: Seconds one try may take, connecting included, until storage begins its answer (a table query
#: runs for at most 5 s on the service's side before it answers with what it found so far).
ANSWER_TIMEOUT = 5.0
#: Bytes per second a request's body is given on top: staging an 8 MiB block may take 32 s.
MIN_UPLOAD_RATE = 256 * 1024
#: Seconds a streamed download may wait for its next bytes.
READ_TIMEOUT = 20.0
#: Retries of a quick failure, and the pause before each (seconds, with jitter).
RETRIES = 2
RETRY_PAUSE = 0.3


class StorageTimeout(TimeoutError):
    """Storage did not answer one try of a request in time."""


def _bytes_sent(headers: Any) -> int:
    """The bytes one try makes storage take in: the body's, or the source range's of a block
    copied from a URL (``x-ms-source-range: bytes=<first>-<last>``)."""
    length = headers.get("Content-Length") or "0"
    copied = re.fullmatch(r"bytes=(\d+)-(\d+)", headers.get("x-ms-source-range") or "")
    if copied:
        return int(copied[2]) - int(copied[1]) + 1
    return int(length) if length.isdigit() else 0


class BoundedTransport(AsyncHttpTransport[Any, Any]):
    """azure-core's aiohttp transport with one deadline per try, from connecting to the answer's
    headers: :data:`ANSWER_TIMEOUT`, plus the request body's size at :data:`MIN_UPLOAD_RATE` (for
    Put Block From URL, which has no body, the size of the source range storage copies).

    aiohttp alone bounds connecting and each wait for data, but not sending: a storage endpoint
    that accepts a connection and never reads holds a block upload forever. A try that times out
    raises :class:`StorageTimeout`, which the SDK's retry policies do not retry.
    """

    def __init__(self, **config: Any) -> None:
        # azure-core's aiohttp sessions otherwise trust the environment: every storage call then
        # reads ~/.netrc and the proxy variables on a worker thread, about a third of a manifest
        # GET's CPU (docs/benchmarks.md). Storage traffic goes straight to the account.
        self._inner = AioHttpTransport(
            use_env_settings=False, connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT, **config
        )

    async def send(self, request: Any, **kwargs: Any) -> Any:
        """Send one try of ``request``; :class:`StorageTimeout` when it takes too long."""
        budget = ANSWER_TIMEOUT + _bytes_sent(request.headers) / MIN_UPLOAD_RATE
        try:
            async with asyncio.timeout(budget):
                return await self._inner.send(request, **kwargs)
        except (TimeoutError, ServiceRequestTimeoutError, ServiceResponseTimeoutError) as error:
            raise StorageTimeout(f"storage did not answer {request.method} within {budget:.1f} s") from error

    async def open(self) -> None:
        """Open the session."""
        await self._inner.open()

    async def close(self) -> None:
        """Close the session."""
        await self._inner.close()

    async def __aenter__(self) -> BoundedTransport:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, kind: type[BaseException] | None = None, error: BaseException | None = None,
                        trace: TracebackType | None = None) -> None:
        await self._inner.__aexit__(kind, error, trace)


def _blob_options() -> dict[str, Any]:
    # Downloads the registry streams come in 4 MiB pieces (the SDK's first piece is 32 MiB);
    # responses are read 256 KiB at a time, as the blob SDK does with a transport of its own.
    return {
        "transport": BoundedTransport(connection_data_block_size=256 * 1024),
        # Typed int, used as float (random.uniform).
        "retry_policy": LinearRetry(backoff=RETRY_PAUSE, random_jitter_range=RETRY_PAUSE / 2,  # type: ignore[arg-type]
                                    retry_total=RETRIES),
        "max_single_get_size": 4 * _MiB,
        "max_chunk_get_size": 4 * _MiB,
    }


def _table_options() -> dict[str, Any]:
    return {
        "transport": BoundedTransport(),
        "retry_total": RETRIES,
        "retry_backoff_factor": RETRY_PAUSE,
        "retry_backoff_max": 2 * RETRY_PAUSE,
    }


def _queue_options() -> dict[str, Any]:
    return {
        "transport": BoundedTransport(),
        "retry_total": RETRIES,
        "retry_to_secondary": False,
    }


class StorageClients:
    """Async clients of the registry's container, tables and queues in one storage account."""

    blobs = TableSlot[TableClient](layout.BLOBS)
    uploads = TableSlot[TableClient](layout.UPLOADS)
    repos = TableSlot[TableClient](layout.REPOS)
    webhooks = TableSlot[TableClient](layout.WEBHOOKS)
    events = TableSlot[TableClient](layout.EVENTS)
    auth = TableSlot[TableClient](layout.AUTH)

    def __init__(self, account: StorageAccount, tables: Sequence[layout.TableSpec] = layout.TABLES) -> None:
        self.account = account
        self.prefix = account.prefix
        self._credential: Any = None  # the token credential, None with an account key
        self._owned_credential: Any = None
        if account.connection_string:
            self.blob_service = BlobServiceClient.from_connection_string(account.connection_string, **_blob_options())
            self.table_service = TableServiceClient.from_connection_string(
                account.connection_string, **_table_options()
            )
            self.queue_service = QueueServiceClient.from_connection_string(
                account.connection_string, **_queue_options()
            )
        else:
            self._credential = account.credential
            if self._credential is None:
                from azure.identity.aio import DefaultAzureCredential

                self._credential = self._owned_credential = DefaultAzureCredential()
            self.blob_service = BlobServiceClient(account.blob_endpoint, credential=self._credential,
                                                  **_blob_options())
            self.table_service = TableServiceClient(account.table_endpoint, credential=self._credential,
                                                    **_table_options())
            self.queue_service = QueueServiceClient(account.queue_url, credential=self._credential,
                                                    **_queue_options())
        self.container: ContainerClient = self.blob_service.get_container_client(layout.container(self.prefix))
        self.tables: dict[str, TableClient] = {
            spec.name: self.table_service.get_table_client(spec.table_name(self.prefix)) for spec in tables
        }
        self.deliveries, self.poison = (self.queue(name) for name in layout.queues(self.prefix))
        self._delegation_key: UserDelegationKey | None = None
        self._delegation_expiry = datetime.min.replace(tzinfo=UTC)
        self._delegation_lock = asyncio.Lock()

    def table(self, name: str) -> TableClient:
        """The client of the table listed as ``name``."""
        return self.tables[name]

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
        for table in self.tables.values():
            try:
                await self.table_service.create_table(table.table_name)
            except ResourceExistsError:
                pass

    async def close(self) -> None:
        """Close every client, and the credential if it was made here."""
        for table in self.tables.values():
            await table.close()
        for client in (self.container, self.deliveries, self.poison):
            await client.close()
        await self.blob_service.close()
        await self.table_service.close()
        await self.queue_service.close()
        if self._owned_credential is not None:
            await self._owned_credential.close()

    async def read_url(self, blob_name: str, ttl_seconds: int) -> str:
        """A read-only SAS URL of one blob, valid for ``ttl_seconds``.

        With an account key (Azurite, connection strings) the SAS is signed with the key; with a
        managed identity it is a user-delegation SAS, whose key is cached and renewed.
        """
        now = datetime.now(UTC)
        expiry = now + timedelta(seconds=ttl_seconds)
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


if TYPE_CHECKING:
    def _is_storage(storage: StorageClients) -> Storage:
        return storage  # mypy checks that the Azure clients have the interface the services use
