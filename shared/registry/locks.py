"""Locks: ACR's ``changeableAttributes`` on a repository, a tag and a manifest.

A flag lives on the repository's catalog row, the ``t|`` tag row or the ``m|`` manifest row
(see ``shared/storage/layout.py``); a missing flag means enabled. :meth:`LockService.check`
refuses an operation that a flag forbids with ACR's "operation is disallowed" error.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.errors import ErrorCode, RegistryError
from shared.oci.names import is_tag
from shared.storage import layout
from shared.storage.clients import StorageClients

#: wire name -> row property
FLAGS = {"deleteEnabled": "can_delete", "writeEnabled": "can_write", "readEnabled": "can_read",
         "listEnabled": "can_list"}


def changeable_attributes(row: dict[str, Any] | None) -> dict[str, bool]:
    """The ``changeableAttributes`` of a row (every flag true when absent)."""
    row = row or {}
    return {wire: bool(row.get(prop, True)) for wire, prop in FLAGS.items()}


def lock_fields(row: dict[str, Any] | None) -> dict[str, bool]:
    """The lock properties a row carries, to keep them when the row is rewritten."""
    return {p: bool(row[p]) for p in layout.LOCK_FLAGS if row is not None and row.get(p) is not None}


def _locked() -> RegistryError:
    return RegistryError(ErrorCode.LOCKED)


class LockService:
    """Reads lock flags and refuses what they forbid."""

    def __init__(self, storage: StorageClients) -> None:
        self.storage = storage

    async def _row(self, partition: str, key: str) -> dict[str, Any] | None:
        try:
            return dict(await self.storage.repos.get_entity(partition, key))
        except ResourceNotFoundError:
            return None

    async def repository_row(self, repository: str) -> dict[str, Any] | None:
        """The repository's catalog row, or None."""
        return await self._row(layout.CATALOG_PARTITION, layout.encode_repository(repository))

    async def check(self, operation: str, repository: str, reference: str = "") -> None:
        """Raise LOCKED when a flag forbids ``operation`` (see :mod:`shared.api.access`)."""
        flag = {"read_manifest": "can_read", "read_blob": "can_read", "write_manifest": "can_write",
                "write_blob": "can_write", "delete_manifest": "can_delete", "delete_tag": "can_delete",
                "delete_blob": "can_delete", "delete_repository": "can_delete"}.get(operation)
        if flag is None:
            return
        repo_row = await self.repository_row(repository)
        if repo_row is not None and repo_row.get(flag) is False:
            raise _locked()
        if operation not in ("read_manifest", "write_manifest", "delete_manifest", "delete_tag") or not reference:
            return
        partition = layout.encode_repository(repository)
        rows: list[dict[str, Any] | None] = []
        if is_tag(reference):
            tag_row = await self._row(partition, layout.tag_key(reference))
            rows.append(tag_row)
            if tag_row is not None and operation == "read_manifest":
                rows.append(await self._row(partition, layout.manifest_key(str(tag_row["digest"]))))
        else:
            rows.append(await self._row(partition, layout.manifest_key(reference)))
            if operation == "delete_manifest":
                rows.extend(await self._tags_of(partition, reference))
        if any(row is not None and row.get(flag) is False for row in rows):
            raise _locked()

    async def _tags_of(self, partition: str, digest: str) -> list[dict[str, Any] | None]:
        rows = self.storage.repos.query_entities(
            "PartitionKey eq @pk and RowKey gt @start and RowKey lt @end and digest eq @digest",
            parameters={"pk": partition, "start": layout.TAG, "end": layout.TAG[:-1] + layout.RANGE_END,
                        "digest": digest},
        )
        return [dict(r) async for r in rows]
