"""Small HTTP helpers shared by the handlers: repository access, headers, ranges and paging links."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from starlette.requests import Request

from shared.errors import Oci, RegistryError, WireCode
from shared.kernel.container import Container
from shared.oci.names import validate_name
from shared.storage.values import INT64_MAX, parse_int64

# ASCII digits only: \d would also match other scripts' digits.
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?")
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
#: How deeply the small JSON bodies of the metadata, admin and webhook APIs may nest.
MAX_JSON_DEPTH = 32
T = TypeVar("T")


async def container_of(request: Request) -> Container:
    """The process's container the app serves from, opened on first use in the running event loop."""
    container: Container = await request.app.state.open_container()
    return container


async def service(request: Request, key: type[T]) -> T:
    """The service ``key`` of the app's container."""
    return await (await container_of(request)).get(key)


def repository(request: Request) -> str:
    """The validated repository name of the request's path."""
    return validate_name(request.path_params["name"])


def content_length(request: Request) -> int | None:
    """The request's ``Content-Length``, or None for a streamed body."""
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    value = parse_int64(raw.strip())
    if value is None:
        raise RegistryError(Oci.SIZE_INVALID, "invalid Content-Length", detail={"length": raw[:40]})
    return value


def content_range(request: Request) -> tuple[int, int] | None:
    """The ``(start, end)`` of a PATCH's ``Content-Range``; BLOB_UPLOAD_INVALID when malformed."""
    raw = request.headers.get("content-range")
    if raw is None:
        return None
    match = _CONTENT_RANGE.fullmatch(raw.strip())
    start, end = (parse_int64(match[1]), parse_int64(match[2])) if match else (None, None)
    if start is None or end is None or end < start:
        raise RegistryError(Oci.BLOB_UPLOAD_INVALID, "invalid Content-Range", detail={"range": raw[:100]})
    return start, end


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``(start, end)`` a ``Range`` header asks of ``size`` bytes; None to send everything.

    An unsatisfiable range raises RANGE_NOT_SATISFIABLE; a malformed one is ignored (RFC 9110).
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or (not match[1] and not match[2]):
        return None
    first, last = _position(match[1]), _position(match[2])
    if match[1]:
        start = first
        end = min(last, size - 1) if match[2] else size - 1
        if match[2] and last < start:
            return None
    else:
        start, end = max(size - last, 0), size - 1
        if last == 0:
            start = size
    if start >= size or end < start:
        raise RegistryError(Oci.RANGE_NOT_SATISFIABLE, headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _position(digits: str) -> int:
    """A byte position of a ``Range``; one past Int64 stands for any larger number (no blob is that big)."""
    value = parse_int64(digits) if digits else 0
    return INT64_MAX + 1 if value is None else value


def range_header(size: int) -> dict[str, str]:
    """The ``Range`` header reporting what an upload of ``size`` bytes holds (``0-0`` when empty, as
    distribution does)."""
    return {"Range": f"0-{max(size - 1, 0)}"}


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


async def read_limited(request: Request, limit: int, error: WireCode) -> bytes:
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


async def read_json(request: Request, limit: int, too_large: WireCode, invalid: WireCode) -> Any:
    """A small JSON body (``{}`` when empty): ``too_large`` past ``limit`` bytes, ``invalid`` if it is
    not JSON (in UTF-8, without lone surrogates) or nests deeper than :data:`MAX_JSON_DEPTH`."""
    raw = await read_limited(request, limit, too_large)
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # the parser recurses once per level of nesting
        raise RegistryError(invalid, "the body is not JSON") from None
    if _depth(body) > MAX_JSON_DEPTH:
        raise RegistryError(invalid, f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    if not _encodable(body):
        raise RegistryError(invalid, "the body holds a lone surrogate (not UTF-8 text)")
    return body


def _depth(value: Any) -> int:
    """How deeply ``value`` nests (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _encodable(value: Any) -> bool:
    """True when every string (key or value) of a parsed body encodes as UTF-8: JSON's ``\\ud800``
    escapes parse into lone surrogates that no storage request can carry."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True
