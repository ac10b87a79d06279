"""What a manifest references must be stored in its repository, with the sizes its descriptors state.

Blobs (config and layers) must be linked into the repository and manifests (an index's entries)
stored there; a descriptor whose size differs from what is stored is MANIFEST_INVALID, as the
reference registry answers. The check costs a bounded number of storage calls: a few point reads
for a small manifest, one range query per key kind for a large one (at most
:data:`~shared.oci.spec.MAX_DESCRIPTORS` descriptors). Nothing referenced is read beyond
:data:`CONFIG_LIMIT` bytes: only a small image config, for its architecture and OS.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.oci.errors import InvalidManifest
from shared.oci.manifest import Descriptor, Manifest
from shared.oci.spec import INT64_MAX
from shared.registry.blobs import BlobInfo, BlobService
from shared.registry.errors import ManifestBlobUnknown
from shared.storage import layout
from shared.storage.interfaces import Table
from shared.storage.queries import get_or_none
from shared.storage.values import read_int

#: Up to this many distinct keys are point-read (all at once); more are found by range queries.
POINT_READS = 16
#: An image config larger than this is not read (architecture and OS are then left out).
CONFIG_LIMIT = 64 * 1024
IMAGE_CONFIG_TYPES = frozenset({"application/vnd.oci.image.config.v1+json",
                                "application/vnd.docker.container.image.v1+json"})
_SELECT = ["RowKey", "size", "location"]


@dataclass(frozen=True)
class Stored:
    """A referenced row as stored: its size and, for a blob, where its data lives."""

    size: int
    location: str


def _stored(entity: Mapping[str, Any]) -> Stored:
    """What a link or manifest row read with :data:`_SELECT` says (a manifest row has no location)."""
    return Stored(read_int(entity.get("size")), str(entity.get("location") or ""))


def _wanted(manifest: Manifest) -> list[tuple[Descriptor, str]]:
    """Each descriptor that must be stored, with the row key that stores it."""
    return ([(d, layout.link_key(str(d.digest))) for d in manifest.blobs]
            + [(d, layout.manifest_key(str(d.digest))) for d in manifest.children])


async def _point_reads(table: Table, partition: str, keys: set[str]) -> dict[str, Stored]:
    async def read(key: str) -> tuple[str, Stored | None]:
        row = await get_or_none(table, partition, key, select=_SELECT)
        return key, None if row is None else _stored(row)

    found = await asyncio.gather(*(read(k) for k in keys))
    return {k: v for k, v in found if v is not None}


async def _scan(table: Table, partition: str, keys: set[str]) -> tuple[dict[str, Stored], bool]:
    """Rows of ``keys`` found by one range query from the least key to the greatest.

    Returns them and whether the scan saw the whole range. It stops after a few rows per key
    wanted, so a repository with millions of blobs costs no more than a manifest's worth of reads;
    the caller point-reads what an unfinished scan did not reach.
    """
    budget = 4 * len(keys) + 1000
    rows = table.query_entities(
        "PartitionKey eq @pk and RowKey ge @low and RowKey le @high",
        parameters={"pk": partition, "low": min(keys), "high": max(keys)},
        select=_SELECT, results_per_page=1000,
    )
    found: dict[str, Stored] = {}
    seen = 0
    async for row in rows:
        key = str(row["RowKey"])
        if key in keys:
            found[key] = _stored(row)
            if len(found) == len(keys):
                return found, True
        seen += 1
        if seen >= budget:
            return found, False
    return found, True


async def lookup(table: Table, partition: str, keys: set[str]) -> dict[str, Stored]:
    """The stored rows of ``keys`` in ``partition`` (absent keys are left out)."""
    if len(keys) <= POINT_READS:
        return await _point_reads(table, partition, keys)
    found: dict[str, Stored] = {}
    for prefix in sorted({k[:2] for k in keys}):
        group = {k for k in keys if k[:2] == prefix}
        rows, complete = await _scan(table, partition, group)
        found |= rows
        if not complete:
            found |= await _point_reads(table, partition, group - rows.keys())
    return found


async def check_references(table: Table, repository: str, manifest: Manifest) -> dict[str, Stored]:
    """Check that everything ``manifest`` references is stored with the size it states.

    ManifestBlobUnknown names what is missing; InvalidManifest names descriptors whose size
    differs. Returns what was found, by row key.
    """
    wanted = _wanted(manifest)
    found = await lookup(table, layout.encode_repository(repository), {key for _, key in wanted})
    absent = sorted({str(d.digest) for d, key in wanted if key not in found})
    if absent:
        raise ManifestBlobUnknown(detail={"digests": absent})
    wrong = sorted({str(d.digest) for d, key in wanted if found[key].size != d.size})
    if wrong:
        raise InvalidManifest("descriptor sizes do not match the stored content", detail={"digests": wrong})
    return found


def image_size(manifest: Manifest) -> int:
    """The manifest's length plus the sizes of the blobs it references (at most 2^63-1)."""
    return min(len(manifest.raw) + sum(d.size for d in manifest.blobs), INT64_MAX)


async def platform(blobs: BlobService, manifest: Manifest, found: dict[str, Stored]) -> dict[str, str]:
    """``architecture`` and ``os`` from an image's config, read only when it is small."""
    config = manifest.config
    if config is None or config.media_type not in IMAGE_CONFIG_TYPES or config.size > CONFIG_LIMIT:
        return {}
    stored = found[layout.link_key(str(config.digest))]
    info = BlobInfo(config.digest, stored.size, stored.location)
    try:
        raw = b"".join([chunk async for chunk in blobs.stream(info, 0, min(stored.size, CONFIG_LIMIT))])
        doc: Any = json.loads(raw)
    except (ResourceNotFoundError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict):
        return {}
    # Real values are short ("amd64", "linux"); a long one, or one that is not Unicode (an
    # unpaired surrogate escape), is not a platform and is left out.
    return {k: doc[k] for k in ("architecture", "os") if isinstance(doc.get(k), str) and _plain(doc[k])}


def _plain(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return len(text) <= 256
