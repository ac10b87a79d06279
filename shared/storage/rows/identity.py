"""Rows of the ``auth`` table: registry options, scope maps, tokens and role assignments."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from shared.storage import layout
from shared.storage.rows.base import etag_of, moment, present


@dataclass(frozen=True)
class OptionsRow:
    """The registry-wide switches changed at run time."""

    anonymous_pull: bool = False
    abac: bool = False

    def to_entity(self) -> dict[str, Any]:
        """The row as stored."""
        partition, key = layout.AUTH_CONFIG
        return {"PartitionKey": partition, "RowKey": key, "anonymous_pull": self.anonymous_pull, "abac": self.abac}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        return cls(bool(entity.get("anonymous_pull", False)), bool(entity.get("abac", False)))


@dataclass(frozen=True)
class ScopeMapRow:
    """A user-defined scope map: its actions (stored as a JSON list) and description."""

    name: str
    actions: tuple[str, ...]
    description: str = ""

    def to_entity(self) -> dict[str, Any]:
        """The row as stored."""
        return {"PartitionKey": layout.SCOPE_MAP_PARTITION, "RowKey": self.name,
                "actions": json.dumps(list(self.actions)), "description": self.description}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        return cls(str(entity["RowKey"]), tuple(json.loads(entity["actions"])), str(entity.get("description") or ""))


@dataclass(frozen=True)
class TokenRow:
    """A repository-scoped token: its scope map, status, and up to two scrypt password hashes
    with their expiries. A write of a row that leaves a property None leaves it as stored (merge)."""

    name: str
    scope_map: str | None = None
    status: str | None = None
    password1: str | None = None
    password1_expiry: datetime | None = None
    password2: str | None = None
    password2_expiry: datetime | None = field(default=None)
    etag: str | None = field(default=None, compare=False)

    def to_entity(self) -> dict[str, Any]:
        """The row as stored (only the properties that are set)."""
        return {"PartitionKey": layout.TOKEN_PARTITION, "RowKey": self.name,
                **present(scope_map=self.scope_map, status=self.status, password1=self.password1,
                          password1_expiry=self.password1_expiry, password2=self.password2,
                          password2_expiry=self.password2_expiry)}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        def secret(name: str) -> str | None:
            return str(entity[name]) if entity.get(name) else None

        return cls(str(entity["RowKey"]), str(entity.get("scope_map") or ""), str(entity.get("status") or "") or None,
                   secret("password1"), moment(entity, "password1_expiry"), secret("password2"),
                   moment(entity, "password2_expiry"), etag_of(entity))


@dataclass(frozen=True)
class RoleRow:
    """An Entra ID principal holding a role, on every repository or on one name or pattern."""

    id: str
    principal: str
    role: str
    repository: str = ""  # empty: every repository

    def to_entity(self) -> dict[str, Any]:
        """The row as stored."""
        return {"PartitionKey": layout.ROLE_PARTITION, "RowKey": self.id, "principal": self.principal,
                "role": self.role, "repository": self.repository}

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> Self:
        """The row as read."""
        return cls(str(entity["RowKey"]), str(entity["principal"]), str(entity["role"]),
                   str(entity.get("repository") or ""))
