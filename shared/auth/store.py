"""Identities and permissions in the ``<prefix>auth`` table: registry options, scope maps, tokens
and Entra ID role assignments. Token passwords are kept only as scrypt hashes."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.auth.passwords import generate_password, hash_password, verify_password
from shared.auth.permissions import ROLES, SYSTEM_SCOPE_MAPS, scope_map_rules, validate_pattern
from shared.errors import ErrorCode, RegistryError
from shared.storage import layout

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{4,49}")
PASSWORD_NAMES = ("password1", "password2")
ENABLED, DISABLED = "enabled", "disabled"


def _now() -> datetime:
    return datetime.now(UTC)


def _name(name: str, what: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise RegistryError(ErrorCode.NAME_INVALID, f"{what} names are 5-50 letters, digits and hyphens",
                            detail={"name": name[:60]})
    return name


def _missing(what: str, name: str) -> RegistryError:
    return RegistryError(ErrorCode.NOT_FOUND, f"{what} not found", detail={"name": name[:60]})


@dataclass(frozen=True)
class RegistryOptions:
    """Registry-wide switches changed at run time through the admin API."""

    anonymous_pull: bool = False
    abac: bool = False

    def to_json(self) -> dict[str, Any]:
        """The admin API's form."""
        return {"anonymousPullEnabled": self.anonymous_pull, "roleAssignmentMode": "abac" if self.abac else "rbac"}


@dataclass(frozen=True)
class ScopeMap:
    """A named list of scope map actions."""

    name: str
    actions: list[str]
    description: str = ""
    system: bool = False

    def to_json(self) -> dict[str, Any]:
        """The admin API's form."""
        kind = "SystemDefined" if self.system else "UserDefined"
        return {"name": self.name, "actions": self.actions, "description": self.description, "type": kind}


@dataclass(frozen=True)
class Token:
    """A repository-scoped token: a scope map, a status and two optional passwords (hashes)."""

    name: str
    scope_map: str
    status: str
    hashes: dict[str, str]
    expiries: dict[str, datetime | None]

    def to_json(self) -> dict[str, Any]:
        """The admin API's form (never the hashes)."""
        passwords = [{"name": n, "expiry": e.isoformat() if e else None} for n, e in self.expiries.items()]
        return {"name": self.name, "scopeMap": self.scope_map, "status": self.status, "passwords": passwords}

    async def check(self, password: str) -> bool:
        """True when ``password`` is one of the token's unexpired passwords (slow hash, constant time)."""
        now = _now()
        matched = False
        for which, stored in self.hashes.items():
            expiry = self.expiries.get(which)
            ok = await asyncio.to_thread(verify_password, password, stored)
            matched = matched or (ok and (expiry is None or expiry > now))
        return matched


@dataclass(frozen=True)
class RoleAssignment:
    """An Entra ID principal (object id) holding a role, optionally on a repository or ``prefix/*``."""

    id: str
    principal: str
    role: str
    repository: str | None

    def to_json(self) -> dict[str, Any]:
        """The admin API's form."""
        return {"id": self.id, "principalId": self.principal, "role": self.role, "repository": self.repository}


class IdentityStore:
    """Reads and writes the auth table."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    async def _get(self, partition: str, key: str) -> dict[str, Any] | None:
        try:
            return dict(await self.table.get_entity(partition, key))
        except ResourceNotFoundError:
            return None

    async def _list(self, partition: str) -> list[dict[str, Any]]:
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": partition})
        return [dict(r) async for r in rows]

    async def _delete(self, partition: str, key: str, what: str) -> None:
        # delete_entity succeeds for an absent row, so look first to answer 404
        if await self._get(partition, key) is None:
            raise _missing(what, key)
        await self.table.delete_entity(partition, key)

    async def options(self) -> RegistryOptions:
        """The registry-wide switches."""
        row = await self._get(*layout.AUTH_CONFIG) or {}
        return RegistryOptions(bool(row.get("anonymous_pull", False)), bool(row.get("abac", False)))

    async def set_options(self, anonymous_pull: bool | None = None, abac: bool | None = None) -> RegistryOptions:
        """Change the given switches."""
        current = await self.options()
        updated = RegistryOptions(
            current.anonymous_pull if anonymous_pull is None else anonymous_pull,
            current.abac if abac is None else abac,
        )
        partition, key = layout.AUTH_CONFIG
        await self.table.upsert_entity({"PartitionKey": partition, "RowKey": key,
                                        "anonymous_pull": updated.anonymous_pull, "abac": updated.abac})
        return updated

    async def put_scope_map(self, name: str, actions: list[str], description: str = "") -> ScopeMap:
        """Create or replace a user-defined scope map."""
        if name in SYSTEM_SCOPE_MAPS:
            raise RegistryError(ErrorCode.DENIED, "system scope maps cannot be changed")
        _name(name, "scope map")
        scope_map_rules(actions)
        await self.table.upsert_entity({"PartitionKey": layout.SCOPE_MAP_PARTITION, "RowKey": name,
                                        "actions": json.dumps(actions), "description": description[:256]})
        return ScopeMap(name, list(actions), description[:256])

    async def scope_map(self, name: str) -> ScopeMap | None:
        """A system or user-defined scope map, or None."""
        if name in SYSTEM_SCOPE_MAPS:
            return ScopeMap(name, SYSTEM_SCOPE_MAPS[name], "", system=True)
        row = await self._get(layout.SCOPE_MAP_PARTITION, name)
        if row is None:
            return None
        return ScopeMap(name, json.loads(row["actions"]), str(row.get("description") or ""))

    async def scope_maps(self) -> list[ScopeMap]:
        """Every scope map, system ones first."""
        system = [ScopeMap(n, a, "", system=True) for n, a in SYSTEM_SCOPE_MAPS.items()]
        rows = await self._list(layout.SCOPE_MAP_PARTITION)
        return system + [ScopeMap(r["RowKey"], json.loads(r["actions"]), str(r.get("description") or "")) for r in rows]

    async def delete_scope_map(self, name: str) -> None:
        """Delete a user-defined scope map."""
        if name in SYSTEM_SCOPE_MAPS:
            raise RegistryError(ErrorCode.DENIED, "system scope maps cannot be deleted")
        await self._delete(layout.SCOPE_MAP_PARTITION, name, "scope map")

    async def put_token(self, name: str, scope_map: str, status: str = ENABLED) -> Token:
        """Create a token, or change the scope map and status of an existing one (passwords stay)."""
        _name(name, "token")
        if status not in (ENABLED, DISABLED):
            raise RegistryError(ErrorCode.NAME_INVALID, "status is enabled or disabled")
        if await self.scope_map(scope_map) is None:
            raise _missing("scope map", scope_map)
        await self.table.upsert_entity({"PartitionKey": layout.TOKEN_PARTITION, "RowKey": name,
                                        "scope_map": scope_map, "status": status}, mode="merge")
        token = await self.token(name)
        assert token is not None
        return token

    async def token(self, name: str) -> Token | None:
        """A token by name, or None."""
        row = await self._get(layout.TOKEN_PARTITION, name)
        return None if row is None else _token(row)

    async def tokens(self) -> list[Token]:
        """Every token."""
        return [_token(r) for r in await self._list(layout.TOKEN_PARTITION)]

    async def delete_token(self, name: str) -> None:
        """Delete a token."""
        await self._delete(layout.TOKEN_PARTITION, name, "token")

    async def new_password(self, name: str, which: str, expiry: datetime | None) -> str:
        """Generate ``which`` (password1 or password2) of a token; the only time it is readable."""
        if which not in PASSWORD_NAMES:
            raise RegistryError(ErrorCode.NAME_INVALID, "password name is password1 or password2")
        if await self.token(name) is None:
            raise _missing("token", name)
        password = generate_password()
        hashed = await asyncio.to_thread(hash_password, password)
        await self.table.upsert_entity({"PartitionKey": layout.TOKEN_PARTITION, "RowKey": name,
                                        which: hashed, f"{which}_expiry": expiry}, mode="merge")
        return password

    async def assign_role(self, principal: str, role: str, repository: str | None = None) -> RoleAssignment:
        """Give an Entra ID principal a role, optionally conditioned on a repository pattern."""
        if role not in ROLES:
            raise RegistryError(ErrorCode.NAME_INVALID, "unknown role", detail={"roles": sorted(ROLES)})
        if not principal or len(principal) > 128:
            raise RegistryError(ErrorCode.NAME_INVALID, "principal id required")
        if repository:
            validate_pattern(repository)
        assignment = RoleAssignment(str(uuid.uuid4()), principal, role, repository or None)
        await self.table.create_entity({"PartitionKey": layout.ROLE_PARTITION, "RowKey": assignment.id,
                                        "principal": principal, "role": role, "repository": repository or ""})
        return assignment

    async def role_assignments(self, principal: str | None = None) -> list[RoleAssignment]:
        """Every role assignment, or those of one principal."""
        query, parameters = "PartitionKey eq @pk", {"pk": layout.ROLE_PARTITION}
        if principal is not None:
            query += " and principal eq @principal"
            parameters["principal"] = principal
        rows = self.table.query_entities(query, parameters=parameters)
        return [RoleAssignment(r["RowKey"], r["principal"], r["role"], r.get("repository") or None)
                async for r in rows]

    async def remove_role(self, assignment_id: str) -> None:
        """Delete a role assignment."""
        await self._delete(layout.ROLE_PARTITION, assignment_id, "role assignment")


def _token(row: dict[str, Any]) -> Token:
    hashes = {w: str(row[w]) for w in PASSWORD_NAMES if row.get(w)}
    expiries = {w: row.get(f"{w}_expiry") for w in PASSWORD_NAMES if row.get(w)}
    return Token(row["RowKey"], str(row["scope_map"]), str(row.get("status") or ENABLED), hashes, expiries)
