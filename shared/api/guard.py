"""Authentication: the one middleware every request passes. It finds the route a request goes to
(:mod:`shared.api.routing`), and unless the route is public, identifies the caller before any
handler runs; what the caller may do is then decided by the policies of the route's operation
(:mod:`shared.api.policies`), or here, as ``registry:admin:*``, for a request no route serves.

Bearer access tokens carry their grants; Basic credentials (admin user, repository-scoped token,
or the null GUID with a refresh token) and anonymous callers are looked up. A caller without
credentials, with an invalid token or with a token that lacks the scope gets 401 and the Bearer
challenge, so clients fetch a token and retry; a caller whose Basic credentials lack the right
gets 403 DENIED. Failed logins are throttled per identity and client address (429).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.api.routing import Need, RouteTable
from shared.auth.permissions import REPOSITORY, Grant, Permissions
from shared.auth.service import ANONYMOUS_PRINCIPAL, AuthService, parse_basic, principal_of
from shared.errors import Common, RegistryError, Unauthenticated
from shared.kernel.container import Container
from shared.kernel.context import Caller, identify
from shared.oci.names import NAME_RE
from shared.settings import Settings


def service_of(request: Request, settings: Settings) -> str:
    """The ``service`` (token audience) of this registry: the login server setting or the Host."""
    return settings.auth.login_server or request.headers.get("host", "")


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


def challenge(request: Request, settings: Settings, need: Need, error: str = "") -> dict[str, str]:
    """The ``WWW-Authenticate`` header asking for the scopes ``need`` requires, and those it
    also asks for (a mount's source, which the caller may hold or not). Only well-formed
    repository names are named, so nothing from the request can break out of the quoted value."""
    forwarded = request.headers.get("x-forwarded-proto", "")
    scheme = forwarded if forwarded in ("http", "https") else request.url.scheme
    service = service_of(request, settings)
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


def unauthorized(request: Request, settings: Settings, need: Need, message: str, error: str = "") -> RegistryError:
    """UNAUTHORIZED with the challenge for ``need`` (and the scopes it requires as detail)."""
    detail = [{"Type": kind, "Name": name, "Action": action} for kind, name, action in need.requirements]
    return RegistryError(Common.UNAUTHORIZED, message, detail=detail or None,
                         headers=challenge(request, settings, need, error))


@dataclass(frozen=True)
class Authenticated:
    """The caller of a request: what they may do, the claims of the access token they sent (if
    any), and whether they sent Basic credentials (refused rights are then 403, not a challenge)."""

    checker: Grant | Permissions
    claims: dict[str, Any] | None
    header: str
    basic: bool


async def authenticate(request: Request, container: Container, need: Need) -> Authenticated:
    """Identify the caller of ``request``; UNAUTHORIZED with the challenge for ``need`` when its
    credentials are invalid."""
    header = request.headers.get("authorization", "")
    settings = container.settings
    service = service_of(request, settings)
    auth = await container.get(AuthService)
    basic = False
    checker: Grant | Permissions
    claims: dict[str, Any] | None = None
    try:
        if header[:7].lower() == "bearer ":
            claims = await auth.verify_access(header[7:].strip(), service)
            checker = Grant.from_claims(claims.get("access"))
            principal = principal_of(claims)
        elif (credentials := parse_basic(header)) is not None:
            principal = await auth.basic(*credentials, service, client_address(request))
            checker = await auth.permissions(principal)
            basic = True
        elif header:
            raise Unauthenticated("unsupported authorization scheme")
        else:
            principal = ANONYMOUS_PRINCIPAL
            checker = await auth.permissions(principal)
    except Unauthenticated as error:
        invalid = "invalid_token" if header[:7].lower() == "bearer " else ""
        raise unauthorized(request, settings, need, error.message, invalid) from None
    identify(Caller(principal.kind, principal.id))
    return Authenticated(checker, claims, header, basic)


def authorize(request: Request, settings: Settings, caller: Authenticated, need: Need) -> None:
    """Refuse ``caller`` unless they hold every scope ``need`` requires."""
    if not need.requirements:  # the /v2/ root: any authenticated caller
        if caller.header:
            return
        raise unauthorized(request, settings, need, "authentication required")
    if all(caller.checker.can(*requirement) for requirement in need.requirements):
        return
    if caller.basic:
        raise RegistryError(Common.DENIED, detail=[{"Type": k, "Name": n, "Action": a}
                                                      for k, n, a in need.requirements])
    # As distribution and ACR do (and the Azure SDK expects): a token lacking the scope gets
    # 401 with the challenge, on which clients fetch a token for that scope and retry.
    message = "insufficient scope" if caller.header else "authentication required"
    raise unauthorized(request, settings, need, message, "insufficient_scope" if caller.header else "")


class Guard:
    """ASGI middleware: authenticates every request to a route that is not public (see the module
    docstring); the caller and what the request needs go to ``state.caller`` and ``state.need``."""

    def __init__(self, app: ASGIApp, table: RouteTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        spec, need = self.table.need(scope)
        if need.public:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        container: Container = await request.app.state.open_container()
        state = scope.setdefault("state", {})
        state["need"] = need
        if container.settings.auth.enabled:
            caller = await authenticate(request, container, need)
            state["caller"] = caller
            if spec is None:  # no route serves it: deny by default, then the router answers 404/405
                authorize(request, container.settings, caller, need)
        await self.app(scope, receive, send)
