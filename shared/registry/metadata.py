"""The metadata behind ``/acr/v1``: repository, tag and manifest properties, and their locks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.errors import ErrorCode, RegistryError
from shared.oci.digest import Digest
from shared.registry.locks import FLAGS, LockService, changeable_attributes, listed
from shared.registry.manifests import ManifestService
from shared.storage import layout
from shared.storage.clients import StorageClients
from shared.storage.values import read_int

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(value: Any) -> str:
    moment = value if isinstance(value, datetime) else _EPOCH
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def lock_update(body: Any) -> dict[str, bool]:
    """The row properties a PATCH body of ``changeableAttributes`` sets (other keys are ignored)."""
    if not isinstance(body, dict):
        raise RegistryError(ErrorCode.NAME_INVALID, "the body must be a JSON object of changeable attributes")
    return {prop: bool(body[wire]) for wire, prop in FLAGS.items() if isinstance(body.get(wire), bool)}


class MetadataService:
    """Answers the metadata API from the repository table."""

    def __init__(self, storage: StorageClients, manifests: ManifestService, registry_name: str,
                 locks: LockService) -> None:
        self.storage = storage
        self.manifest_service = manifests
        self.registry_name = registry_name
        self.locks = locks

    async def _rows(self, repository: str, prefix: str) -> list[dict[str, Any]]:
        rows = self.storage.repos.query_entities(
            "PartitionKey eq @pk and RowKey gt @start and RowKey lt @end",
            parameters={"pk": layout.encode_repository(repository), "start": prefix,
                        "end": prefix[:-1] + layout.RANGE_END},
            select=None,
        )
        return [dict(r) async for r in rows]

    async def _row(self, partition: str, key: str, missing: ErrorCode, detail: dict[str, str]) -> dict[str, Any]:
        try:
            return dict(await self.storage.repos.get_entity(partition, key))
        except ResourceNotFoundError:
            raise RegistryError(missing, detail=detail) from None

    async def _repository_row(self, repository: str) -> dict[str, Any]:
        return await self._row(layout.CATALOG_PARTITION, layout.encode_repository(repository),
                               ErrorCode.NAME_UNKNOWN, {"name": repository})

    async def repository(self, repository: str) -> dict[str, Any]:
        """``{registry, imageName, createdTime, lastUpdateTime, manifestCount, tagCount, changeableAttributes}``."""
        row = await self._repository_row(repository)
        manifests = await self._rows(repository, layout.MANIFEST)
        tags = await self._rows(repository, layout.TAG)
        updated = max([r.get("updated") or _EPOCH for r in manifests + tags] + [row.get("created") or _EPOCH])
        return {
            "registry": self.registry_name, "imageName": repository, "createdTime": _time(row.get("created")),
            "lastUpdateTime": _time(updated), "manifestCount": len(manifests), "tagCount": len(tags),
            "changeableAttributes": changeable_attributes(row),
        }

    async def update_repository(self, repository: str, body: Any) -> dict[str, Any]:
        """PATCH the repository's changeable attributes."""
        row = await self._repository_row(repository)
        await self.storage.repos.update_entity({"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"],
                                                **lock_update(body)}, mode="merge")
        self.locks.forget()
        return await self.repository(repository)

    async def delete_repository(self, repository: str) -> dict[str, list[str]]:
        """Delete every manifest, tag and blob link of a repository, and the repository itself;
        LOCKED when any of its tags or manifests may not be deleted."""
        await self._repository_row(repository)
        tag_rows = await self._rows(repository, layout.TAG)
        manifest_rows = await self._rows(repository, layout.MANIFEST)
        if any(row.get("can_delete") is False for row in tag_rows + manifest_rows):
            raise RegistryError(ErrorCode.LOCKED, detail={"name": repository})
        tags = [r["RowKey"][len(layout.TAG):] for r in tag_rows]
        digests = [r["RowKey"][len(layout.MANIFEST):] for r in manifest_rows]
        for digest in digests:
            try:
                await self.manifest_service.delete(repository, digest)
            except RegistryError as error:
                if error.code is not ErrorCode.MANIFEST_UNKNOWN:
                    raise
        partition = layout.encode_repository(repository)
        for row in await self._rows(repository, layout.LINK):
            await self.storage.repos.delete_entity(partition, row["RowKey"])
        await self.storage.repos.delete_entity(layout.CATALOG_PARTITION, partition)
        return {"manifestsDeleted": digests, "tagsDeleted": tags}

    def _tag(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"name": row["RowKey"][len(layout.TAG):], "digest": row["digest"],
                "createdTime": _time(row.get("created")), "lastUpdateTime": _time(row.get("updated")),
                "signed": False, "changeableAttributes": changeable_attributes(row)}

    async def tags(self, repository: str, digest: str | None = None) -> list[dict[str, Any]]:
        """The listable tags of a repository (optionally of one digest), in name order."""
        await self._repository_row(repository)
        rows = await self._rows(repository, layout.TAG)
        return [self._tag(r) for r in rows
                if listed(r) and (digest is None or r["digest"] == digest)]

    async def tag(self, repository: str, tag: str) -> dict[str, Any]:
        """One tag's properties."""
        row = await self._row(layout.encode_repository(repository), layout.tag_key(tag),
                              ErrorCode.MANIFEST_UNKNOWN, {"tag": tag})
        return self._tag(row)

    async def update_tag(self, repository: str, tag: str, body: Any) -> dict[str, Any]:
        """PATCH a tag's changeable attributes."""
        await self.tag(repository, tag)
        await self.storage.repos.update_entity({"PartitionKey": layout.encode_repository(repository),
                                                "RowKey": layout.tag_key(tag), **lock_update(body)}, mode="merge")
        self.locks.forget()
        return await self.tag(repository, tag)

    def _manifest(self, row: dict[str, Any], tags: list[str]) -> dict[str, Any]:
        references = []
        for child in json.loads(row.get("children") or "[]"):
            platform = child.get("platform") or {}
            references.append({"digest": child["digest"], "architecture": platform.get("architecture"),
                               "os": platform.get("os")})
        doc: dict[str, Any] = {
            "digest": row["digest"], "imageSize": read_int(row.get("image_size")) or read_int(row.get("size")),
            "createdTime": _time(row.get("created")), "lastUpdateTime": _time(row.get("updated")),
            "mediaType": row.get("media_type"), "tags": tags, "changeableAttributes": changeable_attributes(row),
        }
        if row.get("architecture"):
            doc["architecture"] = row["architecture"]
        if row.get("os"):
            doc["os"] = row["os"]
        if row.get("config_media_type"):
            doc["configMediaType"] = row["config_media_type"]
        if references:
            doc["references"] = references
        return doc

    async def manifests(self, repository: str) -> list[dict[str, Any]]:
        """The listable manifests of a repository, in digest order, with their tags."""
        await self._repository_row(repository)
        tags: dict[str, list[str]] = {}
        for row in await self._rows(repository, layout.TAG):
            tags.setdefault(row["digest"], []).append(row["RowKey"][len(layout.TAG):])
        return [self._manifest(r, tags.get(r["digest"], [])) for r in await self._rows(repository, layout.MANIFEST)
                if listed(r)]

    async def manifest(self, repository: str, digest: str) -> dict[str, Any]:
        """One manifest's properties."""
        digest = str(Digest.parse(digest))
        row = await self._row(layout.encode_repository(repository), layout.manifest_key(digest),
                              ErrorCode.MANIFEST_UNKNOWN, {"digest": digest})
        tags = [self._tag(r)["name"] for r in await self._rows(repository, layout.TAG) if r["digest"] == digest]
        return self._manifest(row, tags)

    async def update_manifest(self, repository: str, digest: str, body: Any) -> dict[str, Any]:
        """PATCH a manifest's changeable attributes."""
        await self.manifest(repository, digest)
        await self.storage.repos.update_entity({"PartitionKey": layout.encode_repository(repository),
                                                "RowKey": layout.manifest_key(str(Digest.parse(digest))),
                                                **lock_update(body)}, mode="merge")
        self.locks.forget()
        return await self.manifest(repository, digest)
