"""Rows of the ``repos`` table: each repository's catalog entry, manifests, tags, blob links,
referrers and outbox (keys in :mod:`shared.storage.layout`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from shared.storage import layout
from shared.storage.rows.base import etag_of, moment, present, text
from shared.storage.values import int64, read_int


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


@dataclass(frozen=True)
class Locks:
    """ACR's ``changeableAttributes`` as a row stores them: a flag that is None is not stored,
    which means true."""

    can_delete: bool | None = None
    can_write: bool | None = None
    can_read: bool | None = None
    can_list: bool | None = None

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Locks:
        """The flags ``entity`` carries."""
        return cls(*(_flag(entity.get(name)) for name in layout.LOCK_FLAGS))

    def to_entity(self) -> dict[str, bool]:
        """The stored flags."""
        return present(**{name: getattr(self, name) for name in layout.LOCK_FLAGS})

    def allows(self, flag: str) -> bool:
        """False only when ``flag`` (``can_write`` ...) is stored as false."""
        return getattr(self, flag) is not False


@dataclass(frozen=True)
class CatalogRow:
    """``repos``, partition ``_catalog``: a repository that has had a manifest pushed."""

    repository: str
    created: datetime | None = None
    locks: Locks = Locks()
    etag: str | None = field(default=None, compare=False)

    def to_entity(self) -> dict[str, Any]:
        """The row as stored."""
        return {"PartitionKey": layout.CATALOG_PARTITION, "RowKey": layout.encode_repository(self.repository),
                "name": self.repository, **present(created=self.created), **self.locks.to_entity()}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        return cls(layout.decode_repository(str(entity["RowKey"])), moment(entity, "created"),
                   Locks.from_entity(entity), etag_of(entity))


@dataclass(frozen=True)
class ManifestRow:
    """``repos``, ``m|<digest>``: a manifest. Every property but the times and lock flags derives
    from its bytes; ``content`` holds them, or is empty when they are in a blob (too large)."""

    repository: str
    digest: str
    media_type: str
    size: int
    content: bytes = b""
    artifact_type: str = ""
    image_size: int | None = None
    config_digest: str | None = None
    config_media_type: str | None = None
    subject: str | None = None
    children: str | None = None  # JSON list of the index's descriptors, when short enough
    architecture: str | None = None
    os: str | None = None
    chart_name: str | None = None
    chart_version: str | None = None
    created: datetime | None = None
    updated: datetime | None = None
    locks: Locks = Locks()
    etag: str | None = field(default=None, compare=False)

    def to_entity(self) -> dict[str, Any]:
        """The row as stored."""
        return {
            "PartitionKey": layout.encode_repository(self.repository), "RowKey": layout.manifest_key(self.digest),
            "digest": self.digest, "media_type": self.media_type, "size": int64(self.size),
            "artifact_type": self.artifact_type, "content": self.content,
            **present(image_size=None if self.image_size is None else int64(self.image_size),
                      config_digest=self.config_digest, config_media_type=self.config_media_type,
                      subject=self.subject, children=self.children, architecture=self.architecture, os=self.os,
                      chart_name=self.chart_name, chart_version=self.chart_version,
                      created=self.created, updated=self.updated),
            **self.locks.to_entity(),
        }

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        return cls(
            repository=layout.decode_repository(str(entity["PartitionKey"])), digest=str(entity["digest"]),
            media_type=str(entity.get("media_type") or ""), size=read_int(entity.get("size")),
            content=bytes(entity.get("content") or b""), artifact_type=str(entity.get("artifact_type") or ""),
            image_size=None if entity.get("image_size") is None else read_int(entity["image_size"]),
            config_digest=text(entity, "config_digest"), config_media_type=text(entity, "config_media_type"),
            subject=text(entity, "subject"), children=text(entity, "children"),
            architecture=text(entity, "architecture"), os=text(entity, "os"),
            chart_name=text(entity, "chart_name"), chart_version=text(entity, "chart_version"),
            created=moment(entity, "created"), updated=moment(entity, "updated"),
            locks=Locks.from_entity(entity), etag=etag_of(entity),
        )


@dataclass(frozen=True)
class TagRow:
    """``repos``, ``t|<tag>``: a tag, repeating its manifest's digest, media type, size and
    inline bytes so that a pull by tag is one read."""

    repository: str
    tag: str
    digest: str
    media_type: str
    size: int
    content: bytes = b""
    created: datetime | None = None
    updated: datetime | None = None
    locks: Locks = Locks()
    etag: str | None = field(default=None, compare=False)

    @classmethod
    def naming(cls, manifest: ManifestRow, tag: str, created: datetime, updated: datetime,
               locks: Locks = Locks()) -> TagRow:
        """The row of ``tag`` naming ``manifest``."""
        return cls(manifest.repository, tag, manifest.digest, manifest.media_type, manifest.size, manifest.content,
                   created, updated, locks)

    def to_entity(self) -> dict[str, Any]:
        """The row as stored."""
        return {"PartitionKey": layout.encode_repository(self.repository), "RowKey": layout.tag_key(self.tag),
                "digest": self.digest, "media_type": self.media_type, "size": int64(self.size),
                "content": self.content, **present(created=self.created, updated=self.updated),
                **self.locks.to_entity()}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        return cls(
            repository=layout.decode_repository(str(entity["PartitionKey"])),
            tag=str(entity["RowKey"])[len(layout.TAG):], digest=str(entity["digest"]),
            media_type=str(entity.get("media_type") or ""), size=read_int(entity.get("size")),
            content=bytes(entity.get("content") or b""), created=moment(entity, "created"),
            updated=moment(entity, "updated"), locks=Locks.from_entity(entity), etag=etag_of(entity),
        )


@dataclass(frozen=True)
class LinkRow:
    """``repos``, ``l|<digest>``: a blob linked into a repository, and where its data is."""

    repository: str
    digest: str
    size: int
    location: str
    linked: datetime | None = None

    def to_entity(self) -> dict[str, Any]:
        """The row as stored."""
        return {"PartitionKey": layout.encode_repository(self.repository), "RowKey": layout.link_key(self.digest),
                "size": int64(self.size), "location": self.location, **present(linked=self.linked)}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read (the repository is empty when the query did not select the partition)."""
        partition = entity.get("PartitionKey")
        return cls(layout.decode_repository(str(partition or "")), str(entity["RowKey"])[len(layout.LINK):],
                   read_int(entity.get("size")), str(entity.get("location") or ""), moment(entity, "linked"))


@dataclass(frozen=True)
class ReferrerRow:
    """``repos``, ``r|<subject>|<digest>``: a manifest that refers to ``subject``, as the
    referrers API lists it."""

    repository: str
    subject: str
    digest: str
    media_type: str
    size: int
    artifact_type: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_entity(self) -> dict[str, Any]:
        """The row as stored (annotations as compact JSON)."""
        return {"PartitionKey": layout.encode_repository(self.repository),
                "RowKey": layout.referrer_key(self.subject, self.digest), "media_type": self.media_type,
                "size": int64(self.size), "artifact_type": self.artifact_type,
                "annotations": json.dumps(dict(self.annotations), separators=(",", ":"))}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        subject, _, digest = str(entity["RowKey"])[len(layout.REFERRER):].partition("|")
        return cls(layout.decode_repository(str(entity["PartitionKey"])), subject, digest,
                   str(entity["media_type"]), read_int(entity.get("size")), str(entity.get("artifact_type") or ""),
                   json.loads(entity.get("annotations") or "{}"))


@dataclass(frozen=True)
class OutboxRow:
    """``repos``, ``o|<event-id>``: an event not yet published, in the partition of the commit
    it describes."""

    partition: str
    event_id: str
    payload: Mapping[str, Any]
    created: datetime | None = None

    def to_entity(self) -> dict[str, Any]:
        """The row as stored (the payload as compact JSON)."""
        return {"PartitionKey": self.partition, "RowKey": layout.outbox_key(self.event_id),
                "event": json.dumps(self.payload, separators=(",", ":")), **present(created=self.created)}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        return cls(str(entity["PartitionKey"]), str(entity["RowKey"])[len(layout.OUTBOX):],
                   json.loads(entity["event"]), moment(entity, "created"))
