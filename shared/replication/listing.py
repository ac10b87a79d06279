"""Tag lists across regions: a repository unknown here is listed as another region holds it.

A client that reads an image pushed to another region moments ago (``skopeo inspect`` lists its
tags) must not fail because replication has not brought the repository here yet. So when the
local region has no such repository, ``/v2/<name>/tags/list`` answers with the tags of the first
other region (in ``REGISTRY_REGIONS`` order, switched-off regions skipped) that has listable
tags of it, less those deleted here since (:mod:`shared.replication.tombstones`): a repository
deleted here is not listed back from a region the delete has not reached. The catalog, the
referrers API and the ``/acr/v1`` metadata stay the local region's.
"""

from __future__ import annotations

from datetime import datetime

from shared.kernel.container import Container
from shared.oci.digest import Digest
from shared.oci.manifest import Descriptor
from shared.registry.discovery import MAX_PAGE, DiscoveryService, Page, page_marker
from shared.registry.errors import RepositoryUnknown
from shared.registry.locks import listed
from shared.replication.elsewhere import OtherRegions
from shared.replication.tombstones import Tombstones, hidden_by
from shared.storage import layout
from shared.storage.queries import prefix_range
from shared.storage.rows.base import moment

_LONGEST_TAG = 128  # shared.oci.names.TAG_RE


class RegionalDiscovery(DiscoveryService):
    """The local DiscoveryService; the tags of a repository unknown here come from another region."""

    def __init__(self, inner: DiscoveryService, elsewhere: OtherRegions) -> None:
        super().__init__(inner.storage)
        self.inner = inner
        self.elsewhere = elsewhere
        self.tombstones = Tombstones(inner.storage)

    async def tags(self, repository: str, n: int | None, last: str | None) -> Page:
        """The local tags of ``repository``; when it is unknown here, another region's."""
        try:
            page = await self.inner.tags(repository, n, last)
        except RepositoryUnknown as miss:
            error: RepositoryUnknown | None = miss
        else:
            # A later page of a repository listed from elsewhere: empty here only because it is not here.
            if page.items or not last or await self.inner.repository_exists(repository):
                return page
            error = None
        tombstones = await self.tombstones.of_repository(repository)

        async def find(name: str) -> Page | None:
            found = await self._remote_tags(name, repository, n, last, tombstones)
            return found if found.items or last else None

        found = await self.elsewhere.first(find)
        if found is not None:
            return found
        if error is None:
            return Page([], False)
        raise error

    async def _remote_tags(self, name: str, repository: str, n: int | None, last: str | None,
                           tombstones: dict[str, datetime]) -> Page:
        """Region ``name``'s listable tags of ``repository`` after ``last``, at most ``n``, less
        those ``tombstones`` hide."""
        if n == 0:
            return Page([], False)
        storage = await self.elsewhere.storage(name)
        rows = prefix_range(storage.repos, layout.encode_repository(repository), layout.TAG,
                            after=page_marker(last, _LONGEST_TAG), select=["RowKey", "can_list", "digest", "updated"],
                            results_per_page=min((n or MAX_PAGE) + 1, MAX_PAGE + 1))
        items: list[str] = []
        async for row in rows:
            tag = str(row["RowKey"])[len(layout.TAG):]
            if not listed(row) or hidden_by(tombstones, tag, str(row.get("digest") or ""), moment(row, "updated")):
                continue
            if n is not None and len(items) == n:
                return Page(items, True)
            items.append(tag)
        return Page(items, False)

    # The rest is the local region's, through the service this one wraps.
    async def repository_exists(self, repository: str) -> bool:
        """See :meth:`DiscoveryService.repository_exists` (local)."""
        return await self.inner.repository_exists(repository)

    async def catalog(self, n: int | None, last: str | None) -> Page:
        """See :meth:`DiscoveryService.catalog` (local)."""
        return await self.inner.catalog(n, last)

    async def referrers(self, repository: str, subject: Digest, artifact_type: str | None, n: int | None = None,
                        last: str = "") -> tuple[list[Descriptor], bool]:
        """See :meth:`DiscoveryService.referrers` (local)."""
        return await self.inner.referrers(repository, subject, artifact_type, n, last)


async def regional_discovery(container: Container, discovery: DiscoveryService) -> DiscoveryService:
    """Decorate the DiscoveryService: the tags of a repository unknown here come from another region."""
    return RegionalDiscovery(discovery, await container.get(OtherRegions))
