"""Blob and upload endpoints: pull (redirect or proxy), push (monolithic, chunked, streamed), mount."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from shared.api.http import (
    body_stream,
    byte_range,
    container_of,
    content_length,
    content_range,
    range_header,
    repository,
    service,
)
from shared.errors import Oci, RegistryError
from shared.oci.digest import Digest
from shared.oci.names import validate_name
from shared.registry.blobs import BlobService
from shared.registry.uploads import Upload, UploadService, validate_upload_id

_SIMPLE_RANGE = re.compile(r"bytes=(\d{1,19})-(\d{0,19})")


def _upload_headers(name: str, upload: Upload) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload.id}",
        "Docker-Upload-UUID": upload.id,
        "Content-Length": "0",
        **range_header(upload.offset),
    }


def _created(name: str, digest: Digest) -> Response:
    return Response(
        status_code=201,
        headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": str(digest), "Content-Length": "0"},
    )


def _storage_serves(range_header: str | None, size: int) -> bool:
    """True when storage answers this ``Range`` correctly itself: none, or ``bytes=first-[last]``.

    Suffix ranges (``bytes=-500``) and anything else are answered by the registry: storage
    emulators and services differ on them (Azurite answers ``Content-Length: NaN``). A range
    whose last byte precedes its first is refused with 416 (RFC 9110 lets a server reject it),
    in either mode, rather than answered with the whole blob.
    """
    if not range_header:
        return True
    match = _SIMPLE_RANGE.fullmatch(range_header.strip())
    if match is None:
        return False
    if match[2] and int(match[2]) < int(match[1]):
        raise RegistryError(Oci.RANGE_NOT_SATISFIABLE, headers={"Content-Range": f"bytes */{size}"})
    return True


async def get_blob(request: Request) -> Response:
    """GET/HEAD a blob: HEAD answers directly, GET redirects to a SAS URL or streams (with Range)."""
    name = repository(request)
    digest = Digest.parse(request.path_params["digest"])
    container = await container_of(request)
    blobs = await container.get(BlobService)
    info = await blobs.stat(name, digest)
    headers = {"Docker-Content-Digest": str(digest), "Accept-Ranges": "bytes"}
    if request.method == "HEAD":
        headers |= {"Content-Length": str(info.size), "Content-Type": "application/octet-stream"}
        return Response(status_code=200, headers=headers)
    if _storage_serves(request.headers.get("range"), info.size) and container.settings.registry.blob_redirect:
        return RedirectResponse(await blobs.read_url(info), status_code=307, headers=headers)
    span = byte_range(request.headers.get("range"), info.size)
    start, end = span if span is not None else (0, info.size - 1)
    length = end - start + 1
    headers |= {"Content-Length": str(length), "Content-Type": "application/octet-stream"}
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    stream = await blobs.open(info, start, length)
    return StreamingResponse(stream, status_code=206 if span is not None else 200, headers=headers)


async def delete_blob(request: Request) -> Response:
    """DELETE a blob from the repository (the data stays while other repositories use it)."""
    name = repository(request)
    digest = Digest.parse(request.path_params["digest"])
    await (await service(request, BlobService)).unlink(name, digest)
    return Response(status_code=202, headers={"Docker-Content-Digest": str(digest), "Content-Length": "0"})


async def start_upload(request: Request) -> Response:
    """POST: mount from another repository, push a whole blob (``digest``), or open an upload."""
    name = repository(request)
    container = await container_of(request)
    uploads = await container.get(UploadService)
    params = request.query_params
    if "mount" in params:
        digest = Digest.parse(params["mount"])
        source = validate_name(params["from"]) if params.get("from") else None
        info = await (await container.get(BlobService)).mount(name, digest, source)
        if info is not None:
            return _created(name, digest)
    elif "digest" in params:
        expected = Digest.parse(params["digest"])
        await uploads.put_monolithic(name, body_stream(request), expected, content_length(request))
        return _created(name, expected)
    upload = await uploads.start(name)
    headers = _upload_headers(name, upload)
    if container.settings.registry.chunk_min_bytes:
        headers["OCI-Chunk-Min-Length"] = str(container.settings.registry.chunk_min_bytes)
    return Response(status_code=202, headers=headers)


async def _load(request: Request) -> tuple[str, Upload]:
    name = repository(request)
    uploads = await service(request, UploadService)
    upload_id = validate_upload_id(request.path_params["upload_id"])
    return name, await uploads.get(name, upload_id)


async def _append(request: Request, upload: Upload, save: bool) -> Upload:
    uploads = await service(request, UploadService)
    span = content_range(request)
    declared = content_length(request)
    length = declared
    if span is not None:
        length = span[1] - span[0] + 1
        if declared is not None and declared != length:
            raise RegistryError(Oci.RANGE_INVALID, "Content-Length does not match Content-Range",
                                headers=range_header(upload.offset))
    return await uploads.append(
        upload, body_stream(request), span[0] if span else None, length, save=save
    )


async def upload_status(request: Request) -> Response:
    """GET an upload's progress: 204 with ``Range``."""
    name, upload = await _load(request)
    return Response(status_code=204, headers=_upload_headers(name, upload))


async def patch_upload(request: Request) -> Response:
    """PATCH a chunk (``Content-Range``) or a streamed body onto an upload."""
    name, upload = await _load(request)
    upload = await _append(request, upload, save=True)
    return Response(status_code=202, headers=_upload_headers(name, upload))


async def finish_upload(request: Request) -> Response:
    """PUT ``?digest=``: append the last chunk if any, verify the digest and commit."""
    name, upload = await _load(request)
    raw = request.query_params.get("digest")
    if not raw:
        raise RegistryError(Oci.DIGEST_INVALID, "the digest parameter is required")
    expected = Digest.parse(raw)
    upload = await _append(request, upload, save=False)
    await (await service(request, UploadService)).complete(upload, expected)
    return _created(name, expected)


async def cancel_upload(request: Request) -> Response:
    """DELETE an upload and what it staged."""
    _, upload = await _load(request)
    await (await service(request, UploadService)).cancel(upload)
    return Response(status_code=204, headers={"Content-Length": "0"})
