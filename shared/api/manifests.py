"""Manifest endpoints: GET/HEAD with content negotiation, PUT by tag or digest, DELETE."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shared.api.http import read_limited, repository, service
from shared.errors import Oci, RegistryError
from shared.oci.manifest import INDEX_TYPES, MAX_MANIFEST_BYTES
from shared.registry.manifests import ManifestService


def _accepts(request: Request, media_type: str) -> bool:
    accepted = {
        part.split(";")[0].strip().lower()
        for header in request.headers.getlist("accept")
        for part in header.split(",")
    } - {""}
    return not accepted or bool(accepted & {media_type, "*/*", "application/*", "application/json"})


async def get_manifest(request: Request) -> Response:
    """GET/HEAD a manifest by tag or digest, with its exact bytes and digest."""
    name = repository(request)
    reference = request.path_params["reference"]
    manifests = await service(request, ManifestService)
    head = request.method == "HEAD"
    seen = request.state.lock_rows if hasattr(request.state, "lock_rows") else None
    manifest = await manifests.get(name, reference, with_content=not head, seen=seen)
    if manifest.media_type in INDEX_TYPES and not _accepts(request, manifest.media_type):
        raise RegistryError(
            Oci.MANIFEST_UNKNOWN,
            f"{manifest.media_type} found, but the Accept header does not allow it",
            detail={"reference": reference},
        )
    headers = {
        "Content-Type": manifest.media_type,
        "Docker-Content-Digest": str(manifest.digest),
        "Content-Length": str(manifest.size),
        "ETag": f'"{manifest.digest}"',
    }
    return Response(content=None if head else manifest.content, status_code=200, headers=headers)


async def put_manifest(request: Request) -> Response:
    """PUT a manifest; 201 with its digest (and ``OCI-Subject`` when it refers to one)."""
    name = repository(request)
    reference = request.path_params["reference"]
    manifests = await service(request, ManifestService)
    raw = await read_limited(request, MAX_MANIFEST_BYTES, Oci.MANIFEST_TOO_LARGE)
    result = await manifests.put(name, reference, raw, request.headers.get("content-type", ""))
    digest = str(result.manifest.digest)
    headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest, "Content-Length": "0"}
    if result.manifest.subject is not None:
        headers["OCI-Subject"] = str(result.manifest.subject.digest)
    return Response(status_code=201, headers=headers)


async def delete_manifest(request: Request) -> Response:
    """DELETE a manifest by digest (with its tags) or a tag alone: 202."""
    name = repository(request)
    manifests = await service(request, ManifestService)
    await manifests.delete(name, request.path_params["reference"])
    return Response(status_code=202, headers={"Content-Length": "0"})
