"""The metadata behind ``/acr/v1``: repository, tag and manifest properties, and their locks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.data.tables import TableTransactionError

from shared.errors import Invalid, Locked, NotFound
from shared.events.model import attributes_event, current_request_info
from shared.oci.digest import Digest
from shared.registry.errors import ManifestUnknown, RepositoryUnknown
from shared.registry.locks import FLAGS, LockService, changeable_attributes, listed
from shared.registry.manifests import ManifestService
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none, prefix_range, typed
from shared.storage.rows import CatalogRow, Locks, ManifestRow, TagRow, keys

R = TypeVar("R", CatalogRow, TagRow, ManifestRow)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(value: Any) -> str:
    moment = value if isinstance(value, datetime) else _EPOCH
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def lock_update(body: Any) -> Locks:
    """The flags a PATCH body of ``changeableAttributes`` sets (other keys are ignored)."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object of changeable attributes")
    return Locks(**{prop: bool(body[wire]) for wire, prop in FLAGS.items() if isinstance(body.get(wire), bool)})


class MetadataService:
    """Answers the metadata API from the repository table."""

    def __init__(self, storage: Storage, manifests: ManifestService, registry_name: str,
                 locks: LockService) -> None:
        self.storage = storage
        self.manifest_service = manifests
        self.registry_name = registry_name
        self.locks = locks

    async def _tags(self, repository: str) -> list[TagRow]:
        return await typed(prefix_range(self.storage.repos, layout.encode_repository(repository), layout.TAG), TagRow)

    async def _manifests(self, repository: str) -> list[ManifestRow]:
        return await typed(prefix_range(self.storage.repos, layout.encode_repository(repository), layout.MANIFEST),
                           ManifestRow)

    async def _row(self, partition: str, key: str, kind: type[R], missing: type[NotFound], detail: dict[str, str]) -> R:
        row = await get_or_none(self.storage.repos, partition, key, kind)
        if row is None:
            raise missing(detail=detail)
        return row

    async def _repository_row(self, repository: str) -> CatalogRow:
        return await self._row(layout.CATALOG_PARTITION, layout.encode_repository(repository), CatalogRow,
                               RepositoryUnknown, {"name": repository})

    async def _set_locks(self, row: CatalogRow | TagRow | ManifestRow, body: Any, repository: str, digest: str = "",
                         tag: str | None = None) -> None:
        """Merge the flags of ``body`` into ``row`` (and ``updated``, the time geo-replication orders
        changes by), with their ``attributes`` event, in one transaction."""
        entity = keys(row.to_entity())
        change = {**entity, **lock_update(body).to_entity(), "updated": datetime.now(UTC)}
        event = attributes_event(repository, digest, tag, current_request_info())
        events = self.manifest_service.events
        try:
            await self.storage.repos.submit_transaction(
                [("update", change, {"mode": "merge"}), *events.operations(entity["PartitionKey"], [event])])
        except TableTransactionError as error:
            if str(getattr(error, "error_code", "")) == "ResourceNotFound":
                raise NotFound(detail={"name": repository}) from None
            raise
        self.locks.forget()
        events.committed(entity["PartitionKey"], [event])

    async def repository(self, repository: str) -> dict[str, Any]:
        """``{registry, imageName, createdTime, lastUpdateTime, manifestCount, tagCount, changeableAttributes}``."""
        row = await self._repository_row(repository)
        manifests = await self._manifests(repository)
        tags = await self._tags(repository)
        updated = max([r.updated or _EPOCH for r in manifests] + [r.updated or _EPOCH for r in tags]
                      + [row.created or _EPOCH])
        return {
            "registry": self.registry_name, "imageName": repository, "createdTime": _time(row.created),
            "lastUpdateTime": _time(updated), "manifestCount": len(manifests), "tagCount": len(tags),
            "changeableAttributes": changeable_attributes(row.locks),
        }

    async def update_repository(self, repository: str, body: Any) -> dict[str, Any]:
        """PATCH the repository's changeable attributes."""
        await self._set_locks(await self._repository_row(repository), body, repository)
        return await self.repository(repository)

    async def delete_repository(self, repository: str) -> dict[str, list[str]]:
        """Delete every manifest, tag and blob link of a repository, and the repository itself;
        LOCKED when any of its tags or manifests may not be deleted."""
        await self._repository_row(repository)
        tag_rows = await self._tags(repository)
        manifest_rows = await self._manifests(repository)
        flags = [row.locks for row in tag_rows] + [row.locks for row in manifest_rows]
        if not all(locks.allows("can_delete") for locks in flags):
            raise Locked(detail={"name": repository})
        tags = [r.tag for r in tag_rows]
        digests = [r.digest for r in manifest_rows]
        for digest in digests:
            try:
                await self.manifest_service.delete(repository, digest)
            except ManifestUnknown:
                pass
        partition = layout.encode_repository(repository)
        async for link in prefix_range(self.storage.repos, partition, layout.LINK, select=["RowKey"]):
            await self.storage.repos.delete_entity(partition, link["RowKey"])
        await self.storage.repos.delete_entity(layout.CATALOG_PARTITION, partition)
        return {"manifestsDeleted": digests, "tagsDeleted": tags}

    def _tag(self, row: TagRow) -> dict[str, Any]:
        return {"name": row.tag, "digest": row.digest, "createdTime": _time(row.created),
                "lastUpdateTime": _time(row.updated), "signed": False,
                "changeableAttributes": changeable_attributes(row.locks)}

    async def tags(self, repository: str, digest: str | None = None) -> list[dict[str, Any]]:
        """The listable tags of a repository (optionally of one digest), in name order."""
        await self._repository_row(repository)
        return [self._tag(r) for r in await self._tags(repository)
                if listed(r) and (digest is None or r.digest == digest)]

    async def tag(self, repository: str, tag: str) -> dict[str, Any]:
        """One tag's properties."""
        return self._tag(await self._tag_row(repository, tag))

    async def _tag_row(self, repository: str, tag: str) -> TagRow:
        return await self._row(layout.encode_repository(repository), layout.tag_key(tag), TagRow,
                               ManifestUnknown, {"tag": tag})

    async def update_tag(self, repository: str, tag: str, body: Any) -> dict[str, Any]:
        """PATCH a tag's changeable attributes."""
        row = await self._tag_row(repository, tag)
        await self._set_locks(row, body, repository, row.digest, tag)
        return await self.tag(repository, tag)

    def _manifest(self, row: ManifestRow, tags: list[str]) -> dict[str, Any]:
        references = []
        for child in json.loads(row.children or "[]"):
            platform = child.get("platform") or {}
            references.append({"digest": child["digest"], "architecture": platform.get("architecture"),
                               "os": platform.get("os")})
        doc: dict[str, Any] = {
            "digest": row.digest, "imageSize": row.image_size or row.size,
            "createdTime": _time(row.created), "lastUpdateTime": _time(row.updated),
            "mediaType": row.media_type, "tags": tags, "changeableAttributes": changeable_attributes(row.locks),
        }
        if row.architecture:
            doc["architecture"] = row.architecture
        if row.os:
            doc["os"] = row.os
        if row.config_media_type:
            doc["configMediaType"] = row.config_media_type
        if references:
            doc["references"] = references
        return doc

    async def manifests(self, repository: str) -> list[dict[str, Any]]:
        """The listable manifests of a repository, in digest order, with their tags."""
        await self._repository_row(repository)
        tags: dict[str, list[str]] = {}
        for row in await self._tags(repository):
            tags.setdefault(row.digest, []).append(row.tag)
        return [self._manifest(r, tags.get(r.digest, [])) for r in await self._manifests(repository)
                if listed(r)]

    async def manifest(self, repository: str, digest: str) -> dict[str, Any]:
        """One manifest's properties."""
        row = await self._manifest_row(repository, digest)
        return self._manifest(row, [r.tag for r in await self._tags(repository) if r.digest == row.digest])

    async def _manifest_row(self, repository: str, digest: str) -> ManifestRow:
        digest = str(Digest.parse(digest))
        return await self._row(layout.encode_repository(repository), layout.manifest_key(digest), ManifestRow,
                               ManifestUnknown, {"digest": digest})

    async def update_manifest(self, repository: str, digest: str, body: Any) -> dict[str, Any]:
        """PATCH a manifest's changeable attributes."""
        row = await self._manifest_row(repository, digest)
        await self._set_locks(row, body, repository, row.digest)
        return await self.manifest(repository, digest)
