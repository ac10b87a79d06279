"""ACR's token service: ``GET /oauth2/token`` (Basic), ``POST /oauth2/token`` (refresh token or
password grant) and ``POST /oauth2/exchange`` (Entra ID access token for a refresh token)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.api.guard import client_address, service_of
from shared.api.http import container_of, read_limited
from shared.auth.permissions import parse_scopes
from shared.auth.service import ANONYMOUS, ANONYMOUS_PRINCIPAL, AuthService, Principal, parse_basic, unauthorized
from shared.auth.store import IdentityStore
from shared.errors import Management, RegistryError
from shared.kernel.container import Container

_FORM_LIMIT = 64 * 1024


async def _form(request: Request) -> dict[str, list[str]]:
    body = await read_limited(request, _FORM_LIMIT, Management.TOKEN_REQUEST_INVALID)
    form: dict[str, list[str]] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        form.setdefault(key, []).append(value)
    return form


async def _anonymous(container: Container) -> Principal:
    if not (await (await container.get(IdentityStore)).options()).anonymous_pull:
        raise unauthorized()
    return ANONYMOUS_PRINCIPAL


async def _access_response(request: Request, container: Container, principal: Principal,
                           scopes: list[str]) -> Response:
    service = service_of(request, container.settings)
    auth = await container.get(AuthService)
    token = await auth.access_token(principal, service, parse_scopes(scopes))
    return JSONResponse({
        "access_token": token, "token": token, "expires_in": container.settings.auth.access_token_ttl_seconds,
        "issued_at": datetime.now(UTC).isoformat(),
    }, headers={"Cache-Control": "no-store"})


async def get_token(request: Request) -> Response:
    """``GET /oauth2/token?service=&scope=``: Basic credentials (or none, for anonymous pull)."""
    container = await container_of(request)
    credentials = parse_basic(request.headers.get("authorization", ""))
    if credentials is not None:
        auth = await container.get(AuthService)
        principal = await auth.basic(*credentials, service_of(request, container.settings), client_address(request))
    else:
        principal = await _anonymous(container)
    return await _access_response(request, container, principal, request.query_params.getlist("scope"))


async def post_token(request: Request) -> Response:
    """``POST /oauth2/token``: ``grant_type=refresh_token`` or ``password`` (anonymous when empty)."""
    container = await container_of(request)
    auth = await container.get(AuthService)
    form = await _form(request)

    def field(name: str) -> str:
        return (form.get(name) or [""])[0]

    grant = field("grant_type")
    service = service_of(request, container.settings)
    address = client_address(request)
    if grant == "refresh_token":
        principal = await auth.from_refresh_token(field("refresh_token"), service, address)
    elif grant == "password":
        if field("username") or field("password"):
            principal = await auth.basic(field("username"), field("password"), service, address)
        else:
            principal = await _anonymous(container)
    else:
        raise RegistryError(Management.TOKEN_REQUEST_INVALID, detail={"grant_type": grant[:40]})
    response = await _access_response(request, container, principal, form.get("scope", []))
    if principal.kind != ANONYMOUS and field("access_type") == "offline":
        token = auth.refresh_token(principal, service)
        return JSONResponse({"refresh_token": token, **_json(response)}, headers={"Cache-Control": "no-store"})
    return response


def _json(response: Response) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(bytes(response.body))
    return loaded


async def exchange(request: Request) -> Response:
    """``POST /oauth2/exchange``: an Entra ID access token for a registry refresh token."""
    container = await container_of(request)
    form = await _form(request)
    grant = (form.get("grant_type") or [""])[0]
    entra_token = (form.get("access_token") or [""])[0]
    if grant not in ("access_token", "access_token_refresh_token") or not entra_token:
        raise RegistryError(Management.TOKEN_REQUEST_INVALID, detail={"grant_type": grant[:40]})
    tenant = (form.get("tenant") or [""])[0]
    auth = await container.get(AuthService)
    refresh = await auth.exchange(entra_token, service_of(request, container.settings), tenant, client_address(request))
    return JSONResponse({"refresh_token": refresh}, headers={"Cache-Control": "no-store"})
