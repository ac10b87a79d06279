"""Which regions hold an image: its manifest row, and every blob and child manifest it references.

A region holds manifest ``digest`` of a repository when its ``repos`` table has the manifest's
row, every config and layer blob is linked into the repository and indexed in the region's
``blobs`` table, and (for an index) every child manifest is held the same way. Each region is read
directly (never through the services that fall back on other regions), at once, with a bounded
number of reads per manifest: the manifest itself, one lookup of its links (the manifest PUT's
own check), one point read per blob in the index, and the same for each child.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.oci.digest import Digest
from shared.oci.errors import InvalidManifest
from shared.oci.manifest import parse_manifest
from shared.oci.names import is_tag, validate_name, validate_tag
from shared.registry import references
from shared.registry.errors import ManifestUnknown
from shared.replication.regions import Regions
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none
from shared.storage.rows import ManifestRow, TagRow

#: How long one region may take to answer before it counts as unavailable (seconds).
READ_TIMEOUT = 10.0
#: Index nesting followed (an index of indexes is legal, if rare).
MAX_DEPTH = 3


@dataclass(frozen=True)
class Held:
    """What one region holds of an image: the tag's digest there, and what is missing."""

    tag: str | None
    missing: tuple[str, ...]
    error: str = ""

    def to_json(self, by_tag: bool) -> dict[str, Any]:
        """``{"present", "missing", "tag" (when asked by tag)}``; ``present`` is None when unreadable."""
        shown: dict[str, Any] = {"present": None if self.error else not self.missing}
        if by_tag:
            shown["tag"] = self.tag
        shown["missing"] = list(self.missing)
        if self.error:
            shown["error"] = self.error
        return shown


async def image_regions(regions: Regions, repository: str, reference: str) -> dict[str, Any]:
    """``{repository, reference, digest, regions: {<region>: {present, tag?, missing}}}`` for the
    manifest ``reference`` names (a tag is resolved in this region first, then in the others, in order)."""
    validate_name(repository)
    by_tag = is_tag(reference)
    digest = None if by_tag else str(Digest.parse(reference))  # a malformed reference is refused (400)
    if by_tag:
        validate_tag(reference)
    names = (regions.local, *regions.others)
    tags: dict[str, str | BaseException | None] = {}
    if by_tag:
        found = await asyncio.gather(*(_tag(regions, name, repository, reference) for name in names),
                                     return_exceptions=True)
        tags = dict(zip(names, found, strict=True))
        digest = next((t for t in tags.values() if isinstance(t, str)), None)
    if digest is None:
        raise ManifestUnknown(detail={"reference": reference})
    held = await asyncio.gather(*(_held(regions, name, repository, digest) for name in regions.names))
    shown = {}
    for name, holding in zip(regions.names, held, strict=True):
        tag = tags.get(name)
        if isinstance(tag, BaseException):
            holding = Held(None, holding.missing, holding.error or type(tag).__name__)
        else:
            holding = Held(tag, holding.missing, holding.error)
        shown[name] = holding.to_json(by_tag)
    return {"repository": repository, "reference": reference, "digest": digest, "regions": shown}


async def _tag(regions: Regions, name: str, repository: str, tag: str) -> str | None:
    storage = await regions.storage(name)
    row = await asyncio.wait_for(
        get_or_none(storage.repos, layout.encode_repository(repository), layout.tag_key(tag), TagRow), READ_TIMEOUT)
    return None if row is None else row.digest


async def _held(regions: Regions, name: str, repository: str, digest: str) -> Held:
    try:
        storage = await regions.storage(name)
        missing = await asyncio.wait_for(_missing(storage, repository, digest, MAX_DEPTH), READ_TIMEOUT)
    except Exception as error:  # any failure means the region cannot be read now
        return Held(None, (), type(error).__name__)
    return Held(None, tuple(sorted(set(missing))))


async def _missing(storage: Storage, repository: str, digest: str, depth: int) -> list[str]:
    """The digests of what manifest ``digest`` needs and ``storage`` lacks (itself, when absent)."""
    partition = layout.encode_repository(repository)
    row = await get_or_none(storage.repos, partition, layout.manifest_key(digest), ManifestRow)
    if row is None:
        return [digest]
    try:
        raw = row.content or await (await storage.container.get_blob_client(
            layout.manifest_blob(digest)).download_blob()).readall()
        manifest = parse_manifest(raw, row.media_type, Digest.parse(digest).algorithm)
    except (ResourceNotFoundError, InvalidManifest):
        return [digest]  # bytes that are gone or do not parse are as good as absent
    blobs = {str(d.digest) for d in manifest.blobs}
    links = await references.lookup(storage.repos, partition, {layout.link_key(b) for b in blobs})
    indexed = await asyncio.gather(*(get_or_none(storage.blobs, b, "", select=["size"]) for b in sorted(blobs)))
    missing = [b for b in blobs if layout.link_key(b) not in links]
    missing += [b for b, row_ in zip(sorted(blobs), indexed, strict=True) if row_ is None]
    if depth > 0:
        for child in await asyncio.gather(*(_missing(storage, repository, str(c.digest), depth - 1)
                                            for c in manifest.children)):
            missing += child
    return missing
