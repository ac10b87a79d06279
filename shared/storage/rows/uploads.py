"""Rows of the ``blobs`` table (the content-addressed index) and the ``uploads`` table (sessions)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from shared.storage.blocks import block_id
from shared.storage.rows.base import etag_of, present
from shared.storage.values import int64, read_int

_SEGMENT = struct.Struct(">II")  # (request prefix, blocks staged by that request)
_ENDED = "ended"  # the ``state`` of an upload whose session a request claimed to end it


@dataclass(frozen=True)
class BlobIndexRow:
    """``blobs``: where the content of one digest is stored, shared by every repository."""

    digest: str
    size: int
    location: str
    etag: str | None = field(default=None, compare=False)

    def to_entity(self) -> dict[str, Any]:
        """The row as stored."""
        return {"PartitionKey": self.digest, "RowKey": "", "size": int64(self.size), "location": self.location}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        return cls(str(entity["PartitionKey"]), read_int(entity.get("size")), str(entity.get("location") or ""),
                   etag_of(entity))


@dataclass(frozen=True)
class UploadRow:
    """``uploads``: one upload session. ``segments`` lists, per request that staged blocks, its
    random block id prefix and how many blocks it staged; ``ended`` once a request claimed it."""

    id: str
    repository: str
    offset: int = 0
    segments: tuple[tuple[int, int], ...] = ()
    algorithm: str = "sha256"
    hash_state: bytes | None = None
    ended: bool = False
    etag: str | None = field(default=None, compare=False)

    def block_ids(self) -> list[str]:
        """Every block staged so far, in order."""
        return [block_id(prefix, i) for prefix, count in self.segments for i in range(count)]

    def to_entity(self) -> dict[str, Any]:
        """The row as stored."""
        return {"PartitionKey": self.id, "RowKey": "", "repository": self.repository, "offset": int64(self.offset),
                "algorithm": self.algorithm, "segments": b"".join(_SEGMENT.pack(*s) for s in self.segments),
                **present(hash_state=self.hash_state, state=_ENDED if self.ended else None)}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read (a query that selected only some properties gives the defaults)."""
        raw = bytes(entity.get("segments") or b"")
        return cls(
            id=str(entity["PartitionKey"]), repository=str(entity.get("repository") or ""),
            offset=read_int(entity.get("offset")),
            segments=tuple(_SEGMENT.unpack_from(raw, i) for i in range(0, len(raw), _SEGMENT.size)),
            algorithm=str(entity.get("algorithm") or "sha256"),
            hash_state=bytes(entity["hash_state"]) if entity.get("hash_state") else None,
            ended=entity.get("state") == _ENDED, etag=etag_of(entity),
        )

    def claim(self) -> dict[str, Any]:
        """The merge that marks the session ended."""
        return {"PartitionKey": self.id, "RowKey": "", "state": _ENDED}


#: Segments a binary table property (64 KiB at most) can hold.
MAX_SEGMENTS = 60_000 // _SEGMENT.size
