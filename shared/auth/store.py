"""Identities and permissions in the ``<prefix>auth`` table: registry options, scope maps, tokens
and Entra ID role assignments. Token passwords are kept only as scrypt hashes.

Bearer access tokens of a scoped token are checked against the token's row on every use; the
row may be served from what this instance read within :data:`TOKEN_STATUS_SECONDS`, so a token
disabled, deleted or given a new password through another instance stops working there within
that time (through this instance at once: its own writes drop what it remembered).
"""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.auth.passwords import generate_password, hash_new
from shared.auth.permissions import ROLES, SYSTEM_SCOPE_MAPS, scope_map_rules, validate_pattern
from shared.errors import Denied, Invalid, InvalidName, ResourceNotFound
from shared.storage import layout
from shared.storage.interfaces import Table
from shared.storage.queries import get_or_none, partition_rows, typed
from shared.storage.rows import OptionsRow, RoleRow, ScopeMapRow, TokenRow, patch

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{4,49}")
# Every key of the auth table (names, system scope map names, uuids) is of this form; anything
# else (``/``, ``\\``, ``#``, ``?``, controls, very long) could not be a key, so is never looked up.
_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
PASSWORD_NAMES = ("password1", "password2")
ENABLED, DISABLED = "enabled", "disabled"
#: how long a token's row may be served from memory to check its access tokens
TOKEN_STATUS_SECONDS = 5.0
_TOKENS_KEPT = 4096


def _now() -> datetime:
    return datetime.now(UTC)


def _name(name: str, what: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise InvalidName(f"{what} names are 5-50 letters, digits and hyphens", detail={"name": name[:60]})
    return name


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

    @property
    def enabled(self) -> bool:
        """True when the token may be used at all."""
        return self.status == ENABLED

    def current(self, which: str) -> str | None:
        """The stored hash of password ``which`` if it is set and has not expired."""
        expiry = self.expiries.get(which)
        if expiry is not None and expiry <= _now():
            return None
        return self.hashes.get(which)


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

    def __init__(self, table: Table) -> None:
        self.table = table
        self._tokens: OrderedDict[str, tuple[float, Token | None]] = OrderedDict()
        self._token_writes = 0  # a read that overlapped a write does not remember what it read

    async def _delete(self, partition: str, key: str, what: str) -> None:
        # delete_entity succeeds for an absent row, so look first to answer 404
        if not _KEY_RE.fullmatch(key) or await get_or_none(self.table, partition, key) is None:
            raise ResourceNotFound(what, key)
        await self.table.delete_entity(partition, key)

    async def options(self) -> RegistryOptions:
        """The registry-wide switches."""
        row = await get_or_none(self.table, *layout.AUTH_CONFIG, OptionsRow) or OptionsRow()
        return RegistryOptions(row.anonymous_pull, row.abac)

    async def set_options(self, anonymous_pull: bool | None = None, abac: bool | None = None) -> RegistryOptions:
        """Change the given switches."""
        current = await self.options()
        updated = RegistryOptions(
            current.anonymous_pull if anonymous_pull is None else anonymous_pull,
            current.abac if abac is None else abac,
        )
        await self.table.upsert_entity(OptionsRow(updated.anonymous_pull, updated.abac).to_entity())
        return updated

    async def put_scope_map(self, name: str, actions: list[str], description: str = "") -> ScopeMap:
        """Create or replace a user-defined scope map."""
        if name in SYSTEM_SCOPE_MAPS:
            raise Denied("system scope maps cannot be changed")
        _name(name, "scope map")
        scope_map_rules(actions)
        await self.table.upsert_entity(ScopeMapRow(name, tuple(actions), description[:256]).to_entity())
        return ScopeMap(name, list(actions), description[:256])

    async def scope_map(self, name: str) -> ScopeMap | None:
        """A system or user-defined scope map, or None."""
        if name in SYSTEM_SCOPE_MAPS:
            return ScopeMap(name, SYSTEM_SCOPE_MAPS[name], "", system=True)
        row = await get_or_none(self.table, layout.SCOPE_MAP_PARTITION, name, ScopeMapRow) \
            if _NAME_RE.fullmatch(name) else None
        return None if row is None else _scope_map(row)

    async def scope_maps(self) -> list[ScopeMap]:
        """Every scope map, system ones first."""
        system = [ScopeMap(n, a, "", system=True) for n, a in SYSTEM_SCOPE_MAPS.items()]
        rows = await typed(partition_rows(self.table, layout.SCOPE_MAP_PARTITION), ScopeMapRow)
        return system + [_scope_map(row) for row in rows]

    async def delete_scope_map(self, name: str) -> None:
        """Delete a user-defined scope map."""
        if name in SYSTEM_SCOPE_MAPS:
            raise Denied("system scope maps cannot be deleted")
        await self._delete(layout.SCOPE_MAP_PARTITION, name, "scope map")

    async def put_token(self, name: str, scope_map: str, status: str = ENABLED) -> Token:
        """Create a token, or change the scope map and status of an existing one (passwords stay)."""
        _name(name, "token")
        if status not in (ENABLED, DISABLED):
            raise Invalid("status is enabled or disabled")
        if await self.scope_map(scope_map) is None:
            raise ResourceNotFound("scope map", scope_map)
        await self.table.upsert_entity(patch(TokenRow(name), scope_map=scope_map, status=status), mode="merge")
        self._forget(name)
        token = await self.token(name)
        assert token is not None
        return token

    async def token(self, name: str, max_age: float = 0.0) -> Token | None:
        """A token by name, or None (at once for a name no token can have); ``max_age`` > 0 allows
        what this instance read within that many seconds."""
        if not _NAME_RE.fullmatch(name):
            return None
        now = time.monotonic()
        remembered = self._tokens.get(name)
        if remembered is not None and now - remembered[0] < max_age:
            return remembered[1]
        writes = self._token_writes
        row = await get_or_none(self.table, layout.TOKEN_PARTITION, name, TokenRow)
        token = None if row is None else _token(row)
        if writes == self._token_writes:
            self._tokens[name] = (now, token)
            self._tokens.move_to_end(name)
            while len(self._tokens) > _TOKENS_KEPT:
                self._tokens.popitem(last=False)
        return token

    def _forget(self, name: str) -> None:
        """After a write to token ``name``: what this instance remembered of it is stale."""
        self._token_writes += 1
        self._tokens.pop(name, None)

    async def tokens(self) -> list[Token]:
        """Every token."""
        return [_token(row) for row in await typed(partition_rows(self.table, layout.TOKEN_PARTITION), TokenRow)]

    async def delete_token(self, name: str) -> None:
        """Delete a token."""
        await self._delete(layout.TOKEN_PARTITION, name, "token")
        self._forget(name)

    async def new_password(self, name: str, which: str, expiry: datetime | None) -> str:
        """Generate ``which`` (password1 or password2) of a token; the only time it is readable."""
        if which not in PASSWORD_NAMES:
            raise Invalid("password name is password1 or password2")
        token = await self.token(name)
        if token is None:
            raise ResourceNotFound("token", name)
        password = generate_password()
        # the other password's salt, so that one scrypt computation checks both
        hashed = await hash_new(password, [h for w, h in token.hashes.items() if w != which])
        await self.table.upsert_entity(patch(TokenRow(name), **{which: hashed, f"{which}_expiry": expiry}),
                                       mode="merge")
        self._forget(name)
        return password

    async def assign_role(self, principal: str, role: str, repository: str | None = None) -> RoleAssignment:
        """Give an Entra ID principal a role, optionally conditioned on a repository pattern."""
        if role not in ROLES:
            raise Invalid("unknown role", detail={"roles": sorted(ROLES)})
        if not principal or len(principal) > 128:
            raise InvalidName("principal id required")
        if repository:
            validate_pattern(repository)
        assignment = RoleAssignment(str(uuid.uuid4()), principal, role, repository or None)
        await self.table.create_entity(RoleRow(assignment.id, principal, role, repository or "").to_entity())
        return assignment

    async def role_assignments(self, principal: str | None = None) -> list[RoleAssignment]:
        """Every role assignment, or those of one principal."""
        where = "principal eq @principal" if principal is not None else ""
        rows = partition_rows(self.table, layout.ROLE_PARTITION, where=where, parameters={"principal": principal})
        return [RoleAssignment(row.id, row.principal, row.role, row.repository or None)
                for row in await typed(rows, RoleRow)]

    async def remove_role(self, assignment_id: str) -> None:
        """Delete a role assignment."""
        await self._delete(layout.ROLE_PARTITION, assignment_id, "role assignment")


def _token(row: TokenRow) -> Token:
    hashes = {w: h for w in PASSWORD_NAMES if (h := getattr(row, w))}
    expiries = {w: getattr(row, f"{w}_expiry") for w in hashes}
    return Token(row.name, row.scope_map or "", row.status or ENABLED, hashes, expiries)


def _scope_map(row: ScopeMapRow) -> ScopeMap:
    return ScopeMap(row.name, list(row.actions), row.description)
