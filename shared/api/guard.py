"""The authorization middleware: authenticates every request, checks the scopes its route needs
(:mod:`shared.api.access`) and the locks on what it touches, before any handler runs.

Bearer access tokens carry their grants; Basic credentials (admin user, repository-scoped token,
or the null GUID with a refresh token) and anonymous callers are looked up. A caller without
credentials, with an invalid token or with a token that lacks the scope gets 401 and the Bearer
challenge, so clients fetch a token and retry; a caller whose Basic credentials lack the right
gets 403 DENIED. Failed logins are throttled per identity and client address (429).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.api.access import Need, classify
from shared.api.http import registry_of
from shared.auth.permissions import PULL, REPOSITORY, Grant, Permissions
from shared.auth.service import ANONYMOUS_PRINCIPAL, parse_basic, principal_of
from shared.errors import Common, RegistryError, Unauthenticated
from shared.oci.digest import Digest
from shared.oci.errors import InvalidDigest
from shared.oci.names import NAME_RE, TAG_RE, is_tag
from shared.registry.registry import Registry


def route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without ``root_path``, as Starlette computes it
    (the Functions host may set ``root_path``), so both always see the same route."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root):]
    return path


def service_of(request: Request, registry: Registry) -> str:
    """The ``service`` (token audience) of this registry: the login server setting or the Host."""
    return registry.settings.auth.login_server or request.headers.get("host", "")


def client_address(request: Request) -> str:
    """The caller's address, for throttling failed logins; empty when it cannot be known.

    The ASGI peer when there is one (uvicorn replaces it with ``X-Forwarded-For`` only from the
    proxies it trusts); behind the Functions host, which passes none, the last ``X-Forwarded-For``
    entry, the one App Service's front end appends (a client can only add entries before it).
    IPv6 addresses count per /64, the block one subscriber usually holds.
    """
    raw = request.client.host if request.client else ""
    if not raw:
        raw = request.headers.get("x-forwarded-for", "").rsplit(",", 1)[-1].strip()
        if raw.startswith("["):  # [v6]:port
            raw = raw[1:].partition("]")[0]
        elif raw.count(":") == 1:  # v4:port
            raw = raw.partition(":")[0]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def challenge(request: Request, registry: Registry, need: Need, error: str = "") -> dict[str, str]:
    """The ``WWW-Authenticate`` header asking for the scopes ``need`` requires, and those it
    also asks for (a mount's source, which the caller may hold or not). Only well-formed
    repository names are named, so nothing from the request can break out of the quoted value."""
    forwarded = request.headers.get("x-forwarded-proto", "")
    scheme = forwarded if forwarded in ("http", "https") else request.url.scheme
    service = service_of(request, registry)
    value = f'Bearer realm="{scheme}://{service}/oauth2/token",service="{service}"'
    wanted = []
    for kind, name, action in need.requirements:
        actions = ",".join(need.challenge_actions) if kind == REPOSITORY and need.challenge_actions else action
        wanted.append((kind, name, actions))
    wanted += need.also_asks
    scopes = [f"{kind}:{name}:{actions}" for kind, name, actions in wanted
              if kind != REPOSITORY or NAME_RE.fullmatch(name)]
    if scopes:
        value += f',scope="{" ".join(scopes)}"'
    if error:
        value += f',error="{error}"'
    return {"WWW-Authenticate": value}


def _unauthorized(request: Request, registry: Registry, need: Need, message: str, error: str = "") -> RegistryError:
    detail = [{"Type": kind, "Name": name, "Action": action} for kind, name, action in need.requirements]
    return RegistryError(Common.UNAUTHORIZED, message, detail=detail or None,
                         headers=challenge(request, registry, need, error))


class Guard:
    """ASGI middleware enforcing authentication, authorization and locks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        need = classify(scope["method"], route_path(scope), scope.get("query_string", b"").decode("latin-1"))
        if need.public:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        registry = await registry_of(request)
        if registry.settings.auth.enabled:
            checker, claims = await self._authorize(request, registry, need)
            if need.operation == "write_blob" and scope["method"] == "POST":
                await _restrict_mount(request, registry, need, checker, claims)
        if need.operation and _checkable(need):
            seen: dict[str, Any] = {}
            await registry.locks.check(need.operation, need.repository, need.reference, seen)
            scope.setdefault("state", {})["lock_rows"] = seen  # handlers reuse what was read
        await self.app(scope, receive, send)

    async def _authorize(self, request: Request, registry: Registry,
                         need: Need) -> tuple[Grant | Permissions, dict[str, Any] | None]:
        """The caller's rights, and the claims of its access token when it sent one."""
        header = request.headers.get("authorization", "")
        service = service_of(request, registry)
        auth = registry.auth
        basic = False
        checker: Grant | Permissions
        claims: dict[str, Any] | None = None
        try:
            if header[:7].lower() == "bearer ":
                claims = await auth.verify_access(header[7:].strip(), service)
                checker = Grant.from_claims(claims.get("access"))
            elif (credentials := parse_basic(header)) is not None:
                principal = await auth.basic(*credentials, service, client_address(request))
                checker = await auth.permissions(principal)
                basic = True
            elif header:
                raise Unauthenticated("unsupported authorization scheme")
            else:
                checker = await auth.permissions(ANONYMOUS_PRINCIPAL)
        except Unauthenticated as error:
            invalid = "invalid_token" if header[:7].lower() == "bearer " else ""
            raise _unauthorized(request, registry, need, error.message, invalid) from None
        if not need.requirements:  # the /v2/ root: any authenticated caller
            if header:
                return checker, claims
            raise _unauthorized(request, registry, need, "authentication required")
        if all(checker.can(*requirement) for requirement in need.requirements):
            return checker, claims
        if basic:
            raise RegistryError(Common.DENIED, detail=[{"Type": k, "Name": n, "Action": a}
                                                          for k, n, a in need.requirements])
        # As distribution and ACR do (and the Azure SDK expects): a token lacking the scope gets
        # 401 with the challenge, on which clients fetch a token for that scope and retry.
        message = "insufficient scope" if header else "authentication required"
        raise _unauthorized(request, registry, need, message, "insufficient_scope" if header else "")


def _checkable(need: Need) -> bool:
    """True when the repository and reference are well-formed (else the handler reports them)."""
    if not NAME_RE.fullmatch(need.repository):
        return False
    if not need.reference:
        return True
    if is_tag(need.reference):
        return TAG_RE.fullmatch(need.reference) is not None
    try:
        Digest.parse(need.reference)
    except InvalidDigest:
        return False
    return True


async def _restrict_mount(request: Request, registry: Registry, need: Need, checker: Grant | Permissions,
                          claims: dict[str, Any] | None) -> None:
    """Turn a cross-repository mount the caller may not read from into a plain upload.

    A mount names its source in ``from``; without it the blob could come from any repository,
    so it is only honoured for callers who may read every repository. An access token that
    lacks the source's pull, held by someone who may read the source (a client that reused
    the token of an earlier push), gets the challenge naming the source, as distribution
    does, so the client fetches a token for both and mounts.
    """
    scope = request.scope
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    params = dict(query)
    if "mount" not in params:
        return
    source = params.get("from")
    allowed = _may_mount(checker, source)
    if not allowed and claims is not None:
        holder = await registry.auth.permissions(principal_of(claims))
        if _may_mount(holder, source):
            if source:
                raise _unauthorized(request, registry, need, "insufficient scope", "insufficient_scope")
            allowed = True  # may read every repository: the token's own scope is enough
    if not allowed:
        kept = [(k, v) for k, v in query if k not in ("mount", "from")]
        scope["query_string"] = urlencode(kept).encode("latin-1")


def _may_mount(checker: Grant | Permissions, source: str | None) -> bool:
    if source:
        return checker.can(REPOSITORY, source, PULL)
    return isinstance(checker, Permissions) and any(r.pattern == "*" and PULL in r.actions for r in checker.rules)
