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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableTransactionError
from azure.storage.blob import ContentSettings

from shared.errors import Unavailable
from shared.events.model import (
    Chart,
    RegistryEvent,
    chart_of,
    current_request_info,
    delete_event,
    push_event,
    untag_event,
)
from shared.kernel.interfaces import EventSink
from shared.oci.digest import Digest
from shared.oci.errors import InvalidDigest, InvalidManifest, InvalidTag
from shared.oci.manifest import Manifest, parse_manifest
from shared.oci.names import is_tag, validate_tag
from shared.registry import references
from shared.registry.blobs import BlobService
from shared.registry.commit import PROPERTY_CHARS, Commit, Committer, check_sizes
from shared.registry.errors import DigestMismatch, ManifestUnknown
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none, prefix_range
from shared.storage.rows import CatalogRow, ManifestRow, ReferrerRow, TagRow, etag_of

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


def _too_many_annotations() -> InvalidManifest:
    return InvalidManifest(
        "the annotations of a manifest with a subject are listed by the referrers API and may take "
        f"at most {PROPERTY_CHARS} characters of JSON", detail={"limit": PROPERTY_CHARS})


class ManifestService:
    """Puts, gets and deletes manifests and tags of one registry."""

    def __init__(self, storage: Storage, blobs: BlobService, events: EventSink[RegistryEvent]) -> None:
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
            raise DigestMismatch(detail={"expected": str(expected), "actual": str(manifest.digest)})
        referrer = self._referrer_row(repository, manifest)
        found = await references.check_references(self.storage.repos, repository, manifest)
        platform = await references.platform(self.blobs, manifest, found)
        row = replace(self._row(repository, manifest), architecture=platform.get("architecture"),
                      os=platform.get("os"))
        chart = chart_of(manifest.config.media_type if manifest.config else None, manifest.annotations,
                         repository, tag)
        if chart is not None:
            row = replace(row, chart_name=chart.name, chart_version=chart.version)
        event = push_event(repository, str(manifest.digest), manifest.media_type, len(manifest.raw), tag,
                           current_request_info(), chart)
        events = (event,)
        change = Commit(row, tag, referrer, events)
        check_sizes(change, self.events)
        if not row.content:
            blob = self.storage.container.get_blob_client(layout.manifest_blob(str(manifest.digest)))
            await blob.upload_blob(manifest.raw, overwrite=True,
                                   content_settings=ContentSettings(content_type=manifest.media_type))
        try:
            await self.storage.repos.create_entity(CatalogRow(repository, created=_now()).to_entity())
        except ResourceExistsError:
            pass
        await self.committer.commit(change)
        self.events.committed(change.partition, events)
        return PushResult(manifest, tag, events)

    async def get(self, repository: str, reference: str, with_content: bool = True,
                  seen: Mapping[str, TagRow | ManifestRow] | None = None) -> StoredManifest:
        """The manifest named by ``reference``; ManifestUnknown when there is none, also when
        ``reference`` is neither a valid tag nor a supported digest (it cannot name one).

        ``seen`` holds rows this request already read (by row key), which are used as they are.
        """
        try:
            key = layout.tag_key(validate_tag(reference)) if is_tag(reference) else layout.manifest_key(
                str(Digest.parse(reference)))
        except (InvalidTag, InvalidDigest):
            raise ManifestUnknown(detail={"reference": reference[:200]}) from None
        row = (seen or {}).get(key)
        if row is None:
            kind: type[TagRow | ManifestRow] = TagRow if key.startswith(layout.TAG) else ManifestRow
            row = await get_or_none(self.storage.repos, layout.encode_repository(repository), key, kind)
            if row is None:
                raise ManifestUnknown(detail={"reference": reference})
        digest = Digest.parse(row.digest)
        content: bytes | None = None
        if with_content:
            if row.content:
                content = row.content
            else:
                blob = self.storage.container.get_blob_client(layout.manifest_blob(str(digest)))
                content = await (await blob.download_blob()).readall()
        return StoredManifest(digest, row.media_type, row.size, content)

    async def delete(self, repository: str, reference: str) -> Digest:
        """Delete a tag, or a manifest with every tag and referrer row that points at it.

        Deleting a manifest (not a tag alone) commits its delete event with the manifest's row,
        on condition that the row is unchanged since its tags were listed: a push that tagged it
        meanwhile makes the delete list its tags again, so no tag is left naming nothing.
        """
        partition = layout.encode_repository(repository)
        if is_tag(reference):
            return await self._untag(repository, validate_tag(reference))
        digest = str(Digest.parse(reference))
        for attempt in range(_DELETE_ATTEMPTS):
            row = await get_or_none(self.storage.repos, partition, layout.manifest_key(digest), ManifestRow)
            if row is None:
                if attempt:
                    return Digest.parse(digest)  # a concurrent delete won, and its event tells
                raise ManifestUnknown(detail={"reference": reference})
            if await self._delete_manifest(partition, repository, row):
                return Digest.parse(digest)
        raise Unavailable("the manifest keeps changing; retry later", retry_after=1)

    async def _untag(self, repository: str, tag: str) -> Digest:
        """Delete a tag alone, with its ``untag`` event, on condition that it is unchanged since read."""
        partition, key = layout.encode_repository(repository), layout.tag_key(tag)
        for _ in range(_DELETE_ATTEMPTS):
            tag_row = await get_or_none(self.storage.repos, partition, key, TagRow)
            if tag_row is None:
                raise ManifestUnknown(detail={"reference": tag})
            event = untag_event(repository, tag, tag_row.digest, current_request_info())
            ops: list[Any] = [("delete", {"PartitionKey": partition, "RowKey": key},
                               {"etag": tag_row.etag, "match_condition": MatchConditions.IfNotModified})]
            try:
                await self.storage.repos.submit_transaction(ops + self.events.operations(partition, [event]))
            except TableTransactionError as error:
                if str(getattr(error, "error_code", "")) in ("UpdateConditionNotSatisfied", "ResourceNotFound"):
                    continue  # moved or deleted meanwhile: read it again
                raise
            self.events.committed(partition, [event])
            return Digest.parse(tag_row.digest)
        raise Unavailable("the tag keeps changing; retry later", retry_after=1)

    async def _delete_manifest(self, partition: str, repository: str, row: ManifestRow) -> bool:
        """Delete the tags and referrer row of the manifest ``row``, then the row itself if it
        is unchanged; False when it changed (tagged again) meanwhile."""
        digest = row.digest
        tags = prefix_range(self.storage.repos, partition, layout.TAG, where="digest eq @digest",
                            parameters={"digest": digest}, select=["PartitionKey", "RowKey"])
        # Tags and referrer rows go first, the manifest last: a failure part-way leaves a manifest
        # that can be deleted again, never a tag pointing at nothing. A tag moved to another
        # manifest since it was listed is not ours to delete (its ETag tells).
        rows = [(str(t["RowKey"]), etag_of(t)) async for t in tags]
        if row.subject:
            rows.append((layout.referrer_key(row.subject, digest), None))
        for start in range(0, len(rows), 99):
            await self._delete_rows(partition, rows[start:start + 99])
        final: list[Any] = [("delete", {"PartitionKey": partition, "RowKey": layout.manifest_key(digest)},
                             {"etag": row.etag, "match_condition": MatchConditions.IfNotModified})]
        event = delete_event(repository, digest, row.media_type, current_request_info(), row.size,
                             _chart_of_row(row))
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

    def _referrer_row(self, repository: str, manifest: Manifest) -> ReferrerRow | None:
        """The referrer row of a manifest with a subject; InvalidManifest when its annotations
        are too large to list (each referrers answer repeats them)."""
        if manifest.subject is None:
            return None
        descriptor = manifest.descriptor()
        row = ReferrerRow(repository, str(manifest.subject.digest), str(manifest.digest), descriptor.media_type,
                          descriptor.size, descriptor.artifact_type, manifest.annotations)
        if len(row.to_entity()["annotations"]) > PROPERTY_CHARS:  # ASCII (json.dumps escapes the rest)
            raise _too_many_annotations()
        return row

    @staticmethod
    def _row(repository: str, manifest: Manifest) -> ManifestRow:
        """The manifest row's properties, all derived from its bytes."""
        children = None
        if manifest.children:
            listed = json.dumps([c.to_json() for c in manifest.children], separators=(",", ":"))
            children = listed if len(listed) < _CHILDREN_LIMIT else None
        return ManifestRow(
            repository=repository, digest=str(manifest.digest), media_type=manifest.media_type,
            size=len(manifest.raw), artifact_type=manifest.artifact_type,
            image_size=references.image_size(manifest),
            config_digest=str(manifest.config.digest) if manifest.config is not None else None,
            config_media_type=manifest.config.media_type if manifest.config is not None else None,
            subject=str(manifest.subject.digest) if manifest.subject is not None else None,
            children=children,
            # Empty bytes mark content kept as a blob, so a row rewritten by merge never keeps old bytes.
            content=manifest.raw if len(manifest.raw) <= INLINE_LIMIT else b"",
        )


def _chart_of_row(row: ManifestRow) -> Chart | None:
    if not row.chart_name:
        return None
    return Chart(row.chart_name, row.chart_version or "")
