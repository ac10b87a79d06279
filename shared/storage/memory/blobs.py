"""An in-memory blob container and block blobs behind the interface of the Azure SDK's async
``ContainerClient`` and ``BlobClient``: staged and committed blocks, commits and writes on
conditions (ETag, ``If-None-Match: *``), ranged downloads, properties and metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobProperties, BlobType, BlockState, ContentSettings, StorageErrorCode

from shared.storage.memory.service import MemoryService, pause, storage_error

_PIECE = 4 * 1024 * 1024  # what one chunk of a download holds, as the registry's clients read


@dataclass
class _BlobState:
    content: bytes | None = None  # None: nothing committed (only staged blocks, if any)
    committed: list[tuple[str, bytes]] = field(default_factory=list)
    uncommitted: dict[str, bytes] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    content_settings: ContentSettings | None = None
    etag: str = ""
    last_modified: datetime | None = None


class MemoryDownload:
    """A download that has started: the bytes of the requested range."""

    def __init__(self, data: bytes, properties: BlobProperties) -> None:
        self._data = data
        self.size = len(data)
        self.properties = properties

    async def readall(self) -> bytes:
        """Every byte of the range."""
        await pause()
        return self._data

    async def chunks(self) -> AsyncIterator[bytes]:
        """The range in 4 MiB pieces."""
        for start in range(0, len(self._data), _PIECE):
            await pause()
            yield self._data[start:start + _PIECE]


def _data(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    return b"".join(bytes(part) for part in data)


class MemoryBlob:
    """One block blob of a :class:`MemoryContainer`."""

    def __init__(self, container: MemoryContainer, name: str) -> None:
        self.container = container
        self._name = name

    @property
    def blob_name(self) -> str:
        """The blob's name."""
        return self._name

    @property
    def url(self) -> str:
        """A URL naming the blob (nothing serves it)."""
        return f"memory://{self.container.container_name}/{self._name}"

    def _blobs(self) -> dict[str, _BlobState]:
        return self.container.blobs()

    def _committed(self) -> _BlobState:
        state = self._blobs().get(self._name)
        if state is None or state.content is None:
            raise storage_error(ResourceNotFoundError, StorageErrorCode.BLOB_NOT_FOUND,
                                "The specified blob does not exist.", 404)
        return state

    def _check(self, state: _BlobState | None, etag: str | None, condition: MatchConditions | None) -> None:
        """Raise as the service does when the conditions of a request do not hold."""
        exists = state is not None and state.content is not None
        if condition is MatchConditions.IfMissing and exists:
            raise storage_error(ResourceExistsError, StorageErrorCode.BLOB_ALREADY_EXISTS,
                                "The specified blob already exists.", 409)
        if condition in (MatchConditions.IfNotModified, MatchConditions.IfModified, MatchConditions.IfPresent):
            if not exists:
                raise storage_error(ResourceNotFoundError, StorageErrorCode.BLOB_NOT_FOUND,
                                    "The specified blob does not exist.", 404)
            assert state is not None
            same = state.etag == etag
            if (condition is MatchConditions.IfNotModified and not same) or (
                    condition is MatchConditions.IfModified and same):
                raise storage_error(ResourceModifiedError, StorageErrorCode.CONDITION_NOT_MET,
                                    "The condition specified using HTTP conditional header(s) is not met.", 412)

    def _commit(self, state: _BlobState, content: bytes, committed: list[tuple[str, bytes]],
                settings: ContentSettings | None, metadata: Mapping[str, str] | None) -> dict[str, Any]:
        moment = self.container.service.stamp()
        state.content, state.committed, state.uncommitted = content, committed, {}
        state.metadata, state.content_settings = dict(metadata or {}), settings
        state.etag, state.last_modified = self.container.service.blob_etag(), moment
        self._blobs()[self._name] = state
        return {"etag": state.etag, "last_modified": moment}

    async def stage_block(self, block_id: str, data: Any, length: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """Stage ``data`` as the uncommitted block ``block_id``."""
        await pause()
        blobs = self._blobs()
        state = blobs.setdefault(self._name, _BlobState())
        state.uncommitted[block_id] = _data(data)[:length] if length is not None else _data(data)
        return {}

    async def stage_block_from_url(self, block_id: str, source_url: str, source_offset: int | None = None,
                                   source_length: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """Stage a range of a committed blob of this service that ``source_url`` names (as the
        storage's ``read_url`` gives it); ``CannotVerifyCopySource`` for anything else (another
        service, as another Azurite instance, or no such blob)."""
        await pause()
        parsed = urlsplit(source_url)
        container = self.container.service.containers.get(parsed.netloc) if parsed.scheme == "memory" else None
        state = container.get(parsed.path[1:]) if container is not None else None
        if state is None or state.content is None:
            raise storage_error(ResourceNotFoundError, StorageErrorCode.CANNOT_VERIFY_COPY_SOURCE,
                                "The specified resource does not exist.", 404)
        start = source_offset or 0
        end = len(state.content) if source_length is None else start + source_length
        return await self.stage_block(block_id, state.content[start:end])

    async def commit_block_list(self, block_list: list[BlobBlock], content_settings: ContentSettings | None = None,
                                metadata: dict[str, str] | None = None, *, etag: str | None = None,
                                match_condition: MatchConditions | None = None, **kwargs: Any) -> dict[str, Any]:
        """Make the named blocks the blob's content (the latest staged, else committed, by default)."""
        await pause()
        state = self._blobs().get(self._name)
        self._check(state, etag, match_condition)
        state = state or _BlobState()
        committed = dict(state.committed)
        blocks: list[tuple[str, bytes]] = []
        for block in block_list:
            sources = {BlockState.COMMITTED: [committed], BlockState.UNCOMMITTED: [state.uncommitted]}.get(
                block.state, [state.uncommitted, committed])
            found = next((source[block.id] for source in sources if block.id in source), None)
            if found is None:
                raise storage_error(HttpResponseError, StorageErrorCode.INVALID_BLOCK_LIST,
                                    "The specified block list is invalid.", 400)
            blocks.append((block.id, found))
        return self._commit(state, b"".join(data for _, data in blocks), blocks, content_settings, metadata)

    async def upload_blob(self, data: Any, overwrite: bool = False, *, content_settings: ContentSettings | None = None,
                          metadata: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Write ``data`` as the whole content; ResourceExistsError if there is content, unless ``overwrite``."""
        await pause()
        state = self._blobs().get(self._name)
        if not overwrite:
            self._check(state, None, MatchConditions.IfMissing)
        return self._commit(state or _BlobState(), _data(data), [], content_settings, metadata)

    async def download_blob(self, offset: int | None = None, length: int | None = None, *, etag: str | None = None,
                            match_condition: MatchConditions | None = None, **kwargs: Any) -> MemoryDownload:
        """Start reading ``length`` bytes from ``offset``."""
        await pause()
        if length is not None and length <= 0:
            raise ValueError("length must be greater than 0")
        state = self._committed()
        self._check(state, etag, match_condition)
        assert state.content is not None
        start = offset or 0
        if start > len(state.content):
            raise storage_error(HttpResponseError, StorageErrorCode.INVALID_RANGE,
                                "The range specified is invalid for the current size of the resource.", 416)
        end = len(state.content) if length is None else start + length
        return MemoryDownload(state.content[start:end], self._properties(state))

    def _properties(self, state: _BlobState) -> BlobProperties:
        properties = BlobProperties()
        properties.name, properties.container = self._name, self.container.container_name
        properties.size = len(state.content or b"")
        properties.etag, properties.last_modified = state.etag, state.last_modified  # type: ignore[assignment]
        properties.metadata = dict(state.metadata)
        properties.blob_type = BlobType.BLOCKBLOB
        if state.content_settings is not None:
            properties.content_settings = state.content_settings
        return properties

    async def get_blob_properties(self, **kwargs: Any) -> BlobProperties:
        """Size, ETag and metadata of the committed content."""
        await pause()
        return self._properties(self._committed())

    async def set_blob_metadata(self, metadata: dict[str, str] | None = None, *, etag: str | None = None,
                                match_condition: MatchConditions | None = None, **kwargs: Any) -> dict[str, Any]:
        """Replace the metadata (on condition of the ETag when asked)."""
        await pause()
        state = self._committed()
        self._check(state, etag, match_condition)
        state.metadata = dict(metadata or {})
        state.etag, state.last_modified = self.container.service.blob_etag(), self.container.service.stamp()
        return {"etag": state.etag, "last_modified": state.last_modified}

    async def delete_blob(self, delete_snapshots: str | None = None, *, etag: str | None = None,
                          match_condition: MatchConditions | None = None, **kwargs: Any) -> None:
        """Delete the blob and its staged blocks (a blob of staged blocks only, too)."""
        await pause()
        state = self._blobs().get(self._name)
        if state is None:
            raise storage_error(ResourceNotFoundError, StorageErrorCode.BLOB_NOT_FOUND,
                                "The specified blob does not exist.", 404)
        self._check(state, etag, match_condition)
        del self._blobs()[self._name]

    async def get_block_list(self, block_list_type: str = "committed",
                             **kwargs: Any) -> tuple[list[BlobBlock], list[BlobBlock]]:
        """The committed and (with ``"all"`` or ``"uncommitted"``) the staged blocks."""
        await pause()
        state = self._blobs().get(self._name)
        if state is None:
            raise storage_error(ResourceNotFoundError, StorageErrorCode.BLOB_NOT_FOUND,
                                "The specified blob does not exist.", 404)

        def blocks(pairs: list[tuple[str, bytes]], kind: BlockState) -> list[BlobBlock]:
            listed = []
            for block_id, data in pairs:
                block = BlobBlock(block_id, kind)
                block.size = len(data)
                listed.append(block)
            return listed

        committed = blocks(state.committed, BlockState.COMMITTED) if block_list_type != "uncommitted" else []
        staged = blocks(list(state.uncommitted.items()), BlockState.UNCOMMITTED) \
            if block_list_type in ("all", "uncommitted") else []
        return committed, staged

    async def close(self) -> None:
        """Nothing to release."""


class MemoryContainer:
    """A blob container of a :class:`MemoryService`."""

    def __init__(self, service: MemoryService, name: str) -> None:
        self.service = service
        self._name = name

    @property
    def container_name(self) -> str:
        """The container's name."""
        return self._name

    def blobs(self) -> dict[str, _BlobState]:
        """The container's blobs by name (ResourceNotFoundError when it does not exist)."""
        blobs = self.service.containers.get(self._name)
        if blobs is None:
            raise storage_error(ResourceNotFoundError, StorageErrorCode.CONTAINER_NOT_FOUND,
                                "The specified container does not exist.", 404)
        return blobs

    def get_blob_client(self, blob: str) -> MemoryBlob:
        """A client of blob ``blob``."""
        return MemoryBlob(self, blob)

    async def create_container(self, **kwargs: Any) -> dict[str, Any]:
        """Create the container; ResourceExistsError if it exists."""
        await pause()
        if self._name in self.service.containers:
            raise storage_error(ResourceExistsError, StorageErrorCode.CONTAINER_ALREADY_EXISTS,
                                "The specified container already exists.", 409)
        self.service.containers[self._name] = {}
        return {}

    async def list_blobs(self, name_starts_with: str | None = None, include: str | list[str] | None = None,
                         **kwargs: Any) -> AsyncIterator[BlobProperties]:
        """The committed blobs by name (``include="uncommittedblobs"``: blobs of staged blocks too)."""
        await pause()
        wanted = {include} if isinstance(include, str) else set(include or ())
        for name, state in sorted(self.blobs().items()):
            if name.startswith(name_starts_with or "") and (state.content is not None or "uncommittedblobs" in wanted):
                yield MemoryBlob(self, name)._properties(state)

    async def close(self) -> None:
        """Nothing to release."""
