"""The storage interfaces the services use: the parts of the Azure SDK's async clients they call.

Two backends implement them: the Azure clients themselves (:mod:`shared.storage.clients`, over a
real account or Azurite) and the in-memory store (:mod:`shared.storage.memory`, for fast unit
tests). One contract suite (``tests/contract/``) runs against both, so what a docstring here says
holds for each. Storage errors are the SDK's own (``ResourceNotFoundError``,
``ResourceExistsError``, ``ResourceModifiedError``, ``TableTransactionError`` with its
``error_code``); the services translate them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.data.tables import TableEntity, UpdateMode
from azure.storage.blob import BlobBlock, BlobProperties, ContentSettings
from azure.storage.queue import QueueMessage


class Table(Protocol):
    """One table. Entities are mappings with ``PartitionKey`` and ``RowKey``; a read returns a
    ``TableEntity`` whose ``metadata`` holds its ``etag`` and ``timestamp``. An ``int`` property is
    Edm.Int32 (values of 2^31 and more are refused), an ``EntityProperty`` of Edm.Int64 reads back
    as one; ``None`` properties are not stored."""

    @property
    def table_name(self) -> str:
        """The table's name."""
        ...

    def get_entity(self, partition_key: str, row_key: str, *, select: str | list[str] | None = None,
                   **kwargs: Any) -> Awaitable[TableEntity]:
        """The entity at the keys (only the ``select``\\ed properties); ResourceNotFoundError if absent."""
        ...

    def create_entity(self, entity: Mapping[str, Any], **kwargs: Any) -> Awaitable[Mapping[str, Any]]:
        """Insert ``entity``; ResourceExistsError if its keys exist. Returns ``{"etag": ...}``."""
        ...

    def update_entity(self, entity: Mapping[str, Any], mode: str | UpdateMode = UpdateMode.MERGE, *,
                      etag: str | None = None, match_condition: MatchConditions | None = None,
                      **kwargs: Any) -> Awaitable[Mapping[str, Any]]:
        """Merge into (``merge``) or replace (``replace``) an existing entity; ResourceNotFoundError
        if absent, ResourceModifiedError if ``etag`` with ``IfNotModified`` no longer matches."""
        ...

    def upsert_entity(self, entity: Mapping[str, Any], mode: str | UpdateMode = UpdateMode.MERGE,
                      **kwargs: Any) -> Awaitable[Mapping[str, Any]]:
        """Insert ``entity``, or merge into / replace the existing one."""
        ...

    def delete_entity(self, partition_key: str, row_key: str, *, etag: str | None = None,
                      match_condition: MatchConditions | None = None, **kwargs: Any) -> Awaitable[None]:
        """Delete the entity; an absent one is no error, a changed one (``etag``) is ResourceModifiedError."""
        ...

    def query_entities(self, query_filter: str, *, results_per_page: int | None = None,
                       select: str | list[str] | None = None, parameters: dict[str, Any] | None = None,
                       **kwargs: Any) -> AsyncIterator[TableEntity]:
        """Entities matching the OData ``query_filter`` (``@name`` words take ``parameters``), in
        PartitionKey then RowKey order."""
        ...

    def list_entities(self, *, results_per_page: int | None = None, select: str | list[str] | None = None,
                      **kwargs: Any) -> AsyncIterator[TableEntity]:
        """Every entity, in key order."""
        ...

    def submit_transaction(self, operations: Iterable[Any], **kwargs: Any) -> Awaitable[list[Mapping[str, Any]]]:
        """Apply ``(kind, entity[, options])`` operations of one partition all or none. Kinds:
        ``create``, ``update`` and ``delete`` (the row must exist; ``etag`` with ``IfNotModified``
        in the options makes them conditional) and ``upsert``. A failure raises
        ``TableTransactionError`` whose ``error_code`` is ``EntityAlreadyExists``,
        ``UpdateConditionNotSatisfied`` or ``ResourceNotFound``, and nothing is written."""
        ...

    def close(self) -> Awaitable[None]:
        """Release the connection."""
        ...


class Download(Protocol):
    """A blob download that has started."""

    def readall(self) -> Awaitable[bytes]:
        """Every byte of the requested range."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The requested range, in pieces."""
        ...


class Blob(Protocol):
    """One block blob. Blocks are staged under ids, and a commit of a list of ids makes them the
    blob's content (dropping every block not named); ``etag`` with a ``match_condition`` makes a
    call conditional (``IfNotModified``: still that version, ``IfMissing``: no committed content)."""

    @property
    def blob_name(self) -> str:
        """The blob's name in its container."""
        ...

    @property
    def url(self) -> str:
        """The blob's URL (without a SAS)."""
        ...

    def stage_block(self, block_id: str, data: bytes, length: int | None = None,
                    **kwargs: Any) -> Awaitable[Mapping[str, Any]]:
        """Stage ``data`` as the uncommitted block ``block_id``."""
        ...

    def stage_block_from_url(self, block_id: str, source_url: str, source_offset: int | None = None,
                             source_length: int | None = None, **kwargs: Any) -> Awaitable[Mapping[str, Any]]:
        """Stage ``source_length`` bytes from ``source_offset`` of the blob at ``source_url`` (a SAS
        URL storage can read) as the uncommitted block ``block_id``, storage copying them itself;
        ``HttpResponseError`` with error code ``CannotVerifyCopySource`` when it cannot read them."""
        ...

    def commit_block_list(self, block_list: list[BlobBlock], content_settings: ContentSettings | None = None,
                          metadata: dict[str, str] | None = None, **kwargs: Any) -> Awaitable[Mapping[str, Any]]:
        """Commit the named staged blocks as the content; ``HttpResponseError`` with error code
        ``InvalidBlockList`` when one is not staged. Returns ``{"etag": ...}``."""
        ...

    def upload_blob(self, data: bytes, **kwargs: Any) -> Awaitable[Mapping[str, Any]]:
        """Write ``data`` as the whole content (``overwrite=True`` to replace existing content)."""
        ...

    def download_blob(self, offset: int | None = None, length: int | None = None,
                      **kwargs: Any) -> Awaitable[Download]:
        """Start reading ``length`` bytes from ``offset`` (all by default); ResourceNotFoundError if absent."""
        ...

    def get_blob_properties(self, **kwargs: Any) -> Awaitable[BlobProperties]:
        """Size, ETag and metadata of the committed content; ResourceNotFoundError if there is none."""
        ...

    def set_blob_metadata(self, metadata: dict[str, str] | None = None, **kwargs: Any) -> Awaitable[Mapping[str, Any]]:
        """Replace the metadata; returns ``{"etag": ...}``."""
        ...

    def delete_blob(self, delete_snapshots: str | None = None, **kwargs: Any) -> Awaitable[None]:
        """Delete the blob and its staged blocks; ResourceNotFoundError if absent."""
        ...


class Container(Protocol):
    """The registry's blob container."""

    @property
    def container_name(self) -> str:
        """The container's name."""
        ...

    def get_blob_client(self, blob: str) -> Blob:
        """A client of blob ``blob`` (which need not exist)."""
        ...

    def list_blobs(self, name_starts_with: str | None = None, include: str | list[str] | None = None,
                   **kwargs: Any) -> AsyncIterator[BlobProperties]:
        """The committed blobs, by name."""
        ...

    def create_container(self, **kwargs: Any) -> Awaitable[Any]:
        """Create the container; ResourceExistsError if it exists."""
        ...

    def close(self) -> Awaitable[None]:
        """Release the connection."""
        ...


class Queue(Protocol):
    """One storage queue of text messages. A received message is invisible for its visibility
    timeout and then comes back with its ``dequeue_count`` one higher, unless it was deleted."""

    @property
    def queue_name(self) -> str:
        """The queue's name."""
        ...

    def create_queue(self, **kwargs: Any) -> Awaitable[None]:
        """Create the queue; ResourceExistsError if it exists with other metadata."""
        ...

    def send_message(self, content: object, *, visibility_timeout: int | None = None,
                     time_to_live: int | None = None, **kwargs: Any) -> Awaitable[QueueMessage]:
        """Enqueue ``content``, invisible for ``visibility_timeout`` seconds (``time_to_live=-1``: never expires)."""
        ...

    def receive_messages(self, *, messages_per_page: int | None = None, visibility_timeout: int | None = None,
                         max_messages: int | None = None, **kwargs: Any) -> AsyncIterator[QueueMessage]:
        """Take up to ``max_messages`` visible messages, each invisible for ``visibility_timeout`` seconds."""
        ...

    def peek_messages(self, max_messages: int | None = None, **kwargs: Any) -> Awaitable[list[QueueMessage]]:
        """Visible messages, left as they are."""
        ...

    def update_message(self, message: str | QueueMessage, pop_receipt: str | None = None,
                       content: object | None = None, *, visibility_timeout: int | None = None,
                       **kwargs: Any) -> Awaitable[QueueMessage]:
        """Make a received message visible again after ``visibility_timeout`` seconds."""
        ...

    def delete_message(self, message: str | QueueMessage, pop_receipt: str | None = None,
                       **kwargs: Any) -> Awaitable[None]:
        """Delete a received message (its latest pop receipt)."""
        ...

    def close(self) -> Awaitable[None]:
        """Release the connection."""
        ...


class Storage(Protocol):
    """The registry's container, tables and queues in one account (see :mod:`shared.storage.layout`)."""

    @property
    def prefix(self) -> str:
        """The prefix of every name (container, tables, queues)."""
        ...

    @property
    def container(self) -> Container:
        """The blob container."""
        ...

    @property
    def blobs(self) -> Table:
        """The content-addressed blob index."""
        ...

    @property
    def uploads(self) -> Table:
        """Upload sessions."""
        ...

    @property
    def repos(self) -> Table:
        """Repositories: catalog, manifests, tags, links, referrers, outbox."""
        ...

    @property
    def webhooks(self) -> Table:
        """Webhook configuration and delivery log."""
        ...

    @property
    def events(self) -> Table:
        """What each event consumer has done with each event."""
        ...

    @property
    def auth(self) -> Table:
        """Identities and permissions."""
        ...

    @property
    def deliveries(self) -> Queue:
        """The queue of webhook delivery attempts."""
        ...

    @property
    def poison(self) -> Queue:
        """The delivery queue's poison queue."""
        ...

    def table(self, name: str) -> Table:
        """The table listed in :data:`shared.storage.layout.TABLES` as ``name``."""
        ...

    def queue(self, name: str) -> Queue:
        """A client of queue ``name`` (base64 text, as the Functions host's trigger reads it); the
        caller closes it."""
        ...

    def ensure(self) -> Awaitable[None]:
        """Create the container, the tables and the queues that do not exist yet."""
        ...

    def read_url(self, blob_name: str, ttl_seconds: int) -> Awaitable[str]:
        """A read-only URL of one blob, valid for ``ttl_seconds``."""
        ...

    def close(self) -> Awaitable[None]:
        """Close every client."""
        ...
