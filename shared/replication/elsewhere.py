"""The other regions, as the local region's services see them on a miss: which ones to ask, in
which order, and the core services over each one's storage.

A lookup elsewhere is best effort. A region whose endpoint is switched off is skipped
(:meth:`Regions.is_enabled`), and one whose storage
cannot be reached counts as a miss, logged, so one region's outage never fails another region's
requests (a HEAD of a blob not pushed yet, the first request of every push, asks elsewhere). Such
a region is then left out for :data:`DOWN_SECONDS`, so an outage that makes each call wait for its
timeouts slows one request, not every request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.api.boundary import is_unavailable
from shared.events.null import NullEventSink
from shared.kernel.container import Container
from shared.registry.blobs import BlobService
from shared.registry.locks import LockService
from shared.registry.manifests import ManifestService
from shared.registry.uploads import UploadService
from shared.replication.regions import Regions
from shared.storage.interfaces import Storage

log = logging.getLogger("registry.replication")
T = TypeVar("T")
#: Whether a region may serve what the local region lacks (the status capability's endpoint switch).
RegionFilter = Callable[[str], Awaitable[bool]]
#: How long a region found unreachable is left out of lookups.
DOWN_SECONDS = 30.0


async def every_region(name: str) -> bool:
    """The default filter: every region serves."""
    return True


class OtherRegions:
    """The regions a miss in the local region is looked up in, with services over each one's
    storage (built once per region)."""

    def __init__(self, regions: Regions, sas_ttl_seconds: int, block_bytes: int,
                 serving: RegionFilter = every_region) -> None:
        self.regions = regions
        self.sas_ttl_seconds = sas_ttl_seconds
        self.block_bytes = block_bytes
        self.serving = serving
        self._blobs: dict[str, BlobService] = {}
        self._locks: dict[str, LockService] = {}
        self._manifests: dict[str, ManifestService] = {}
        self._uploads: dict[str, UploadService] = {}
        self._down_until: dict[str, float] = {}

    async def first(self, find: Callable[[str], Awaitable[T | None]]) -> T | None:
        """What ``find`` answers for the first other region, in the order listed, that has it
        (``find`` answers None for a miss); None when no region has it."""
        for name in self.regions.others:
            if self._down_until.get(name, 0.0) > time.monotonic() or not await self.serving(name):
                continue
            try:
                found = await find(name)
            except Exception as error:
                if not is_unavailable(error):
                    raise
                log.warning("region %s is unreachable (%s): left out of lookups for %.0f s", name,
                            type(error).__name__, DOWN_SECONDS)
                self._down_until[name] = time.monotonic() + DOWN_SECONDS
                continue
            if found is not None:
                return found
        return None

    async def storage(self, name: str) -> Storage:
        """Region ``name``'s storage."""
        return await self.regions.storage(name)

    async def blobs(self, name: str) -> BlobService:
        """A BlobService over region ``name``'s storage."""
        if name not in self._blobs:
            self._blobs[name] = BlobService(await self.storage(name), self.sas_ttl_seconds)
        return self._blobs[name]

    async def manifests(self, name: str) -> ManifestService:
        """A ManifestService over region ``name``'s storage, for reads (its events go nowhere)."""
        if name not in self._manifests:
            self._manifests[name] = ManifestService(await self.storage(name), await self.blobs(name), NullEventSink())
        return self._manifests[name]

    async def locks(self, name: str) -> LockService:
        """Region ``name``'s lock flags (read as the local region reads its own)."""
        if name not in self._locks:
            self._locks[name] = LockService(await self.storage(name))
        return self._locks[name]

    async def uploads(self, name: str) -> UploadService:
        """An UploadService over region ``name``'s storage, committing blobs there."""
        if name not in self._uploads:
            self._uploads[name] = UploadService(await self.storage(name), await self.blobs(name), self.block_bytes)
        return self._uploads[name]


async def other_regions(container: Container) -> OtherRegions:
    """The factory of the container's one view of the other regions, shared by the services it
    decorates (a region whose endpoint is switched off is not asked)."""
    regions = await container.get(Regions)
    registry = container.settings.registry
    return OtherRegions(regions, registry.sas_ttl_seconds, registry.upload_block_bytes, regions.is_enabled)
