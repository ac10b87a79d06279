"""Manifests and tags: store exact bytes, verify digests and references, commit atomically.

A manifest, the tag that names it and its referrer row live in the repository's table
partition, so one entity-group transaction writes them together (:mod:`shared.registry.commit`);
what a manifest references is checked first (:mod:`shared.registry.references`). The events a
push or delete causes go to the :class:`~shared.kernel.interfaces.EventSink` (the outbox) in the
same transaction, carrying the current request (:mod:`shared.kernel.context`).
"""

from __future__ import annotations

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
from shared.events.model import Chart, RegistryEvent, chart_of, current_request_info, delete_event, push_event
from shared.kernel.interfaces import EventSink
from shared.oci.digest import Digest
from shared.oci.manifest import Manifest, parse_manifest
from shared.oci.names import is_tag, validate_tag
from shared.registry import references
from shared.registry.blobs import BlobService
from shared.registry.commit import PROPERTY_CHARS, Commit, Committer, check_sizes
from shared.storage import layout
from shared.storage.clients import StorageClients
from shared.storage.values import int64, read_int

INLINE_LIMIT = 60_000  # a binary table property holds at most 64 KiB
_CHILDREN_LIMIT = 30_000
_DELETE_ATTEMPTS = 8


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


def _too_many_annotations() -> RegistryError:
    return RegistryError(
        ErrorCode.MANIFEST_INVALID,
        "the annotations of a manifest with a subject are listed by the referrers API and may take "
        f"at most {PROPERTY_CHARS} characters of JSON", detail={"limit": PROPERTY_CHARS})


class ManifestService:
    """Puts, gets and deletes manifests and tags of one registry."""

    def __init__(self, storage: StorageClients, blobs: BlobService, events: EventSink[RegistryEvent]) -> None:
        self.storage = storage
        self.blobs = blobs
        self.events = events
        self.committer = Committer(storage, events)

    async def put(self, repository: str, reference: str, raw: bytes, content_type: str) -> PushResult:
        """Store ``raw`` under ``reference``: a tag (the manifest is then known by its sha256
        digest), or the manifest's own digest of any supported algorithm.

        The push event (with the current request) commits with the manifest, in the event sink.
        """
        tag = validate_tag(reference) if is_tag(reference) else None
        expected = None if tag is not None else Digest.parse(reference)
        manifest = parse_manifest(raw, content_type, expected.algorithm if expected else "sha256")
        if expected is not None and manifest.digest != expected:
            raise RegistryError(ErrorCode.DIGEST_INVALID,
                                detail={"expected": str(expected), "actual": str(manifest.digest)})
        referrer = self._referrer_row(repository, manifest)
        found = await references.check_references(self.storage.repos, repository, manifest)
        fields = self._fields(manifest)
        fields |= await references.platform(self.blobs, manifest, found)
        chart = chart_of(manifest.config.media_type if manifest.config else None, manifest.annotations,
                         repository, tag)
        if chart is not None:
            fields.update(chart_name=chart.name, chart_version=chart.version)
        event = push_event(repository, str(manifest.digest), manifest.media_type, len(manifest.raw), tag,
                           current_request_info(), chart)
        events = (event,)
        change = Commit(layout.encode_repository(repository), str(manifest.digest), fields, tag, referrer, events)
        check_sizes(change, self.events)
        if not fields["content"]:
            blob = self.storage.container.get_blob_client(layout.manifest_blob(str(manifest.digest)))
            await blob.upload_blob(manifest.raw, overwrite=True,
                                   content_settings=ContentSettings(content_type=manifest.media_type))
        try:
            await self.storage.repos.create_entity(
                {"PartitionKey": layout.CATALOG_PARTITION, "RowKey": layout.encode_repository(repository),
                 "name": repository, "created": _now()}
            )
        except ResourceExistsError:
            pass
        await self.committer.commit(change)
        self.events.committed(change.partition, events)
        return PushResult(manifest, tag, events)

    async def get(self, repository: str, reference: str, with_content: bool = True,
                  seen: Mapping[str, Any] | None = None) -> StoredManifest:
        """The manifest named by ``reference``; MANIFEST_UNKNOWN when there is none, also when
        ``reference`` is neither a valid tag nor a supported digest (it cannot name one).

        ``seen`` holds rows this request already read (by row key), which are used as they are.
        """
        try:
            key = layout.tag_key(validate_tag(reference)) if is_tag(reference) else layout.manifest_key(
                str(Digest.parse(reference)))
        except RegistryError:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": reference[:200]}) from None
        row = (seen or {}).get(key)
        if row is None:
            try:
                row = await self.storage.repos.get_entity(layout.encode_repository(repository), key)
            except ResourceNotFoundError:
                raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": reference}) from None
        digest = Digest.parse(row["digest"])
        content: bytes | None = None
        if with_content:
            if row.get("content"):
                content = bytes(row["content"])
            else:
                blob = self.storage.container.get_blob_client(layout.manifest_blob(str(digest)))
                content = await (await blob.download_blob()).readall()
        return StoredManifest(digest, str(row["media_type"]), read_int(row["size"]), content)

    async def delete(self, repository: str, reference: str) -> Digest:
        """Delete a tag, or a manifest with every tag and referrer row that points at it.

        Deleting a manifest (not a tag alone) commits its delete event with the manifest's row,
        on condition that the row is unchanged since its tags were listed: a push that tagged it
        meanwhile makes the delete list its tags again, so no tag is left naming nothing.
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
        for attempt in range(_DELETE_ATTEMPTS):
            try:
                row = await self.storage.repos.get_entity(partition, layout.manifest_key(digest))
            except ResourceNotFoundError:
                if attempt:
                    return Digest.parse(digest)  # a concurrent delete won, and its event tells
                raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": reference}) from None
            if await self._delete_manifest(partition, repository, row):
                return Digest.parse(digest)
        raise RegistryError(ErrorCode.UNAVAILABLE, "the manifest keeps changing; retry later",
                            headers={"Retry-After": "1"})

    async def _delete_manifest(self, partition: str, repository: str, row: TableEntity) -> bool:
        """Delete the tags and referrer row of the manifest ``row``, then the row itself if it
        is unchanged; False when it changed (tagged again) meanwhile."""
        digest = str(row["digest"])
        tags = self.storage.repos.query_entities(
            "PartitionKey eq @pk and RowKey gt @start and RowKey lt @end and digest eq @digest",
            parameters={"pk": partition, "start": layout.TAG, "end": layout.TAG[:-1] + layout.RANGE_END,
                        "digest": digest},
            select=["PartitionKey", "RowKey"],
        )
        # Tags and referrer rows go first, the manifest last: a failure part-way leaves a manifest
        # that can be deleted again, never a tag pointing at nothing. A tag moved to another
        # manifest since it was listed is not ours to delete (its ETag tells).
        rows = [(t["RowKey"], t.metadata["etag"]) async for t in tags]
        if row.get("subject"):
            rows.append((layout.referrer_key(row["subject"], digest), None))
        for start in range(0, len(rows), 99):
            await self._delete_rows(partition, rows[start:start + 99])
        final: list[Any] = [("delete", {"PartitionKey": partition, "RowKey": layout.manifest_key(digest)},
                             {"etag": row.metadata["etag"], "match_condition": MatchConditions.IfNotModified})]
        event = delete_event(repository, digest, str(row["media_type"]), current_request_info(),
                             read_int(row["size"]), _chart_of_row(row))
        final += self.events.operations(partition, [event])
        try:
            await self.storage.repos.submit_transaction(final)
        except TableTransactionError as error:
            code = str(getattr(error, "error_code", ""))
            if code in ("UpdateConditionNotSatisfied", "ResourceNotFound"):
                return False
            raise
        self.events.committed(partition, [event])
        return True

    async def _delete_rows(self, partition: str, rows: list[tuple[str, str | None]]) -> None:
        """Delete rows by key, each on condition of its ETag when one is given; rows already
        gone or changed are left alone."""
        def op(key: str, etag: str | None) -> tuple[Any, ...]:
            entity = {"PartitionKey": partition, "RowKey": key}
            if etag is None:
                return ("delete", entity)
            return ("delete", entity, {"etag": etag, "match_condition": MatchConditions.IfNotModified})

        try:
            await self.storage.repos.submit_transaction([op(k, e) for k, e in rows])
            return
        except TableTransactionError as error:
            if str(getattr(error, "error_code", "")) not in ("ResourceNotFound", "UpdateConditionNotSatisfied"):
                raise
        for key, etag in rows:  # one of them vanished or changed: the rest one by one
            try:
                await self.storage.repos.submit_transaction([op(key, etag)])
            except TableTransactionError as error:
                if str(getattr(error, "error_code", "")) not in ("ResourceNotFound", "UpdateConditionNotSatisfied"):
                    raise

    def _referrer_row(self, repository: str, manifest: Manifest) -> dict[str, Any] | None:
        """The referrer row of a manifest with a subject; MANIFEST_INVALID when its annotations
        are too large to list (each referrers answer repeats them)."""
        if manifest.subject is None:
            return None
        annotations = json.dumps(manifest.annotations, separators=(",", ":"))
        if len(annotations) > PROPERTY_CHARS:  # ASCII (json.dumps escapes the rest)
            raise _too_many_annotations()
        descriptor = manifest.descriptor()
        return {
            "PartitionKey": layout.encode_repository(repository),
            "RowKey": layout.referrer_key(str(manifest.subject.digest), str(manifest.digest)),
            "media_type": descriptor.media_type, "size": int64(descriptor.size),
            "artifact_type": descriptor.artifact_type, "annotations": annotations,
        }

    @staticmethod
    def _fields(manifest: Manifest) -> dict[str, Any]:
        """The manifest row's properties, all derived from its bytes."""
        fields: dict[str, Any] = {
            "digest": str(manifest.digest),
            "media_type": manifest.media_type,
            "size": int64(len(manifest.raw)),
            "artifact_type": manifest.artifact_type,
            "image_size": int64(references.image_size(manifest)),
        }
        if manifest.config is not None:
            fields["config_digest"] = str(manifest.config.digest)
            fields["config_media_type"] = manifest.config.media_type
        if manifest.subject is not None:
            fields["subject"] = str(manifest.subject.digest)
        if manifest.children:
            children = json.dumps([c.to_json() for c in manifest.children], separators=(",", ":"))
            if len(children) < _CHILDREN_LIMIT:
                fields["children"] = children
        # An empty value marks bytes kept as a blob, so a row rewritten by merge never keeps old bytes.
        fields["content"] = manifest.raw if len(manifest.raw) <= INLINE_LIMIT else b""
        return fields


def _chart_of_row(row: TableEntity) -> Chart | None:
    if not row.get("chart_name"):
        return None
    return Chart(str(row["chart_name"]), str(row.get("chart_version", "")))
