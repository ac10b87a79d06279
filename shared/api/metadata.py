"""ACR's metadata API (``/acr/v1``) as the ``azure-containerregistry`` SDK calls it (api-version
2021-07-01): catalog, repository, tag and manifest properties, their locks, and deletes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.api.guard import service_of
from shared.api.http import container_of, next_link, read_json, repository, service
from shared.errors import Management
from shared.oci.digest import Digest
from shared.oci.names import validate_tag
from shared.registry.discovery import DiscoveryService, page_size
from shared.registry.manifests import ManifestService
from shared.registry.metadata import MetadataService

_PATCH_LIMIT = 16 * 1024


def _page(request: Request, path: str, items: list[dict[str, Any]], key: str, sort_key: Callable[[Any], Any]) \
        -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One page of ``items`` after ``last`` in the ``orderby`` order, and its ``Link`` header."""
    params = request.query_params
    orderby = params.get("orderby") or ""
    if orderby in ("timedesc", "timeasc"):
        items = sorted(items, key=lambda i: (i["lastUpdateTime"], i[key]), reverse=orderby == "timedesc")
    else:
        items = sorted(items, key=sort_key)
    last = params.get("last")
    if last:
        names = [i[key] for i in items]
        if last in names:
            items = items[names.index(last) + 1:]
        elif not orderby:
            items = [i for i in items if i[key] > last]
    n = page_size(params.get("n"))
    if n is None or len(items) <= n:
        return items, {}
    page = items[:n]
    extra = {"orderby": orderby} if orderby else {}
    if params.get("digest"):
        extra["digest"] = params["digest"]
    return page, {"Link": next_link(path, n, page[-1][key], **extra)}


async def _metadata(request: Request) -> tuple[MetadataService, str]:
    """The metadata service, and the ``registry`` the answers name (the token service's name)."""
    container = await container_of(request)
    return await container.get(MetadataService), service_of(request, container.settings)


async def _body(request: Request) -> Any:
    return await read_json(request, _PATCH_LIMIT, Management.BODY_TOO_LARGE, Management.INVALID_REQUEST)


async def catalog(request: Request) -> Response:
    """``GET /acr/v1/_catalog``: repository names, paginated like ``/v2/_catalog``."""
    n = page_size(request.query_params.get("n"))
    discovery = await service(request, DiscoveryService)
    page = await discovery.catalog(n, request.query_params.get("last"))  # without unlisted repositories
    headers = {"Link": next_link("/acr/v1/_catalog", n, page.items[-1])} if page.more else {}
    return JSONResponse({"repositories": page.items}, headers=headers)


async def repository_properties(request: Request) -> Response:
    """``GET /acr/v1/{name}``."""
    metadata, registry = await _metadata(request)
    properties = await metadata.repository(repository(request))
    return JSONResponse({**properties, "registry": registry})


async def update_repository(request: Request) -> Response:
    """``PATCH /acr/v1/{name}`` with partial ``changeableAttributes``."""
    metadata, registry = await _metadata(request)
    properties = await metadata.update_repository(repository(request), await _body(request))
    return JSONResponse({**properties, "registry": registry})


async def delete_repository(request: Request) -> Response:
    """``DELETE /acr/v1/{name}``: 202 with what was deleted."""
    metadata = await service(request, MetadataService)
    return JSONResponse(await metadata.delete_repository(repository(request)), status_code=202)


async def list_tags(request: Request) -> Response:
    """``GET /acr/v1/{name}/_tags[?n,last,orderby,digest]``."""
    name = repository(request)
    metadata, registry = await _metadata(request)
    digest = request.query_params.get("digest")
    tags = await metadata.tags(name, str(Digest.parse(digest)) if digest else None)
    page, headers = _page(request, f"/acr/v1/{name}/_tags", tags, "name", lambda t: t["name"])
    return JSONResponse({"registry": registry, "imageName": name, "tags": page},
                        headers=headers)


def _tag(request: Request) -> str:
    return validate_tag(request.path_params["reference"])


async def tag_properties(request: Request) -> Response:
    """``GET /acr/v1/{name}/_tags/{tag}``."""
    name = repository(request)
    metadata, registry = await _metadata(request)
    tag = await metadata.tag(name, _tag(request))
    return JSONResponse({"registry": registry, "imageName": name, "tag": tag})


async def update_tag(request: Request) -> Response:
    """``PATCH /acr/v1/{name}/_tags/{tag}``."""
    name = repository(request)
    metadata, registry = await _metadata(request)
    tag = await metadata.update_tag(name, _tag(request), await _body(request))
    return JSONResponse({"registry": registry, "imageName": name, "tag": tag})


async def delete_tag(request: Request) -> Response:
    """``DELETE /acr/v1/{name}/_tags/{tag}``: 202."""
    manifests = await service(request, ManifestService)
    await manifests.delete(repository(request), _tag(request))
    return Response(status_code=202, headers={"Content-Length": "0"})


async def list_manifests(request: Request) -> Response:
    """``GET /acr/v1/{name}/_manifests[?n,last,orderby]``."""
    name = repository(request)
    metadata, registry = await _metadata(request)
    manifests = await metadata.manifests(name)
    page, headers = _page(request, f"/acr/v1/{name}/_manifests", manifests, "digest", lambda m: m["digest"])
    return JSONResponse({"registry": registry, "imageName": name, "manifests": page},
                        headers=headers)


async def manifest_properties(request: Request) -> Response:
    """``GET /acr/v1/{name}/_manifests/{digest}``."""
    name = repository(request)
    metadata, registry = await _metadata(request)
    manifest = await metadata.manifest(name, request.path_params["reference"])
    return JSONResponse({"registry": registry, "imageName": name, "manifest": manifest})


async def update_manifest(request: Request) -> Response:
    """``PATCH /acr/v1/{name}/_manifests/{digest}``."""
    name = repository(request)
    metadata, registry = await _metadata(request)
    body = await _body(request)
    manifest = await metadata.update_manifest(name, request.path_params["reference"], body)
    return JSONResponse({"registry": registry, "imageName": name, "manifest": manifest})


async def delete_manifest(request: Request) -> Response:
    """``DELETE /acr/v1/{name}/_manifests/{digest}``: 202."""
    manifests = await service(request, ManifestService)
    digest = str(Digest.parse(request.path_params["reference"]))
    await manifests.delete(repository(request), digest)
    return Response(status_code=202, headers={"Content-Length": "0"})
