"""Discovery endpoints: the API root, tag lists, the catalog and referrers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.api.http import next_link, repository, service
from shared.oci.digest import Digest
from shared.oci.manifest import OCI_INDEX, Descriptor
from shared.registry.discovery import DiscoveryService, page_size

#: The longest media type RFC 6838 allows: a type and a subtype of 127 characters each.
MAX_MEDIA_TYPE = 127 + 1 + 127


async def api_root(request: Request) -> Response:
    """``/v2/``: the registry speaks the distribution API."""
    return JSONResponse({})


async def list_tags(request: Request) -> Response:
    """Tags of a repository in lexical order, paginated with ``n``/``last`` and ``Link``."""
    name = repository(request)
    n = page_size(request.query_params.get("n"))
    discovery = await service(request, DiscoveryService)
    page = await discovery.tags(name, n, request.query_params.get("last"))
    headers = {"Link": next_link(f"/v2/{name}/tags/list", n, page.items[-1])} if page.more else {}
    return JSONResponse({"name": name, "tags": page.items}, headers=headers)


async def catalog(request: Request) -> Response:
    """Repository names in lexical order, paginated like tags."""
    n = page_size(request.query_params.get("n"))
    discovery = await service(request, DiscoveryService)
    page = await discovery.catalog(n, request.query_params.get("last"))
    headers = {"Link": next_link("/v2/_catalog", n, page.items[-1])} if page.more else {}
    return JSONResponse({"repositories": page.items}, headers=headers)


async def referrers(request: Request) -> Response:
    """An image index of the manifests that refer to a digest; always 200."""
    name = repository(request)
    subject = Digest.parse(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType")
    n = page_size(request.query_params.get("n"))
    last = request.query_params.get("last", "")
    if last:
        last = str(Digest.parse(last))
    found: list[Descriptor] = []
    more = False
    # No media type is longer (RFC 6838), so nothing stored can match: storage is not asked.
    if artifact_type is None or len(artifact_type) <= MAX_MEDIA_TYPE:
        discovery = await service(request, DiscoveryService)
        found, more = await discovery.referrers(name, subject, artifact_type, n, last)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [d.to_json() for d in found]}
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type is not None else {}
    if more:
        extra = {"artifactType": artifact_type} if artifact_type is not None else {}
        headers["Link"] = next_link(f"/v2/{name}/referrers/{subject}", n, str(found[-1].digest), **extra)
    return JSONResponse(index, media_type=OCI_INDEX, headers=headers)
