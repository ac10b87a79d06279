"""The one place where errors become HTTP answers, and headers every answer carries.

Domain errors are translated with the error groups of the request's API (:mod:`shared.api.errors`)
and of the capabilities; wire errors the API layer raised are answered as they are. The request
id made here is also the id of the request context (:mod:`shared.kernel.context`) set here.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import aiohttp
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.api.errors import api_groups
from shared.api.routing import route_path
from shared.errors import Common, DomainError, ErrorGroup, RegistryError, translate
from shared.kernel.context import RequestContext, enter_request, leave_request

log = logging.getLogger("registry.api")
API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")
#: Seconds a client is asked to wait before retrying when storage is unavailable.
UNAVAILABLE_RETRY_AFTER = 5

# What storage (or the network to it) failing looks like once the clients' retries are spent.
_UNREACHABLE = (
    ServiceRequestError,  # could not connect or send (azure-core), timeouts included
    ServiceResponseError,  # no answer, or a broken one
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    ConnectionError,
    TimeoutError,  # shared.storage.clients.StorageTimeout among them
)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says storage is unreachable or failing:
    connection errors, timeouts, and 5xx answers."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNREACHABLE):
            return True
        if isinstance(current, HttpResponseError) and (current.status_code or 0) >= 500:
            return True
        if isinstance(current, BaseExceptionGroup):
            return all(is_unavailable(inner) for inner in current.exceptions)
        current = current.__cause__
    return False


class ErrorBoundary:
    """ASGI middleware: turns domain errors and :class:`RegistryError` into the spec's JSON errors,
    storage being unreachable into UNAVAILABLE/503 with ``Retry-After``, and anything else
    unexpected (a domain error no group answers included) into UNKNOWN/500; both carry a request
    id (details go to the log, not the client). ``groups`` are the capabilities' error groups.
    It also makes the request the current request context (id, host, method, user agent) while
    it is served."""

    def __init__(self, app: ASGIApp, groups: Sequence[ErrorGroup] = ()) -> None:
        self.app = app
        self.groups = tuple(groups)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_uuid = uuid.uuid4()
        request_id = request_uuid.hex
        scope.setdefault("state", {})
        scope["state"]["request_id"] = request_id
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append(API_VERSION_HEADER)
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        headers = Headers(scope=scope)
        context = enter_request(RequestContext(str(request_uuid), headers.get("host", ""), scope["method"],
                                               headers.get("user-agent", "")))
        try:
            await self.app(scope, receive, send_with_headers)
        except RegistryError as error:
            if started:
                raise
            await _send_error(send_with_headers, scope, error)
        except Exception as error:
            answer = self._answer(scope, error, request_id)
            if started:
                raise
            await _send_error(send_with_headers, scope, answer)
        finally:
            leave_request(context)

    def _answer(self, scope: Scope, error: Exception, request_id: str) -> RegistryError:
        """The wire answer to an exception a handler (or a middleware) raised."""
        if isinstance(error, DomainError):
            answer = translate(error, api_groups(route_path(scope), self.groups))
            if answer is not None:
                return answer
            log.error("no error group answers %s (request %s)", type(error).__name__, request_id, exc_info=error)
            return RegistryError(Common.UNKNOWN, detail={"requestId": request_id})
        if is_unavailable(error):
            log.warning("storage unavailable (request %s): %r", request_id, error, exc_info=error)
            return RegistryError(Common.UNAVAILABLE, "storage is temporarily unavailable",
                                 detail={"requestId": request_id},
                                 headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)})
        log.exception("unhandled error (request %s)", request_id, exc_info=error)
        return RegistryError(Common.UNKNOWN, detail={"requestId": request_id})


def error_response(error: RegistryError, method: str) -> Response:
    """The spec's JSON error answer (headers only for HEAD)."""
    body = json.dumps(error.body()).encode()
    headers = {"Content-Length": str(len(body)), **error.headers}
    content = b"" if method == "HEAD" else body
    return Response(content, status_code=error.code.status, headers=headers, media_type="application/json")


async def _send_error(send: Any, scope: Scope, error: RegistryError) -> None:
    response = error_response(error, scope["method"])
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
