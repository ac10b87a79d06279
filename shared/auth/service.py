"""Authentication: who is calling (admin user, token, Entra ID principal, refresh token, nobody),
what they may do, and the registry's refresh and access tokens for them.

A principal that logged in with a password (the admin user or a scoped token) carries the
*generation* of that credential: a binding (see :mod:`shared.auth.tokens`) of which password it
was and that password or its stored hash. Refresh and access tokens carry it, and each use checks
that the credential is still current: a rotated password, a disabled or deleted token, or a new
token of the same name ends them. A renewed refresh token never outlives the one it came from.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from shared.auth.entra import EntraValidator
from shared.auth.passwords import HashingBusy, cached_match, hash_new, match
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
from shared.auth.store import PASSWORD_NAMES, TOKEN_STATUS_SECONDS, IdentityStore, Token
from shared.auth.throttle import LoginThrottle
from shared.auth.tokens import ACCESS, REFRESH, TokenError, TokenSigner, generate_signing_key
from shared.errors import Throttled, Unauthenticated
from shared.settings import Settings

log = logging.getLogger("registry.auth")
_MAX_GROUPS = 200  # Entra ID lists at most 200 groups in a JWT before it switches to an overage claim
NULL_GUID = "00000000-0000-0000-0000-000000000000"
ADMIN, TOKEN, ENTRA, ANONYMOUS = "admin", "token", "entra", "anonymous"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: kind (admin, token, entra, anonymous), id and, for Entra ID, the
    tenant and the object ids of the groups the token lists (role assignments may name a group);
    ``generation`` binds it to the password it logged in with, ``expires`` (epoch seconds, 0:
    none) is the end of the refresh token it came from."""

    kind: str
    id: str
    tenant: str = ""
    groups: tuple[str, ...] = ()
    generation: str = ""
    expires: int = 0


ANONYMOUS_PRINCIPAL = Principal(ANONYMOUS, "")


def principal_of(claims: dict[str, Any]) -> Principal:
    """Who a verified access token was issued to (its Entra ID groups are not carried, so a
    group's roles are not counted); anonymous for a kind this registry does not issue."""
    kind = str(claims.get("kind"))
    if kind not in (ADMIN, TOKEN, ENTRA):
        return ANONYMOUS_PRINCIPAL
    return Principal(kind, str(claims.get("sub") or ""), generation=str(claims.get("gen") or ""))


def unauthorized(message: str = "authentication required") -> Unauthenticated:
    """Unauthenticated, without revealing which part of the credentials was wrong."""
    return Unauthenticated(message)


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


def _admin_material(which: str, password: str) -> str:
    """What the binding of an admin password covers: which one it is and the password itself."""
    return f"{ADMIN}\0{which}\0{password}"


def _token_material(token: Token, which: str, stored: str) -> str:
    """What the binding of a token password covers: the token, which password, and its hash
    (new for every password set, so a token created again under an old name differs)."""
    return f"{TOKEN}\0{token.name}\0{which}\0{stored}"


class AuthService:
    """Authenticates callers and issues tokens for one registry."""

    def __init__(self, settings: Settings, store: IdentityStore) -> None:
        self.settings = settings
        self.store = store
        auth = settings.auth
        key = auth.token_signing_key
        if not key:
            log.warning("REGISTRY_TOKEN_SIGNING_KEY is empty: signing tokens with a key made for this process")
            key = generate_signing_key()
        self.signer = TokenSigner(key, f"registry:{settings.registry.name}", auth.token_previous_key)
        self.entra = EntraValidator(auth.entra_authority, auth.entra_tenants, auth.entra_audiences)
        self.throttle = LoginThrottle()
        self._checking: dict[bytes, asyncio.Future[Principal | None]] = {}
        self._admin_hashes: asyncio.Future[list[tuple[str, str]]] | None = None

    def _admin_passwords(self) -> list[tuple[str, str]]:
        auth = self.settings.auth
        pairs = zip(PASSWORD_NAMES, (auth.admin_password, auth.admin_password2), strict=True)
        return [(which, password) for which, password in pairs if password] if auth.admin_enabled else []

    async def _admin(self) -> list[tuple[str, str]]:
        """(which, hash) of the admin passwords, hashed with one salt when first needed, so an admin
        login costs what any other does."""
        if self._admin_hashes is None:
            # Once, for every concurrent first login: each hashing would draw its own salt, and
            # logins seeing different hashes could share neither a check nor the match cache.
            self._admin_hashes = asyncio.ensure_future(self._hash_admin_passwords())
        try:
            return await asyncio.shield(self._admin_hashes)
        except Exception:
            self._admin_hashes = None  # hash again at the next login
            raise

    async def _hash_admin_passwords(self) -> list[tuple[str, str]]:
        hashes: list[tuple[str, str]] = []
        for which, password in self._admin_passwords():
            hashes.append((which, await hash_new(password, [h for _, h in hashes])))
        return hashes

    async def basic(self, username: str, password: str, service: str, address: str = "") -> Principal:
        """The principal a username and password (or null GUID and refresh token) identify, for a
        caller at ``address`` (throttled per identity and address: Throttled)."""
        if username == NULL_GUID:
            return await self.from_refresh_token(password, service, address)
        self.throttle.check(username, address)
        admin = username == self.settings.registry.name and self.settings.auth.admin_enabled
        token = None if admin else await self.store.token(username)
        hashes = await self._admin() if admin else list(token.hashes.items()) if token else []
        stored = [h for _, h in hashes]
        index = cached_match(password, stored)
        if index is not None:  # known right: no scrypt, no throttle
            principal = self._principal(username, admin, token, hashes, index)
            if principal is None:
                self.throttle.charge(username, address)
                raise unauthorized()
            return principal
        key = hashlib.sha256("\0".join([username, password, *stored]).encode()).digest()
        check = self._checking.get(key)
        if check is None:
            # One check per distinct credentials at a time: a client's burst of parallel requests
            # shares one scrypt and one throttle charge. A task of its own, so a caller that goes
            # away does not cancel the check the others wait for.
            check = asyncio.ensure_future(self._check(username, password, address, admin, token, hashes))
            self._checking[key] = check
            check.add_done_callback(lambda _: self._checking.pop(key, None))
        principal = await asyncio.shield(check)
        if principal is None:
            raise unauthorized()
        return principal

    async def _check(self, username: str, password: str, address: str, admin: bool, token: Token | None,
                     hashes: list[tuple[str, str]]) -> Principal | None:
        """Check a password not known to be right, drawing on the throttle before and settling after."""
        attempt = self.throttle.attempt(username, address)
        try:
            index = await match(password, [h for _, h in hashes])
        except HashingBusy:
            self.throttle.undo(attempt)
            raise Throttled("too many logins in progress", retry_after=1) from None
        principal = self._principal(username, admin, token, hashes, index)
        if principal is not None:
            self.throttle.succeeded(attempt)
        return principal

    def _principal(self, username: str, admin: bool, token: Token | None, hashes: list[tuple[str, str]],
                   index: int | None) -> Principal | None:
        if index is None:
            return None
        which = hashes[index][0]
        return self._admin_principal(username, which) if admin else self._token_principal(token, which)

    def _admin_principal(self, username: str, which: str) -> Principal | None:
        for name, password in self._admin_passwords():
            if name == which:
                return Principal(ADMIN, username, generation=self.signer.bind(_admin_material(which, password)))
        return None

    def _token_principal(self, token: Token | None, which: str) -> Principal | None:
        stored = token.current(which) if token is not None and token.enabled else None
        if token is None or stored is None:
            return None
        return Principal(TOKEN, token.name, generation=self.signer.bind(_token_material(token, which, stored)))

    async def _current(self, kind: str, name: str, generation: str, max_age: float) -> bool:
        """True when the credential ``generation`` binds a principal of ``kind`` to is still current."""
        if kind == ADMIN:
            materials = [_admin_material(which, password) for which, password in self._admin_passwords()]
        elif kind == TOKEN:
            token = await self.store.token(name, max_age)
            if token is None or not token.enabled:
                return False
            materials = [_token_material(token, which, stored) for which in PASSWORD_NAMES
                         if (stored := token.current(which)) is not None]
        else:
            return True
        results = [self.signer.bound(generation, material) for material in materials]
        return any(results)

    async def permissions(self, principal: Principal) -> Permissions:
        """Everything ``principal`` may do right now."""
        if principal.kind == ADMIN:
            return EVERYTHING if self.settings.auth.admin_enabled else NOTHING
        if principal.kind == TOKEN:
            token = await self.store.token(principal.id)
            scope_map = await self.store.scope_map(token.scope_map) if token and token.enabled else None
            return Permissions(tuple(scope_map_rules(scope_map.actions))) if scope_map else NOTHING
        options = await self.store.options()
        if principal.kind == ENTRA:
            granted = NOTHING
            holders = {principal.id, *principal.groups}
            if holders & set(self.settings.auth.owner_principals):
                granted = granted.union(role_permissions("Owner", "", options.abac))
            assignments = await self.store.role_assignments(principal.id if not principal.groups else None)
            for assignment in assignments:
                if assignment.principal in holders:
                    granted = granted.union(role_permissions(assignment.role, assignment.repository, options.abac))
            return granted
        return ANONYMOUS_PULL if options.anonymous_pull else NOTHING

    async def exchange(self, entra_token: str, service: str, tenant: str | None, address: str = "") -> str:
        """A registry refresh token for a valid Entra ID access token."""
        self.throttle.check("", address)
        try:
            claims = await self.entra.validate(entra_token, tenant or None)
        except TokenError as error:
            log.info("Entra ID token refused: %s", error)
            self.throttle.charge("", address)
            raise unauthorized("invalid Entra ID token") from None
        groups = claims.get("groups")
        group_ids = tuple(str(g) for g in groups[:_MAX_GROUPS]) if isinstance(groups, list) else ()
        principal = Principal(ENTRA, str(claims.get("oid") or claims["sub"]), str(claims["tid"]), group_ids)
        return self.refresh_token(principal, service)

    def refresh_token(self, principal: Principal, service: str) -> str:
        """A refresh token naming ``principal`` (its permissions are looked up when it is used),
        ending no later than the refresh token the principal came from."""
        extra: dict[str, Any] = {"groups": list(principal.groups)} if principal.groups else {}
        if principal.generation:
            extra["gen"] = principal.generation
        return self.signer.issue(REFRESH, service, principal.id, self.settings.auth.refresh_token_ttl_seconds,
                                 not_after=principal.expires, kind=principal.kind, tenant=principal.tenant,
                                 grant_type="refresh_token", **extra)

    async def from_refresh_token(self, token: str, service: str, address: str = "") -> Principal:
        """The principal of a valid refresh token for ``service`` whose credential is still current."""
        self.throttle.check("", address)
        try:
            claims = self.signer.verify(token, REFRESH, service)
            kind, subject = str(claims.get("kind")), str(claims["sub"])
            if kind not in (ENTRA, ADMIN, TOKEN):
                raise TokenError("unknown principal kind")
            generation = str(claims.get("gen") or "")
            if not await self._current(kind, subject, generation, 0.0):
                raise TokenError("its credential was rotated, disabled or deleted")
        except TokenError as error:
            log.info("refresh token refused: %s", error)
            self.throttle.charge("", address)
            raise unauthorized("invalid refresh token") from None
        groups = claims.get("groups")
        group_ids = tuple(str(g) for g in groups[:_MAX_GROUPS]) if isinstance(groups, list) else ()
        return Principal(kind, subject, str(claims.get("tenant") or ""), group_ids, generation, int(claims["exp"]))

    async def access_token(self, principal: Principal, service: str, scopes: list[Scope]) -> str:
        """An access token granting the requested scopes as far as ``principal`` holds them."""
        permissions = await self.permissions(principal)
        access: list[dict[str, Any]] = permissions.grant(scopes)
        extra: dict[str, Any] = {"gen": principal.generation} if principal.generation else {}
        ttl = self.settings.auth.access_token_ttl_seconds
        return self.signer.issue(ACCESS, service, principal.id or ANONYMOUS, ttl, kind=principal.kind, access=access,
                                 **extra)

    async def verify_access(self, token: str, service: str) -> dict[str, Any]:
        """The claims of a valid access token for ``service`` whose credential is still current
        (a scoped token's status as read within :data:`TOKEN_STATUS_SECONDS`); Unauthenticated otherwise."""
        try:
            claims = self.signer.verify(token, ACCESS, service)
            kind = str(claims.get("kind"))
            if kind in (ADMIN, TOKEN) and not await self._current(
                    kind, str(claims["sub"]), str(claims.get("gen") or ""), TOKEN_STATUS_SECONDS):
                raise TokenError("its credential was rotated, disabled or deleted")
        except TokenError as error:
            log.info("access token refused: %s", error)
            raise unauthorized("invalid or expired token") from None
        return claims


__all__ = ["ANONYMOUS_PRINCIPAL", "AuthService", "Principal", "Rule", "parse_basic", "principal_of"]
