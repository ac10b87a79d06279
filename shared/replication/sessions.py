"""Upload sessions that bounce between regions: continued in the region that owns them.

A PATCH, PUT, GET or DELETE of an upload id unknown in the local region's uploads table but open
in another region's goes on in that region: its blocks are staged in that region's container, its
row updated there (with the same ETag claims as any upload), and the final PUT commits and links
the blob there. A manifest PUT in any region then finds the blob (it imports it, see
:mod:`shared.replication.serving`), and reads anywhere serve it meanwhile.

Why continue in the owning region rather than pin a session to one: a session's state is its
uncommitted blocks and its resumable hash, which live in one storage account, and Azure cannot
commit blocks staged in another account. Moving the session would mean copying its staged bytes
on every bounce; pinning would need the routing front to know upload ids (Front Door and Traffic
Manager route by host and path prefix, not by an id inside the path), or a redirect that clients
behind one login server must follow to another host. Continuing where the session lives costs one
extra table read per request on a bounce (the local miss), keeps every byte in one account, and
works whichever region DNS picks for each request. The bytes cross regions once, if at all: when
the blob is first needed elsewhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from shared.kernel.container import Container
from shared.oci.digest import Digest
from shared.registry.blobs import BlobInfo
from shared.registry.errors import UploadUnknown
from shared.registry.uploads import Upload, UploadService, validate_upload_id
from shared.replication.elsewhere import OtherRegions
from shared.storage.rows import UploadRow


@dataclass(frozen=True)
class RemoteUpload(UploadRow):
    """An upload session open in another region (``region``), where every request on it goes."""

    region: str = field(default="", compare=False)


class RegionalUploads(UploadService):
    """The local UploadService; a session unknown here but open in another region goes on there."""

    def __init__(self, inner: UploadService, elsewhere: OtherRegions) -> None:
        super().__init__(inner.storage, inner.blobs, inner.block_size)
        self.inner = inner
        self.elsewhere = elsewhere

    async def get(self, repository: str, upload_id: str) -> Upload:
        """The open upload here, else the one open in another region (as a :class:`RemoteUpload`)."""
        try:
            return await self.inner.get(repository, upload_id)
        except UploadUnknown as miss:
            error = miss
        validate_upload_id(upload_id)

        async def find(name: str) -> RemoteUpload | None:
            try:
                row = await (await self.elsewhere.uploads(name)).get(repository, upload_id)
            except UploadUnknown:
                return None
            fields = {f.name: getattr(row, f.name) for f in dataclasses.fields(UploadRow)}
            return RemoteUpload(**fields, region=name)

        found = await self.elsewhere.first(find)
        if found is None:
            raise error
        return found

    async def _owner(self, upload: Upload) -> UploadService:
        """The service of the region holding ``upload``."""
        if isinstance(upload, RemoteUpload):
            return await self.elsewhere.uploads(upload.region)
        return self.inner

    async def append(self, upload: Upload, body: AsyncIterator[bytes], start: int | None, length: int | None,
                     save: bool = True) -> Upload:
        """See :meth:`UploadService.append` (in the region holding the session)."""
        return await (await self._owner(upload)).append(upload, body, start, length, save)

    async def complete(self, upload: Upload, expected: Digest) -> BlobInfo:
        """See :meth:`UploadService.complete`: the blob is committed in the region holding the session."""
        return await (await self._owner(upload)).complete(upload, expected)

    async def cancel(self, upload: Upload, retry: bool = True) -> None:
        """See :meth:`UploadService.cancel` (in the region holding the session)."""
        await (await self._owner(upload)).cancel(upload, retry)

    async def start(self, repository: str) -> Upload:
        """See :meth:`UploadService.start` (here)."""
        return await self.inner.start(repository)

    async def put_monolithic(self, repository: str, body: AsyncIterator[bytes], expected: Digest,
                             length: int | None = None) -> BlobInfo:
        """See :meth:`UploadService.put_monolithic` (here)."""
        return await self.inner.put_monolithic(repository, body, expected, length)

    async def purge_stale(self, older_than: timedelta) -> int:
        """See :meth:`UploadService.purge_stale` (this region's sessions; each region purges its own)."""
        return await self.inner.purge_stale(older_than)


async def regional_uploads(container: Container, uploads: UploadService) -> UploadService:
    """Decorate the UploadService: sessions open in another region are continued there."""
    return RegionalUploads(uploads, await container.get(OtherRegions))
