"""Small HTTP helpers shared by the handlers: repository access, headers, ranges and paging links."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request

from shared.errors import ErrorCode, RegistryError
from shared.oci.names import validate_name
from shared.registry.registry import Registry
from shared.settings import Settings

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


async def registry_of(request: Request) -> Registry:
    """The app's :class:`Registry`, opened on first use in the running event loop."""
    return await open_registry(request.app.state)


async def open_registry(state: Any) -> Registry:
    """The :class:`Registry` of an app's ``state``, opened (once) if it is not yet."""
    if state.registry is None:
        async with state.registry_lock:
            if state.registry is None:
                if state.settings is None:
                    state.settings = Settings.from_env()
                state.registry = await Registry.open(state.settings)
    registry: Registry = state.registry
    return registry


def repository(request: Request) -> str:
    """The validated repository name of the request's path."""
    return validate_name(request.path_params["name"])


def content_length(request: Request) -> int | None:
    """The request's ``Content-Length``, or None for a streamed body."""
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise RegistryError(ErrorCode.SIZE_INVALID, "invalid Content-Length")
    return int(raw)


def content_range(request: Request) -> tuple[int, int] | None:
    """The ``(start, end)`` of a PATCH's ``Content-Range``; BLOB_UPLOAD_INVALID when malformed."""
    raw = request.headers.get("content-range")
    if raw is None:
        return None
    match = _CONTENT_RANGE.fullmatch(raw.strip())
    if not match or int(match[2]) < int(match[1]):
        raise RegistryError(ErrorCode.BLOB_UPLOAD_INVALID, "invalid Content-Range", detail={"range": raw[:100]})
    return int(match[1]), int(match[2])


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``(start, end)`` a ``Range`` header asks of ``size`` bytes; None to send everything.

    An unsatisfiable range raises RANGE_NOT_SATISFIABLE; a malformed one is ignored (RFC 9110).
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or (not match[1] and not match[2]):
        return None
    if match[1]:
        start = int(match[1])
        end = min(int(match[2]), size - 1) if match[2] else size - 1
        if match[2] and int(match[2]) < start:
            return None
    else:
        start, end = max(size - int(match[2]), 0), size - 1
        if int(match[2]) == 0:
            start = size
    if start >= size or end < start:
        raise RegistryError(ErrorCode.RANGE_NOT_SATISFIABLE, headers={"Content-Range": f"bytes */{size}"})
    return start, end


def next_link(path: str, n: int | None, last: str, **extra: str) -> str:
    """A relative ``Link`` header to the next page."""
    query = {**extra, "last": last}
    if n is not None:
        query["n"] = str(n)
    return f'<{quote(path)}?{urlencode(query)}>; rel="next"'


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives, skipping empty pieces."""
    async for chunk in request.stream():
        if chunk:
            yield chunk


async def read_limited(request: Request, limit: int, error: ErrorCode) -> bytes:
    """The whole body, refusing with ``error`` once it exceeds ``limit`` bytes."""
    declared = content_length(request)
    if declared is not None and declared > limit:
        raise RegistryError(error, detail={"limit": limit})
    parts: list[bytes] = []
    total = 0
    async for chunk in body_stream(request):
        total += len(chunk)
        if total > limit:
            raise RegistryError(error, detail={"limit": limit})
        parts.append(chunk)
    return b"".join(parts)


async def read_json(request: Request, limit: int, too_large: ErrorCode, invalid: ErrorCode) -> Any:
    """A small JSON body (``{}`` when empty): ``too_large`` past ``limit`` bytes, ``invalid`` if not JSON."""
    raw = await read_limited(request, limit, too_large)
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        raise RegistryError(invalid, "the body is not JSON") from None


def new_lock() -> asyncio.Lock:
    """A lock for the lazily opened registry."""
    return asyncio.Lock()
