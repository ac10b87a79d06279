"""Manifests and tags: store exact bytes, verify digests and references, commit atomically.

A manifest, the tag that names it and its referrer row live in the repository's table
partition, so one entity-group transaction writes them together; ETag conditions turn
concurrent pushes of one tag into a clean retry instead of a torn state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableEntity, TableTransactionError
from azure.storage.blob import ContentSettings

from shared.errors import ErrorCode, RegistryError
from shared.events.model import Chart, RegistryEvent, RequestInfo, chart_of, delete_event, push_event
from shared.events.outbox import Outbox
from shared.oci.digest import Digest
from shared.oci.manifest import Descriptor, Manifest, parse_manifest
from shared.oci.names import is_tag, validate_tag
from shared.registry.blobs import BlobService
from shared.registry.locks import lock_fields
from shared.storage import layout
from shared.storage.clients import StorageClients

INLINE_LIMIT = 60_000  # a binary table property holds at most 64 KiB
_COMMIT_ATTEMPTS = 8
_LOOKUPS_AT_ONCE = 16
_CONFIG_LIMIT = 64 * 1024
IMAGE_CONFIG_TYPES = frozenset({"application/vnd.oci.image.config.v1+json",
                                "application/vnd.docker.container.image.v1+json"})


@dataclass(frozen=True)
class StoredManifest:
    """A manifest as served: digest, media type, size and (unless only stat'ed) its bytes."""

    digest: Digest
    media_type: str
    size: int
    content: bytes | None


@dataclass(frozen=True)
class PushResult:
    """What a manifest PUT stored; the API answers from it and events are built from it."""

    manifest: Manifest
    tag: str | None
    events: tuple[RegistryEvent, ...] = ()


def _now() -> datetime:
    return datetime.now(UTC)


class ManifestService:
    """Puts, gets and deletes manifests and tags of one registry."""

    def __init__(self, storage: StorageClients, blobs: BlobService, outbox: Outbox | None = None) -> None:
        self.storage = storage
        self.blobs = blobs
        self.outbox = outbox

    async def put(self, repository: str, reference: str, raw: bytes, content_type: str,
                  request: RequestInfo | None = None) -> PushResult:
        """Store ``raw`` under ``reference`` (a tag or the manifest's digest).

        The push event (``request`` says who asked) commits with the manifest, in the outbox.
        """
        tag = validate_tag(reference) if is_tag(reference) else None
        manifest = parse_manifest(raw, content_type)
        if tag is None:
            expected = Digest.parse(reference)
            actual = Digest.of(raw, expected.algorithm)
            if actual != expected:
                raise RegistryError(
                    ErrorCode.DIGEST_INVALID, detail={"expected": str(expected), "actual": str(actual)}
                )
        await self._check_references(repository, manifest)
        entity = await self._manifest_entity(manifest)
        entity |= await self._platform(repository, manifest)
        try:
            await self.storage.repos.create_entity(
                {"PartitionKey": layout.CATALOG_PARTITION, "RowKey": layout.encode_repository(repository),
                 "name": repository, "created": _now()}
            )
        except ResourceExistsError:
            pass
        chart = chart_of(manifest.config.media_type if manifest.config else None, manifest.annotations,
                         repository, tag)
        if chart is not None:
            entity.update(chart_name=chart.name, chart_version=chart.version)
        event = push_event(repository, str(manifest.digest), manifest.media_type, len(manifest.raw), tag,
                           request, chart)
        events = (event,) if self.outbox is not None else ()
        await self._commit(repository, manifest, entity, tag, events)
        if self.outbox is not None:
            self.outbox.committed(layout.encode_repository(repository), events)
        return PushResult(manifest, tag, events)

    async def get(self, repository: str, reference: str, with_content: bool = True,
                  seen: Mapping[str, Any] | None = None) -> StoredManifest:
        """The manifest named by ``reference``; MANIFEST_UNKNOWN when there is none.

        ``seen`` holds rows this request already read (by row key), which are used as they are.
        """
        key = layout.tag_key(validate_tag(reference)) if is_tag(reference) else layout.manifest_key(
            str(Digest.parse(reference))
        )
        row = (seen or {}).get(key)
        if row is None:
            try:
                row = await self.storage.repos.get_entity(layout.encode_repository(repository), key)
            except ResourceNotFoundError:
                raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": reference}) from None
        digest = Digest.parse(row["digest"])
        content: bytes | None = None
        if with_content:
            if row.get("content") is not None:
                content = bytes(row["content"])
            else:
                blob = self.storage.container.get_blob_client(layout.manifest_blob(str(digest)))
                content = await (await blob.download_blob()).readall()
        return StoredManifest(digest, str(row["media_type"]), int(row["size"]), content)

    async def delete(self, repository: str, reference: str, request: RequestInfo | None = None) -> Digest:
        """Delete a tag, or a manifest with every tag and referrer row that points at it.

        Deleting a manifest (not a tag alone) commits its delete event with the manifest's row.
        """
        partition = layout.encode_repository(repository)
        if is_tag(reference):
            validate_tag(reference)
            try:
                row = await self.storage.repos.get_entity(partition, layout.tag_key(reference))
                await self.storage.repos.delete_entity(
                    partition, layout.tag_key(reference), etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceNotFoundError:
                raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": reference}) from None
            return Digest.parse(row["digest"])
        digest = str(Digest.parse(reference))
        try:
            row = await self.storage.repos.get_entity(partition, layout.manifest_key(digest))
        except ResourceNotFoundError:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": reference}) from None
        tags = self.storage.repos.query_entities(
            "PartitionKey eq @pk and RowKey gt @start and RowKey lt @end and digest eq @digest",
            parameters={"pk": partition, "start": layout.TAG, "end": layout.TAG[:-1] + layout.RANGE_END,
                        "digest": digest},
            select=["PartitionKey", "RowKey"],
        )
        keys = [t["RowKey"] async for t in tags]
        if row.get("subject"):
            keys.append(layout.referrer_key(row["subject"], digest))
        # Tags and referrer rows go first, the manifest last: a failure part-way leaves a manifest
        # that can be deleted again, never a tag pointing at nothing.
        for start in range(0, len(keys), 99):
            await self._delete_rows(partition, keys[start:start + 99])
        final: list[Any] = [("delete", {"PartitionKey": partition, "RowKey": layout.manifest_key(digest)})]
        event = delete_event(repository, digest, str(row["media_type"]), request, int(row["size"]),
                             _chart_of_row(row))
        if self.outbox is not None:
            final.append(Outbox.row(partition, event))
        try:
            await self.storage.repos.submit_transaction(final)
        except TableTransactionError as error:
            if str(getattr(error, "error_code", "")) != "ResourceNotFound":
                raise
            return Digest.parse(digest)  # a concurrent delete won, and its event tells
        if self.outbox is not None:
            self.outbox.committed(partition, [event])
        return Digest.parse(digest)

    async def _delete_rows(self, partition: str, keys: list[str]) -> None:
        ops = [("delete", {"PartitionKey": partition, "RowKey": k}) for k in keys]
        if await self._submit(ops, missing_ok=True):
            return
        for key in keys:  # a row vanished under us: delete the rest one by one
            try:
                await self.storage.repos.delete_entity(partition, key)
            except ResourceNotFoundError:
                pass
    async def _platform(self, repository: str, manifest: Manifest) -> dict[str, Any]:
        """Architecture and OS from an image's config, and the image's total size (metadata API)."""
        fields: dict[str, Any] = {"image_size": len(manifest.raw) + sum(b.size for b in manifest.blobs)}
        config = manifest.config
        if config is None or config.media_type not in IMAGE_CONFIG_TYPES or config.size > _CONFIG_LIMIT:
            return fields
        try:
            info = await self.blobs.stat(repository, config.digest)
            raw = b"".join([chunk async for chunk in self.blobs.stream(info, 0, info.size)])
            doc = json.loads(raw)
        except (RegistryError, ValueError):
            return fields
        if isinstance(doc, dict):
            fields |= {k: doc[k] for k in ("architecture", "os") if isinstance(doc.get(k), str)}
        return fields

    async def _check_references(self, repository: str, manifest: Manifest) -> None:
        gate = asyncio.Semaphore(_LOOKUPS_AT_ONCE)
        partition = layout.encode_repository(repository)

        async def missing(descriptor: Descriptor, key: str) -> str | None:
            async with gate:
                try:
                    await self.storage.repos.get_entity(partition, key, select=["RowKey"])
                except ResourceNotFoundError:
                    return str(descriptor.digest)
                return None

        checks = [missing(d, layout.link_key(str(d.digest))) for d in manifest.blobs]
        checks += [missing(d, layout.manifest_key(str(d.digest))) for d in manifest.children]
        absent = sorted({d for d in await asyncio.gather(*checks) if d})
        if absent:
            raise RegistryError(ErrorCode.MANIFEST_BLOB_UNKNOWN, detail={"digests": absent})

    async def _manifest_entity(self, manifest: Manifest) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "digest": str(manifest.digest),
            "media_type": manifest.media_type,
            "size": len(manifest.raw),
            "artifact_type": manifest.artifact_type,
        }
        if manifest.config is not None:
            entity["config_digest"] = str(manifest.config.digest)
            entity["config_media_type"] = manifest.config.media_type
        if manifest.subject is not None:
            entity["subject"] = str(manifest.subject.digest)
        if manifest.children:
            children = json.dumps([c.to_json() for c in manifest.children], separators=(",", ":"))
            if len(children) < 30_000:
                entity["children"] = children
        if len(manifest.raw) <= INLINE_LIMIT:
            entity["content"] = manifest.raw
        else:
            blob = self.storage.container.get_blob_client(layout.manifest_blob(str(manifest.digest)))
            await blob.upload_blob(
                manifest.raw, overwrite=True,
                content_settings=ContentSettings(content_type=manifest.media_type),
            )
        return entity

    async def _commit(self, repository: str, manifest: Manifest, fields: dict[str, Any], tag: str | None,
                      events: tuple[RegistryEvent, ...] = ()) -> None:
        partition = layout.encode_repository(repository)
        digest = str(manifest.digest)
        for _ in range(_COMMIT_ATTEMPTS):
            ops: list[Any] = []
            now = _now()
            current = await self._get(partition, layout.manifest_key(digest))
            row = {"PartitionKey": partition, "RowKey": layout.manifest_key(digest), **fields,
                   "created": current["created"] if current else now, "updated": now, **lock_fields(current)}
            ops.append(_write(row, current))
            if tag is not None:
                tag_row = await self._get(partition, layout.tag_key(tag))
                ops.append(_write({"PartitionKey": partition, "RowKey": layout.tag_key(tag),
                                   **{k: v for k, v in fields.items() if k in ("digest", "media_type", "size",
                                                                              "content")},
                                   "created": tag_row["created"] if tag_row else now, "updated": now,
                                   **lock_fields(tag_row)}, tag_row))
            if manifest.subject is not None:
                descriptor = manifest.descriptor()
                ops.append(("upsert", {
                    "PartitionKey": partition,
                    "RowKey": layout.referrer_key(str(manifest.subject.digest), digest),
                    "media_type": descriptor.media_type, "size": descriptor.size,
                    "artifact_type": descriptor.artifact_type,
                    "annotations": json.dumps(descriptor.annotations, separators=(",", ":")),
                }, {"mode": "replace"}))
            ops += [Outbox.row(partition, event) for event in events]
            if await self._submit(ops):
                return
        raise RegistryError(ErrorCode.UNAVAILABLE, "too many concurrent updates of this manifest or tag")

    async def _get(self, partition: str, key: str) -> TableEntity | None:
        try:
            return await self.storage.repos.get_entity(partition, key)
        except ResourceNotFoundError:
            return None

    async def _submit(self, ops: list[Any], missing_ok: bool = False) -> bool:
        """Run one transaction; False when an ETag or existence condition failed (or, with
        ``missing_ok``, a row to delete was already gone)."""
        try:
            await self.storage.repos.submit_transaction(ops)
        except TableTransactionError as error:
            code = str(getattr(error, "error_code", ""))
            if code in ("EntityAlreadyExists", "UpdateConditionNotSatisfied"):
                return False
            if missing_ok and code == "ResourceNotFound":
                return False
            raise
        return True


def _chart_of_row(row: TableEntity) -> Chart | None:
    if not row.get("chart_name"):
        return None
    return Chart(str(row["chart_name"]), str(row.get("chart_version", "")))


def _write(row: dict[str, Any], current: TableEntity | None) -> tuple[Any, ...]:
    """A create when the row is new, else a replace conditioned on the ETag that was read."""
    if current is None:
        return ("create", row)
    return ("update", row, {"mode": "replace", "etag": current.metadata["etag"],
                            "match_condition": MatchConditions.IfNotModified})
