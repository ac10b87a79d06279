"""Authentication: who is calling (admin user, token, Entra ID principal, refresh token, nobody),
what they may do, and the registry's refresh and access tokens for them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from dataclasses import dataclass
from typing import Any

from shared.auth.entra import EntraValidator
from shared.auth.passwords import generate_password, hash_password, same_secret, verify_password
from shared.auth.permissions import (
    ANONYMOUS_PULL,
    EVERYTHING,
    NOTHING,
    Permissions,
    Rule,
    Scope,
    role_permissions,
    scope_map_rules,
)
from shared.auth.store import ENABLED, IdentityStore
from shared.auth.tokens import ACCESS, REFRESH, TokenError, TokenSigner, generate_signing_key
from shared.errors import ErrorCode, RegistryError
from shared.settings import Settings

log = logging.getLogger("registry.auth")
_DUMMY_HASH = hash_password(generate_password())
_MAX_GROUPS = 200  # Entra ID lists at most 200 groups in a JWT before it switches to an overage claim
NULL_GUID = "00000000-0000-0000-0000-000000000000"
ADMIN, TOKEN, ENTRA, ANONYMOUS = "admin", "token", "entra", "anonymous"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: kind (admin, token, entra, anonymous), id and, for Entra ID, the
    tenant and the object ids of the groups the token lists (role assignments may name a group)."""

    kind: str
    id: str
    tenant: str = ""
    groups: tuple[str, ...] = ()


ANONYMOUS_PRINCIPAL = Principal(ANONYMOUS, "")


def unauthorized(message: str = "authentication required") -> RegistryError:
    """UNAUTHORIZED without revealing which part of the credentials was wrong."""
    return RegistryError(ErrorCode.UNAUTHORIZED, message)


def parse_basic(header: str) -> tuple[str, str] | None:
    """(username, password) of a ``Basic`` Authorization header, or None when it is not one."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("malformed Basic credentials") from None
    if not sep:
        raise unauthorized("malformed Basic credentials")
    return username, password


class AuthService:
    """Authenticates callers and issues tokens for one registry."""

    def __init__(self, settings: Settings, store: IdentityStore) -> None:
        self.settings = settings
        self.store = store
        key = settings.token_signing_key
        if not key:
            log.warning("REGISTRY_TOKEN_SIGNING_KEY is empty: signing tokens with a key made for this process")
            key = generate_signing_key()
        self.signer = TokenSigner(key, f"registry:{settings.registry_name}", settings.token_previous_key)
        self.entra = EntraValidator(settings.entra_authority, settings.entra_tenants, settings.entra_audiences)

    async def basic(self, username: str, password: str, service: str) -> Principal:
        """The principal a username and password (or null GUID and refresh token) identify."""
        settings = self.settings
        if username == NULL_GUID:
            return self.from_refresh_token(password, service)
        if username == settings.registry_name and settings.admin_enabled:
            matched = same_secret(password, settings.admin_password)
            matched = same_secret(password, settings.admin_password2) or matched
            if matched:
                return Principal(ADMIN, username)
            raise unauthorized()
        token = await self.store.token(username)
        if token is None:
            # as slow as a real check, so the answer time does not tell which token names exist
            await asyncio.to_thread(verify_password, password, _DUMMY_HASH)
            raise unauthorized()
        if not await token.check(password) or token.status != ENABLED:
            raise unauthorized()
        return Principal(TOKEN, username)

    async def permissions(self, principal: Principal) -> Permissions:
        """Everything ``principal`` may do right now."""
        if principal.kind == ADMIN:
            return EVERYTHING if self.settings.admin_enabled else NOTHING
        if principal.kind == TOKEN:
            token = await self.store.token(principal.id)
            scope_map = await self.store.scope_map(token.scope_map) if token and token.status == ENABLED else None
            return Permissions(tuple(scope_map_rules(scope_map.actions))) if scope_map else NOTHING
        options = await self.store.options()
        if principal.kind == ENTRA:
            granted = NOTHING
            holders = {principal.id, *principal.groups}
            if holders & set(self.settings.owner_principals):
                granted = granted.union(role_permissions("Owner", "", options.abac))
            assignments = await self.store.role_assignments(principal.id if not principal.groups else None)
            for assignment in assignments:
                if assignment.principal in holders:
                    granted = granted.union(role_permissions(assignment.role, assignment.repository, options.abac))
            return granted
        return ANONYMOUS_PULL if options.anonymous_pull else NOTHING

    async def exchange(self, entra_token: str, service: str, tenant: str | None) -> str:
        """A registry refresh token for a valid Entra ID access token."""
        try:
            claims = await self.entra.validate(entra_token, tenant or None)
        except TokenError as error:
            log.info("Entra ID token refused: %s", error)
            raise unauthorized("invalid Entra ID token") from None
        groups = claims.get("groups")
        group_ids = tuple(str(g) for g in groups[:_MAX_GROUPS]) if isinstance(groups, list) else ()
        principal = Principal(ENTRA, str(claims.get("oid") or claims["sub"]), str(claims["tid"]), group_ids)
        return self.refresh_token(principal, service)

    def refresh_token(self, principal: Principal, service: str) -> str:
        """A refresh token naming ``principal`` (its permissions are looked up when it is used)."""
        extra = {"groups": list(principal.groups)} if principal.groups else {}
        return self.signer.issue(REFRESH, service, principal.id, self.settings.refresh_token_ttl_seconds,
                                 kind=principal.kind, tenant=principal.tenant, grant_type="refresh_token", **extra)

    def from_refresh_token(self, token: str, service: str) -> Principal:
        """The principal of a valid refresh token for ``service``."""
        try:
            claims = self.signer.verify(token, REFRESH, service)
        except TokenError as error:
            log.info("refresh token refused: %s", error)
            raise unauthorized("invalid refresh token") from None
        kind = str(claims.get("kind"))
        if kind not in (ENTRA, ADMIN, TOKEN):
            raise unauthorized("invalid refresh token")
        groups = claims.get("groups")
        group_ids = tuple(str(g) for g in groups[:_MAX_GROUPS]) if isinstance(groups, list) else ()
        return Principal(kind, str(claims["sub"]), str(claims.get("tenant") or ""), group_ids)

    async def access_token(self, principal: Principal, service: str, scopes: list[Scope]) -> str:
        """An access token granting the requested scopes as far as ``principal`` holds them."""
        permissions = await self.permissions(principal)
        access: list[dict[str, Any]] = permissions.grant(scopes)
        return self.signer.issue(ACCESS, service, principal.id or ANONYMOUS, self.settings.access_token_ttl_seconds,
                                 kind=principal.kind, access=access)

    def verify_access(self, token: str, service: str) -> dict[str, Any]:
        """The claims of a valid access token for ``service``; UNAUTHORIZED otherwise."""
        try:
            return self.signer.verify(token, ACCESS, service)
        except TokenError as error:
            log.info("access token refused: %s", error)
            raise unauthorized("invalid or expired token") from None


__all__ = ["ANONYMOUS_PRINCIPAL", "AuthService", "Principal", "Rule", "parse_basic"]
