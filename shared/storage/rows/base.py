"""What every row type shares: keys, the ETag it was read at, and partial writes (merges)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, Self


class Row(Protocol):
    """A table row as a typed value: ``to_entity`` writes it as stored, ``from_entity`` reads it
    back (rows written by earlier versions included: sizes stored as Edm.Int32, missing optional
    properties). A property whose value is None is not written."""

    def to_entity(self) -> dict[str, Any]:
        """The row as a table entity, keys included."""
        ...

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row a read entity holds (its ETag, when it has one, included)."""
        ...


def etag_of(entity: Mapping[str, Any]) -> str | None:
    """The ETag of an entity as read (None for one built in memory)."""
    metadata = getattr(entity, "metadata", None) or {}
    etag = metadata.get("etag")
    return None if etag is None else str(etag)


def keys(entity: Mapping[str, Any]) -> dict[str, Any]:
    """Only the keys of ``entity``: what a delete or a partial write names."""
    return {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}


def present(**properties: Any) -> dict[str, Any]:
    """``properties`` without those that are None (not stored)."""
    return {name: value for name, value in properties.items() if value is not None}


def text(entity: Mapping[str, Any], name: str) -> str | None:
    """A string property, or None when absent or empty."""
    value = entity.get(name)
    return str(value) if value else None


def moment(entity: Mapping[str, Any], name: str) -> datetime | None:
    """A date-time property, or None."""
    value = entity.get(name)
    return value if isinstance(value, datetime) else None


def patch(row: Row, **changes: Any) -> dict[str, Any]:
    """The merge that changes ``changes`` (field names, which are the property names) of ``row``,
    and nothing else: a writer that changed other properties meanwhile keeps them. A change to
    None writes nothing for that property, as the SDK drops None properties."""
    entity = dataclasses.replace(row, **changes).to_entity()  # type: ignore[type-var]
    return {**keys(entity), **{name: entity[name] for name in changes if name in entity}}
