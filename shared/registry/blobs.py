"""Blobs: the content-addressed index shared by all repositories, and per-repository links.

A repository serves a blob only if it is linked into it (pushed or mounted there); the data
itself is stored once per digest in the whole registry.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.errors import Unavailable
from shared.oci.digest import Digest
from shared.registry.errors import BlobUnknown
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none
from shared.storage.rows import BlobIndexRow, LinkRow

log = logging.getLogger("registry.blobs")


@dataclass(frozen=True)
class BlobInfo:
    """A blob linked into a repository: its digest, size and the data blob holding it."""

    digest: Digest
    size: int
    location: str


def _now() -> datetime:
    return datetime.now(UTC)


class BlobService:
    """Looks up, links, mounts, serves and unlinks blobs."""

    def __init__(self, storage: Storage, sas_ttl_seconds: int) -> None:
        self.storage = storage
        self.sas_ttl_seconds = sas_ttl_seconds

    async def stat(self, repository: str, digest: Digest) -> BlobInfo:
        """The blob ``digest`` as linked into ``repository``; BlobUnknown if it is not."""
        row = await get_or_none(self.storage.repos, layout.encode_repository(repository),
                                layout.link_key(str(digest)), LinkRow)
        if row is None:
            raise BlobUnknown(detail={"digest": str(digest)})
        return BlobInfo(digest, row.size, row.location)

    async def is_linked(self, repository: str, digest: Digest) -> bool:
        """True when ``digest`` is linked into ``repository``."""
        try:
            await self.stat(repository, digest)
        except BlobUnknown:
            return False
        return True

    async def indexed(self, digest: Digest) -> BlobInfo | None:
        """The registry-wide index entry of ``digest``, or None."""
        row = await get_or_none(self.storage.blobs, str(digest), "", BlobIndexRow)
        return None if row is None else BlobInfo(digest, row.size, row.location)

    async def link(self, repository: str, info: BlobInfo) -> None:
        """Make ``info`` visible in ``repository`` (idempotent)."""
        await self.storage.repos.upsert_entity(
            LinkRow(repository, str(info.digest), info.size, info.location, _now()).to_entity())

    async def index(self, info: BlobInfo) -> BlobInfo:
        """Record freshly committed, verified content unless the digest is indexed already.

        Returns the entry that holds: ``info`` when it was recorded, else the existing one (the
        caller decides whether that copy is sound, and deletes its own if so). The row is only
        ever created here, never overwritten, so two racing uploads cannot both win.
        """
        entity = BlobIndexRow(str(info.digest), info.size, info.location).to_entity()
        for _ in range(3):
            try:
                await self.storage.blobs.create_entity(entity)
                return info
            except ResourceExistsError:
                existing = await self.indexed(info.digest)
                if existing is not None:
                    return existing
                # The row was removed between the two calls: create it again, still conditionally.
        raise Unavailable("the blob index is changing; retry the upload")

    async def repoint(self, info: BlobInfo, unsound: BlobInfo) -> BlobInfo:
        """Point the digest's index row at ``info`` if it still names ``unsound``; returns the row now."""
        row = await get_or_none(self.storage.blobs, str(info.digest), "", BlobIndexRow)
        if row is None:
            return await self.index(info)
        if row.location != unsound.location:
            return BlobInfo(info.digest, row.size, row.location)
        entity = BlobIndexRow(str(info.digest), info.size, info.location).to_entity()
        try:
            await self.storage.blobs.update_entity(entity, mode="replace", etag=row.etag,
                                                   match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return await self.indexed(info.digest) or await self.index(info)
        return info

    async def mount(self, repository: str, digest: Digest, source: str | None) -> BlobInfo | None:
        """Link ``digest`` into ``repository`` from ``source`` (or from anywhere when None).

        Returns None when the blob cannot be mounted, so the caller starts an upload instead;
        that includes data that is missing or labelled with another digest, so a bad copy is
        never spread and the upload that follows repairs the index.
        """
        if source is not None:
            try:
                info = await self.stat(source, digest)
            except BlobUnknown:
                return None
        else:
            found = await self.indexed(digest)
            if found is None:
                return None
            info = found
        if not await self.is_sound(info):
            log.error("not mounting %s: its data %s is missing or labelled otherwise", digest, info.location)
            return None
        await self.link(repository, info)
        return info

    async def is_sound(self, info: BlobInfo) -> bool:
        """True when ``info``'s data blob exists, has its size and is labelled with its digest."""
        try:
            props = await self.storage.container.get_blob_client(info.location).get_blob_properties()
        except ResourceNotFoundError:
            return False
        return int(props.size) == info.size and (props.metadata or {}).get("digest") == str(info.digest)

    async def unlink(self, repository: str, digest: Digest) -> None:
        """Remove the blob from ``repository``; the data stays for other repositories."""
        await self.stat(repository, digest)
        try:
            await self.storage.repos.delete_entity(layout.encode_repository(repository), layout.link_key(str(digest)))
        except ResourceNotFoundError:
            raise BlobUnknown(detail={"digest": str(digest)}) from None

    async def read_url(self, info: BlobInfo) -> str:
        """A short-lived read-only URL of the blob's data."""
        return await self.storage.read_url(info.location, self.sas_ttl_seconds)

    async def open(self, info: BlobInfo, start: int, length: int) -> AsyncIterator[bytes]:
        """Start reading bytes ``start .. start+length-1`` of the blob; returns their chunks.

        The download starts before this returns, so a missing data blob is BlobUnknown here
        rather than a response cut short.
        """
        if length == 0:
            return _empty()
        try:
            downloader = await self.storage.container.get_blob_client(info.location).download_blob(
                offset=start, length=length
            )
        except ResourceNotFoundError:
            log.error("blob %s is indexed at %s, which is missing", info.digest, info.location)
            raise BlobUnknown(detail={"digest": str(info.digest)}) from None
        return downloader.chunks()

    async def stream(self, info: BlobInfo, start: int, length: int) -> AsyncIterator[bytes]:
        """The bytes ``start .. start+length-1`` of the blob, in chunks."""
        async for chunk in await self.open(info, start, length):
            yield chunk


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator
