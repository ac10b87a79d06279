"""Content discovery: tag lists, the catalog and the referrers API, paginated in lexical order."""

from __future__ import annotations

from dataclasses import dataclass

from shared.oci.digest import Digest
from shared.oci.manifest import Descriptor
from shared.oci.names import MAX_NAME_LENGTH
from shared.registry.errors import InvalidPageSize, RepositoryUnknown
from shared.registry.locks import listed
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none, prefix_range
from shared.storage.rows import ReferrerRow
from shared.storage.values import parse_int64

MAX_PAGE = 1000
_LONGEST_TAG = 128  # shared.oci.names.TAG_RE


@dataclass(frozen=True)
class Page:
    """One page of names, and whether another follows."""

    items: list[str]
    more: bool


def page_size(raw: str | None) -> int | None:
    """Parse the ``n`` query parameter: ASCII digits of a number up to 2^63-1 (as distribution's
    ``strconv.Atoi``), served at most :data:`MAX_PAGE` at a time; InvalidPageSize else."""
    if raw is None or raw == "":
        return None
    value = parse_int64(raw)
    if value is None:
        raise InvalidPageSize(detail={"n": raw[:20]})
    return min(value, MAX_PAGE)


def page_marker(last: str | None, longest: int) -> str:
    """``last`` cut to one character more than the longest item can have: items of at most
    ``longest`` characters compare with the cut marker exactly as with the whole one, and the
    storage query stays small whatever the client sent."""
    return (last or "")[:longest + 1]


class DiscoveryService:
    """Lists tags, repositories and referrers."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def repository_exists(self, repository: str) -> bool:
        """True when the repository has had a manifest pushed (it is in the catalog)."""
        row = await get_or_none(self.storage.repos, layout.CATALOG_PARTITION, layout.encode_repository(repository),
                                select=["RowKey"])
        return row is not None

    async def tags(self, repository: str, n: int | None, last: str | None) -> Page:
        """Tags of ``repository`` after ``last``, at most ``n`` (all when None); RepositoryUnknown if none exist."""
        partition = layout.encode_repository(repository)
        page = await self._range(partition, layout.TAG, page_marker(last, _LONGEST_TAG), n)
        if not page.items and not last and not await self.repository_exists(repository):
            raise RepositoryUnknown(detail={"name": repository})
        return page

    async def catalog(self, n: int | None, last: str | None) -> Page:
        """Repository names after ``last``, at most ``n``."""
        after = layout.encode_repository(page_marker(last, MAX_NAME_LENGTH))
        page = await self._range(layout.CATALOG_PARTITION, "", after, n)
        return Page([layout.decode_repository(k) for k in page.items], page.more)

    async def referrers(
        self, repository: str, subject: Digest, artifact_type: str | None, n: int | None = None, last: str = ""
    ) -> tuple[list[Descriptor], bool]:
        """Descriptors of manifests whose ``subject`` is ``subject`` (optionally of one artifact type),
        after the referrer digest ``last``, at most ``n`` (default one full page); and whether more follow."""
        limit = MAX_PAGE if n is None else n
        rows = prefix_range(self.storage.repos, layout.encode_repository(repository),
                            layout.referrer_prefix(str(subject)), after=last,
                            where="artifact_type eq @type" if artifact_type is not None else "",
                            parameters={"type": artifact_type})
        found: list[Descriptor] = []
        async for entity in rows:
            if len(found) == limit:
                return found, True
            row = ReferrerRow.from_entity(entity)
            found.append(Descriptor(media_type=row.media_type, digest=Digest.parse(row.digest), size=row.size,
                                    artifact_type=row.artifact_type, annotations=dict(row.annotations)))
        return found, False

    async def _range(self, partition: str, prefix: str, after: str, n: int | None) -> Page:
        if n == 0:
            return Page([], False)
        rows = prefix_range(self.storage.repos, partition, prefix, after=after, select=["RowKey", "can_list"],
                            results_per_page=min((n or MAX_PAGE) + 1, MAX_PAGE + 1))
        items: list[str] = []
        async for row in rows:
            if not listed(row):  # locked with listEnabled: false (ACR hides it)
                continue
            if n is not None and len(items) == n:
                return Page(items, True)
            items.append(row["RowKey"][len(prefix):])
        return Page(items, False)
