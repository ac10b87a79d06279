"""Locks: ACR's ``changeableAttributes`` on a repository, a tag and a manifest.

A flag lives on the repository's catalog row, the ``t|`` tag row or the ``m|`` manifest row
(see ``shared/storage/layout.py``); a missing flag means enabled. :meth:`LockService.check`
refuses an operation that a flag forbids with ACR's "operation is disallowed" error; which flag
governs which :class:`~shared.kernel.operations.Operation` is :data:`FLAG_OF`, the one mapping.
``listEnabled`` hides a repository, tag or manifest from listings: :func:`listed` is the one test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, TypeVar

from shared.errors import Locked
from shared.kernel.operations import Operation
from shared.oci.names import is_tag
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none, prefix_range, typed
from shared.storage.rows import CatalogRow, Locks, ManifestRow, TagRow

#: A row that carries lock flags.
LockedRow = CatalogRow | TagRow | ManifestRow
L = TypeVar("L", CatalogRow, TagRow, ManifestRow)

#: wire name -> row property
FLAGS = {"deleteEnabled": "can_delete", "writeEnabled": "can_write", "readEnabled": "can_read",
         "listEnabled": "can_list"}


#: operation -> the flag that must not be false for it (on the repository, and on the tag and
#: manifest the operation touches)
FLAG_OF: dict[Operation, str] = {
    Operation.READ_MANIFEST: "can_read", Operation.READ_BLOB: "can_read",
    Operation.WRITE_MANIFEST: "can_write", Operation.START_UPLOAD: "can_write", Operation.READ_UPLOAD: "can_write",
    Operation.WRITE_UPLOAD: "can_write", Operation.FINISH_UPLOAD: "can_write", Operation.CANCEL_UPLOAD: "can_write",
    Operation.DELETE_MANIFEST: "can_delete", Operation.DELETE_TAG: "can_delete", Operation.DELETE_BLOB: "can_delete",
    Operation.DELETE_REPOSITORY: "can_delete",
}
#: The operations lock flags govern (the lock check is attached to these).
LOCKED_OPERATIONS = tuple(FLAG_OF)


def listed(row: LockedRow | Mapping[str, Any] | None) -> bool:
    """Whether a repository, tag or manifest (its typed row, or the stored entity of one) may be
    listed: the one test of ``listEnabled``."""
    if row is None:
        return True
    locks = Locks.from_entity(row) if isinstance(row, Mapping) else row.locks
    return locks.allows("can_list")


def changeable_attributes(locks: Locks | None) -> dict[str, bool]:
    """The ``changeableAttributes`` of a row's flags (every flag true when absent)."""
    locks = locks or Locks()
    return {wire: locks.allows(prop) for wire, prop in FLAGS.items()}


#: How long a read may rely on a repository's or manifest's flags read by an earlier request.
#: Pulls are the hot path and these flags rarely change: a read lock set on another instance takes
#: effect within this many seconds; write and delete locks, and tag flags, are always read fresh.
READ_CACHE_SECONDS = 2.0
_READS = frozenset({Operation.READ_MANIFEST, Operation.READ_BLOB})
_MANIFEST_OPERATIONS = frozenset({Operation.READ_MANIFEST, Operation.WRITE_MANIFEST, Operation.DELETE_MANIFEST,
                                  Operation.DELETE_TAG})
_CACHE_LIMIT = 10_000


class LockService:
    """Reads lock flags and refuses what they forbid."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}

    def forget(self) -> None:
        """Drop every cached flag (this process has just changed a lock)."""
        self._cache.clear()

    async def _cached_row(self, partition: str, key: str, kind: type[L]) -> L | None:
        now = time.monotonic()
        hit = self._cache.get((partition, key))
        if hit is not None and now - hit[0] < READ_CACHE_SECONDS:
            cached: L | None = hit[1]
            return cached
        row = await self._row(partition, key, kind)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[(partition, key)] = (now, row)
        return row

    async def _row(self, partition: str, key: str, kind: type[L]) -> L | None:
        return await get_or_none(self.storage.repos, partition, key, kind)

    async def check(self, operation: Operation, repository: str, reference: str = "",
                    seen: dict[str, Any] | None = None) -> None:
        """Raise LOCKED when a flag forbids ``operation`` on ``repository`` (and ``reference``).

        The tag row a read looks at is put in ``seen`` (by row key), so the handler that serves
        the same request need not read it again.
        """
        flag = FLAG_OF.get(operation)
        if flag is None:
            return
        read = operation in _READS
        repo_key = (layout.CATALOG_PARTITION, layout.encode_repository(repository))
        repo_row, rows = await asyncio.gather(
            self._cached_row(*repo_key, CatalogRow) if read else self._row(*repo_key, CatalogRow),
            self._reference_rows(operation, repository, reference, seen if seen is not None else {}),
        )
        if any(row is not None and not row.locks.allows(flag) for row in (repo_row, *rows)):
            raise Locked()

    async def _reference_rows(self, operation: Operation, repository: str, reference: str,
                              seen: dict[str, Any]) -> list[LockedRow | None]:
        """The tag and manifest rows whose flags also govern ``operation`` (read beside the repository's)."""
        if operation not in _MANIFEST_OPERATIONS or not reference:
            return []
        partition = layout.encode_repository(repository)
        rows: list[LockedRow | None] = []
        read = operation in _READS
        if is_tag(reference):
            tag_row = await self._row(partition, layout.tag_key(reference), TagRow)
            rows.append(tag_row)
            if tag_row is not None and read:
                seen[layout.tag_key(reference)] = tag_row
                rows.append(await self._cached_row(partition, layout.manifest_key(tag_row.digest), ManifestRow))
        elif read:
            rows.append(await self._cached_row(partition, layout.manifest_key(reference), ManifestRow))
        else:
            rows.append(await self._row(partition, layout.manifest_key(reference), ManifestRow))
            if operation is Operation.DELETE_MANIFEST:
                rows.extend(await self._tags_of(partition, reference))
        return rows

    async def _tags_of(self, partition: str, digest: str) -> list[TagRow]:
        return await typed(prefix_range(self.storage.repos, partition, layout.TAG, where="digest eq @digest",
                                        parameters={"digest": digest}), TagRow)
