"""Serving what another region holds: reads never fail mid-replication, pushes may bounce.

The replication capability decorates three core services (``Configurator.decorate_service``);
each answers from the local region first and turns to the other regions only on a miss, in the
order ``REGISTRY_REGIONS`` lists them (see :mod:`shared.replication.elsewhere`: regions switched
off or unreachable are looked past):

- **Manifests.** A GET/HEAD by tag or digest unknown here is served from the first region that
  has it (the same bytes, digest and media type), subject to that region's read locks, unless
  it was deleted here since (:mod:`shared.replication.tombstones`). A tag list of a repository
  unknown here is another region's (:mod:`shared.replication.listing`); the catalog stays local.
- **Blobs.** A blob not linked into the repository here but linked into the same repository of
  another region is answered from there: HEAD gives its size, GET redirects to that region's
  read-only SAS URL (or streams from it when redirects are off), unless it was deleted here since.
  A blob DELETE reaches every region at once (:mod:`shared.replication.blob_deletes`).
- **Manifest PUT.** When the manifest references blobs or child manifests missing here but
  present in the same repository of another region, they are imported first (blobs with
  :func:`~shared.replication.transfer.ensure_blob`; child manifests fetched and committed here,
  their own references imported likewise) and the PUT is committed here once more, so the pusher
  reads its write at once. Nothing is imported unless every missing reference is found somewhere:
  what exists in no region stays MANIFEST_BLOB_UNKNOWN and nothing is written.
- **Upload sessions** (:mod:`shared.replication.sessions`): continued in the region that owns them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError

from shared.kernel.container import Container
from shared.kernel.operations import Operation
from shared.oci.digest import Digest
from shared.oci.errors import InvalidDigest, InvalidTag
from shared.oci.manifest import Manifest, parse_manifest
from shared.oci.names import is_tag, validate_tag
from shared.registry.blobs import BlobInfo, BlobService
from shared.registry.errors import BlobUnknown, ManifestBlobUnknown, ManifestUnknown
from shared.registry.manifests import ManifestService, PushResult, StoredManifest
from shared.replication.blob_deletes import link_hidden, unlink_everywhere
from shared.replication.elsewhere import OtherRegions
from shared.replication.tombstones import Tombstones
from shared.replication.transfer import ensure_blob
from shared.storage import layout
from shared.storage.queries import get_or_none
from shared.storage.rows import LinkRow, ManifestRow, TagRow

#: How many blobs one manifest PUT imports at once.
IMPORTS_AT_ONCE = 4


@dataclass(frozen=True)
class RemoteBlob(BlobInfo):
    """A blob served from another region's storage."""

    region: str


class RegionalBlobs(BlobService):
    """The local BlobService, with ``stat`` (and so HEAD and GET) falling back to other regions."""

    def __init__(self, inner: BlobService, elsewhere: OtherRegions) -> None:
        super().__init__(inner.storage, inner.sas_ttl_seconds)
        self.inner = inner
        self.elsewhere = elsewhere

    async def stat(self, repository: str, digest: Digest) -> BlobInfo:
        """The blob as linked here, else as linked into the same repository of another region."""
        try:
            return await self.inner.stat(repository, digest)
        except BlobUnknown as miss:
            error = miss

        async def find(name: str) -> RemoteBlob | None:
            storage = await self.elsewhere.storage(name)
            row = await get_or_none(storage.repos, layout.encode_repository(repository),
                                    layout.link_key(str(digest)), LinkRow)
            if row is None or await link_hidden(self.storage, repository, row):
                return None  # not there, or deleted here since it was linked there
            await (await self.elsewhere.locks(name)).check(Operation.READ_BLOB, repository)
            return RemoteBlob(digest, row.size, row.location, name)

        found = await self.elsewhere.first(find)
        if found is None:
            raise error
        return found

    async def read_url(self, info: BlobInfo) -> str:
        """A read-only URL in the storage of the region holding ``info``."""
        if isinstance(info, RemoteBlob):
            return await (await self.elsewhere.blobs(info.region)).read_url(info)
        return await self.inner.read_url(info)

    async def open(self, info: BlobInfo, start: int, length: int) -> AsyncIterator[bytes]:
        """Start reading the bytes of ``info`` from the region holding it."""
        if isinstance(info, RemoteBlob):
            return await (await self.elsewhere.blobs(info.region)).open(info, start, length)
        return await self.inner.open(info, start, length)

    async def stream(self, info: BlobInfo, start: int, length: int) -> AsyncIterator[bytes]:
        """The bytes of ``info``, from the region holding it."""
        async for chunk in await self.open(info, start, length):
            yield chunk

    # The rest is the local region's, through the service this one wraps.
    async def is_linked(self, repository: str, digest: Digest) -> bool:
        """See :meth:`BlobService.is_linked` (local)."""
        return await self.inner.is_linked(repository, digest)

    async def indexed(self, digest: Digest) -> BlobInfo | None:
        """See :meth:`BlobService.indexed` (local)."""
        return await self.inner.indexed(digest)

    async def link(self, repository: str, info: BlobInfo) -> None:
        """See :meth:`BlobService.link` (local)."""
        await self.inner.link(repository, info)

    async def index(self, info: BlobInfo) -> BlobInfo:
        """See :meth:`BlobService.index` (local)."""
        return await self.inner.index(info)

    async def repoint(self, info: BlobInfo, unsound: BlobInfo) -> BlobInfo:
        """See :meth:`BlobService.repoint` (local)."""
        return await self.inner.repoint(info, unsound)

    async def mount(self, repository: str, digest: Digest, source: str | None) -> BlobInfo | None:
        """See :meth:`BlobService.mount` (local)."""
        return await self.inner.mount(repository, digest, source)

    async def is_sound(self, info: BlobInfo) -> bool:
        """See :meth:`BlobService.is_sound` (local)."""
        return await self.inner.is_sound(info)

    async def unlink(self, repository: str, digest: Digest) -> None:
        """Unlink here and in every other region (:mod:`shared.replication.blob_deletes`)."""
        await unlink_everywhere(self.inner, self.elsewhere, repository, digest)


@dataclass(frozen=True)
class _Found:
    """A reference missing here, and the region whose repository holds it."""

    digest: Digest
    region: str
    manifest: bool  # a child manifest (else a blob)


class RegionalManifests(ManifestService):
    """The local ManifestService; GET falls back to other regions, PUT imports what they hold."""

    def __init__(self, inner: ManifestService, elsewhere: OtherRegions) -> None:
        super().__init__(inner.storage, inner.blobs, inner.events)
        self.inner = inner
        self.elsewhere = elsewhere
        self.tombstones = Tombstones(inner.storage)

    async def get(self, repository: str, reference: str, with_content: bool = True,
                  seen: Mapping[str, TagRow | ManifestRow] | None = None) -> StoredManifest:
        """The manifest as stored here, else as stored in the first other region that has it."""
        try:
            return await self.inner.get(repository, reference, with_content, seen)
        except ManifestUnknown as miss:
            error = miss
        if not _nameable(reference):
            raise error

        key = layout.tag_key(reference) if is_tag(reference) else layout.manifest_key(str(Digest.parse(reference)))

        async def find(name: str) -> StoredManifest | None:
            rows: dict[str, TagRow | ManifestRow] = {}
            await (await self.elsewhere.locks(name)).check(Operation.READ_MANIFEST, repository, reference, rows)
            # A tag's row is what the lock check read; a manifest's is read fresh (locks may cache it).
            row = rows.get(key) if key.startswith(layout.TAG) else await self._remote_row(name, repository, key)
            if row is None or await self.tombstones.hides(repository, row):
                return None  # not there, or deleted here since
            try:
                return await (await self.elsewhere.manifests(name)).get(repository, reference, with_content,
                                                                        {key: row})
            except (ManifestUnknown, ResourceNotFoundError):
                return None  # its content blob not there yet

        found = await self.elsewhere.first(find)
        if found is None:
            raise error
        return found

    async def put(self, repository: str, reference: str, raw: bytes, content_type: str) -> PushResult:
        """Store the manifest here, first importing what it references from other regions."""
        try:
            return await self.inner.put(repository, reference, raw, content_type)
        except ManifestBlobUnknown as missing:
            error = missing
        algorithm = "sha256" if is_tag(reference) else Digest.parse(reference).algorithm
        manifest = parse_manifest(raw, content_type, algorithm)
        absent = {str(d) for d in (error.detail or {}).get("digests", ())}
        found = await asyncio.gather(*(self._locate(repository, manifest, digest) for digest in sorted(absent)))
        located = [f for f in found if f is not None]
        nowhere = sorted(absent - {str(f.digest) for f in located})
        if nowhere:
            raise ManifestBlobUnknown(detail={"digests": nowhere})
        await self._import(repository, located)
        return await self.inner.put(repository, reference, raw, content_type)

    async def delete(self, repository: str, reference: str) -> Digest:
        """See :meth:`ManifestService.delete` (local), after writing the tombstone that keeps the
        fallback from serving the other regions' copies until the delete reaches them."""
        key = layout.tag_key(validate_tag(reference)) if is_tag(reference) else layout.manifest_key(
            str(Digest.parse(reference)))
        etag = await self.tombstones.record(repository, key)
        try:
            return await self.inner.delete(repository, reference)
        except ManifestUnknown:
            await self.tombstones.forget(repository, key, etag)  # nothing here was deleted
            raise

    async def _remote_row(self, name: str, repository: str, key: str) -> TagRow | ManifestRow | None:
        """Region ``name``'s row of ``key`` in ``repository``."""
        kind: type[TagRow | ManifestRow] = TagRow if key.startswith(layout.TAG) else ManifestRow
        return await get_or_none((await self.elsewhere.storage(name)).repos, layout.encode_repository(repository),
                                 key, kind)

    async def _locate(self, repository: str, manifest: Manifest, digest: str) -> _Found | None:
        """The first other region whose ``repository`` holds ``digest`` (as the manifest references it)."""
        is_child = digest in {str(d.digest) for d in manifest.children}
        parsed = Digest.parse(digest)

        async def find(name: str) -> _Found | None:
            try:
                if is_child:
                    row = await self._remote_row(name, repository, layout.manifest_key(digest))
                    if row is None or await self.tombstones.hides(repository, row):
                        return None  # not there, or deleted here since
                else:
                    await (await self.elsewhere.blobs(name)).stat(repository, parsed)
            except (ManifestUnknown, BlobUnknown):
                return None
            return _Found(parsed, name, is_child)

        return await self.elsewhere.first(find)

    async def _import(self, repository: str, located: list[_Found]) -> None:
        """Bring each located reference into this region's ``repository``: blobs first (a few at
        once), then child manifests, each committed through :meth:`put` (importing its own)."""
        gate = asyncio.Semaphore(IMPORTS_AT_ONCE)

        async def bring(found: _Found) -> None:
            async with gate:
                await ensure_blob(await self.elsewhere.storage(found.region), self.storage, found.digest,
                                  repository, self.elsewhere.sas_ttl_seconds)

        await asyncio.gather(*(bring(f) for f in located if not f.manifest))
        for found in located:
            if found.manifest:
                source = await self.elsewhere.manifests(found.region)
                child = await source.get(repository, str(found.digest))
                if child.content is not None:
                    await self.put(repository, str(found.digest), child.content, child.media_type)


def _nameable(reference: str) -> bool:
    """True when ``reference`` is a valid tag or a supported digest (anything else names nothing anywhere)."""
    try:
        if is_tag(reference):
            validate_tag(reference)
        else:
            Digest.parse(reference)
    except (InvalidTag, InvalidDigest):
        return False
    return True


async def regional_blobs(container: Container, blobs: BlobService) -> BlobService:
    """Decorate the BlobService: reads fall back to other regions."""
    return RegionalBlobs(blobs, await container.get(OtherRegions))


async def regional_manifests(container: Container, manifests: ManifestService) -> ManifestService:
    """Decorate the ManifestService: reads fall back to other regions, PUT imports from them."""
    return RegionalManifests(manifests, await container.get(OtherRegions))

