"""The admin API (``/acr/admin/...``, which needs ``registry:admin:*``; routes in
:mod:`shared.api.routes`): registry options
(anonymous pull, role assignment mode), scope maps, tokens and their passwords, role assignments."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.api.http import read_json, service
from shared.auth.store import ENABLED, IdentityStore
from shared.errors import InvalidName, Management, RegistryError, ResourceNotFound

_LIMIT = 64 * 1024
# Every name and id the auth table holds as a key (token and scope map names, system scope map
# names, role assignment uuids) is of this form. Anything else names nothing, and is not sent to
# storage: a key with "/", "#", "?", controls or thousands of characters makes it fail instead.
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")
#: The longest Entra ID principal id a role assignment takes.
MAX_PRINCIPAL = 128


def _existing(request: Request, param: str, what: str) -> str:
    """The path parameter naming an existing ``what``; not found when no key can be that name."""
    name: str = request.path_params[param]
    if not _KEY.fullmatch(name):
        raise ResourceNotFound(what, name)
    return name


def _new(request: Request, param: str, what: str) -> str:
    """The path parameter naming a ``what`` to create or replace; an invalid name when no key can be that name."""
    name: str = request.path_params[param]
    if not _KEY.fullmatch(name):
        raise InvalidName(f"invalid {what} name", detail={"name": name[:60]})
    return name


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request, _LIMIT, Management.BODY_TOO_LARGE, Management.INVALID_REQUEST)
    if not isinstance(body, dict):
        raise RegistryError(Management.INVALID_REQUEST, "the body must be a JSON object")
    return body


def _optional_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise RegistryError(Management.INVALID_REQUEST, f"{key} must be true or false")
    return value


async def get_options(request: Request) -> Response:
    """``GET /acr/admin/options``."""
    identities = await service(request, IdentityStore)
    return JSONResponse((await identities.options()).to_json())


async def update_options(request: Request) -> Response:
    """``PATCH /acr/admin/options`` ``{anonymousPullEnabled, roleAssignmentMode: rbac|abac}``."""
    identities = await service(request, IdentityStore)
    body = await _body(request)
    mode = body.get("roleAssignmentMode")
    if mode not in (None, "rbac", "abac"):
        raise RegistryError(Management.INVALID_REQUEST, "roleAssignmentMode is rbac or abac")
    options = await identities.set_options(_optional_bool(body, "anonymousPullEnabled"),
                                                    None if mode is None else mode == "abac")
    return JSONResponse(options.to_json())


async def list_scope_maps(request: Request) -> Response:
    """``GET /acr/admin/scopemaps``."""
    identities = await service(request, IdentityStore)
    return JSONResponse({"scopeMaps": [m.to_json() for m in await identities.scope_maps()]})


async def get_scope_map(request: Request) -> Response:
    """``GET /acr/admin/scopemaps/{name}``."""
    identities = await service(request, IdentityStore)
    name = _existing(request, "name", "scope map")
    scope_map = await identities.scope_map(name)
    if scope_map is None:
        raise ResourceNotFound("scope map", name)
    return JSONResponse(scope_map.to_json())


async def put_scope_map(request: Request) -> Response:
    """``PUT /acr/admin/scopemaps/{name}`` ``{actions: [...], description}``."""
    identities = await service(request, IdentityStore)
    body = await _body(request)
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not all(isinstance(a, str) for a in actions):
        raise RegistryError(Management.INVALID_REQUEST, "actions must be a non-empty list of strings")
    scope_map = await identities.put_scope_map(_new(request, "name", "scope map"), actions,
                                                        str(body.get("description") or ""))
    return JSONResponse(scope_map.to_json())


async def delete_scope_map(request: Request) -> Response:
    """``DELETE /acr/admin/scopemaps/{name}``."""
    identities = await service(request, IdentityStore)
    await identities.delete_scope_map(_existing(request, "name", "scope map"))
    return Response(status_code=204)


async def list_tokens(request: Request) -> Response:
    """``GET /acr/admin/tokens``."""
    identities = await service(request, IdentityStore)
    return JSONResponse({"tokens": [t.to_json() for t in await identities.tokens()]})


async def get_token(request: Request) -> Response:
    """``GET /acr/admin/tokens/{name}``."""
    identities = await service(request, IdentityStore)
    name = _existing(request, "name", "token")
    token = await identities.token(name)
    if token is None:
        raise ResourceNotFound("token", name)
    return JSONResponse(token.to_json())


async def put_token(request: Request) -> Response:
    """``PUT /acr/admin/tokens/{name}`` ``{scopeMap, status}``; ``PATCH`` changes only what is given."""
    identities = await service(request, IdentityStore)
    name = _new(request, "name", "token") if request.method == "PUT" else _existing(request, "name", "token")
    body = await _body(request)
    current = await identities.token(name)
    if request.method == "PATCH" and current is None:
        raise ResourceNotFound("token", name)
    scope_map = body.get("scopeMap") or (current.scope_map if current else "")
    status = body.get("status") or (current.status if current else ENABLED)
    token = await identities.put_token(name, str(scope_map), str(status))
    return JSONResponse(token.to_json())


async def delete_token(request: Request) -> Response:
    """``DELETE /acr/admin/tokens/{name}``."""
    identities = await service(request, IdentityStore)
    await identities.delete_token(_existing(request, "name", "token"))
    return Response(status_code=204)


async def new_password(request: Request) -> Response:
    """``POST /acr/admin/tokens/{name}/passwords`` ``{name: password1|password2, expiry}``: the new value, once."""
    identities = await service(request, IdentityStore)
    body = await _body(request)
    which = str(body.get("name") or "password1")
    expiry = None
    if body.get("expiry"):
        try:
            expiry = datetime.fromisoformat(str(body["expiry"]).replace("Z", "+00:00"))
        except ValueError:
            raise RegistryError(Management.INVALID_REQUEST, "expiry must be an ISO 8601 time") from None
        if expiry.tzinfo is None:
            raise RegistryError(Management.INVALID_REQUEST, "expiry must carry a time zone")
    value = await identities.new_password(_existing(request, "name", "token"), which, expiry)
    return JSONResponse({"name": which, "value": value, "expiry": expiry.isoformat() if expiry else None},
                        headers={"Cache-Control": "no-store"})


async def list_roles(request: Request) -> Response:
    """``GET /acr/admin/roleassignments[?principalId=]``."""
    identities = await service(request, IdentityStore)
    principal = request.query_params.get("principalId")
    if principal is not None and len(principal) > MAX_PRINCIPAL:
        raise InvalidName(f"principalId is at most {MAX_PRINCIPAL} characters")
    assignments = await identities.role_assignments(principal)
    return JSONResponse({"roleAssignments": [a.to_json() for a in assignments]})


async def assign_role(request: Request) -> Response:
    """``POST /acr/admin/roleassignments`` ``{principalId, role, repository}``."""
    identities = await service(request, IdentityStore)
    body = await _body(request)
    assignment = await identities.assign_role(
        str(body.get("principalId") or ""), str(body.get("role") or ""), body.get("repository") or None)
    return JSONResponse(assignment.to_json(), status_code=201)


async def remove_role(request: Request) -> Response:
    """``DELETE /acr/admin/roleassignments/{id}``."""
    identities = await service(request, IdentityStore)
    await identities.remove_role(_existing(request, "id", "role assignment"))
    return Response(status_code=204)
